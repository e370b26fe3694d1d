"""Typed study spec: one YAML file describes a whole grid of runs.

A study names a ``base`` run config (the same sections as a run YAML), the ``axes`` to
cross (method, LoRA rank and targets, seed) and a list of ``scenarios`` in the paper's
vocabulary (``full_data``, ``low_data``, ``zero_shot``, ``few_shot``, ``multi_source``,
``compose``).
:mod:`lorasum.study.cells` turns a validated :class:`StudySpec` into runs.

Validation happens here, at the boundary: an unknown or wrong field raises
:class:`~lorasum.errors.LorasumError` naming the field and the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)

from lorasum.config import parse_run_config, read_yaml
from lorasum.errors import LorasumError
from lorasum.languages import LEAKING_PAIRS, normalize_lang
from lorasum.methods import METHODS, MethodAxes
from lorasum.methods import NAMES as METHOD_NAMES

REGIMES = ("full_data", "low_data", "zero_shot", "few_shot", "multi_source", "compose")
PAIR = "->"


def split_pair(entry: str) -> tuple[str, str | None]:
    """``"de->en"`` -> ``("de", "en")`` (article, summary language); ``"de"`` -> ``("de", None)``."""
    article, _, summary = entry.partition(PAIR)
    return article, summary or None


def _lang_or_pair_list(v: Any) -> list[str]:
    """Languages (``de``) or language pairs (``de->en``: German articles, English summaries)."""
    if isinstance(v, str):
        v = [v]
    if not v:
        raise ValueError("at least one language is needed")
    out = []
    for x in v:
        parts = [p.strip() for p in str(x).split(PAIR)]
        if len(parts) > 2:
            raise ValueError(f"{x!r}: a language pair is written article->summary, e.g. de->en")
        try:
            norm = [normalize_lang(p) for p in parts]
        except LorasumError as err:
            raise ValueError(str(err)) from None
        out.append(PAIR.join(norm) if len(norm) == 2 and norm[0] != norm[1] else norm[0])
    if len(set(out)) != len(out):
        raise ValueError(f"languages repeat: {out}")
    return out


# a scenario's languages: codes, or article->summary pairs for cross-lingual summarization
Langs = Annotated[list[str], BeforeValidator(_lang_or_pair_list)]


def _shot_list(v: list[int]) -> list[int]:
    if any(k < 1 for k in v):
        raise ValueError("shots must be >= 1")
    return sorted(set(v))


Shots = Annotated[list[int], AfterValidator(_shot_list), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")




def _method_names(v: list[str]) -> list[str]:
    unknown = [m for m in v if m not in METHOD_NAMES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHOD_NAMES)}")
    return v


MethodNames = Annotated[list[str], AfterValidator(_method_names)]


class _CommonAxes(_Strict):
    method: MethodNames = Field(default_factory=lambda: list(METHOD_NAMES), min_length=1)
    seed: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("method", "seed")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(map(str, v))) != len(v):
            raise ValueError(f"values repeat: {v}")
        return v


class Axes(_CommonAxes, *dict.fromkeys(m.axes_class for m in METHODS.values() if m.axes_class is not MethodAxes)):
    """Values crossed in every scenario: ``method`` and ``seed``, then each method's own axes.

    LoRA's are ``rank``, ``targets``, ``alpha_per_rank``, ``rslora`` and ``dora`` (see
    :mod:`lorasum.methods.lora`); a method's axes apply to its cells only.
    """


class _Scenario(_Strict):
    # unique within the study; the first part of every cell id (default: the regime)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    # run-config sections (model/data/method/training/generation) overlaid on the base
    overrides: dict[str, Any] = Field(default_factory=dict)
    # replaces the study-level axes for this scenario, key by key
    axes: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.regime  # type: ignore[attr-defined]


class FullData(_Scenario):
    """All training data of each language (one run per language), or of all at once."""

    regime: Literal["full_data"]
    languages: Langs
    multilingual: bool = False
    # language upsampling exponent for multilingual training (XL-Sum: 0.5)
    alpha: float = Field(default=0.5, gt=0, le=1)
    # optional per-language cap, for budgets smaller than the paper's
    max_train_examples: int | None = Field(default=None, ge=1)



class LowData(_Scenario):
    """k seeded random training examples per language, several seeds per k."""

    regime: Literal["low_data"]
    languages: Langs
    shots: Shots



class _Transfer(_Scenario):
    source_langs: Langs
    target_langs: Langs
    # zh-CN/zh-TW and sr-Cyrl/sr-Latn share articles in XL-Sum: transfer between them leaks
    allow_leaking_pairs: bool = False
    max_train_examples: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _held_out(self) -> "_Transfer":
        both = sorted(set(self.source_langs) & set(self.target_langs))
        if both:
            raise ValueError(f"target_langs must be held out from source_langs; both have {both}")
        if not self.allow_leaking_pairs:
            for s in self.source_langs:
                for t in self.target_langs:
                    if frozenset({split_pair(s)[0], split_pair(t)[0]}) in LEAKING_PAIRS:
                        raise ValueError(
                            f"{s} -> {t} leaks: XL-Sum's {s} and {t} share articles; "
                            "choose another pair or set allow_leaking_pairs: true"
                        )
        return self


class ZeroShot(_Transfer):
    """Train on ``source_langs``; score on ``target_langs`` with no target data."""

    regime: Literal["zero_shot"]


class MultiSource(_Transfer):
    """Train on several ``source_langs``; score on held-out ``target_langs``."""

    regime: Literal["multi_source"]


class FewShot(_Scenario):
    """Continue each finished zero-shot run on k examples of one target language.

    LoRA runs continue the zero-shot run's adapter (the same adapter, not a new one);
    full runs continue its fine-tuned model. Each cell depends on its zero-shot cell.
    """

    regime: Literal["few_shot"]
    after: str = Field(description="name of the zero_shot scenario to continue from")
    shots: Shots
    # default: all target_langs of the zero-shot scenario
    target_langs: Langs | None = None


class WeightSearch(_Strict):
    """LoraHub's gradient-free search for the ``learned`` composition weights."""

    budget: int = Field(default=40, ge=1, description="loss evaluations of the search")
    l1_penalty: float = Field(default=0.05, ge=0, description="times sum |w|, added to the loss")
    seed: int | None = Field(default=None, description="default: the cell's seed")


class Compose(_Scenario):
    """Per target language, the other languages' LoRA adapters composed into one.

    Each source language gets a single-language LoRA cell (or reuses an identical cell of
    another scenario); each target T gets two evaluation cells composing the sources other
    than T: ``uniform`` (weights 1/n) and ``learned`` (LoraHub weights fitted on ``shots``
    examples of T's train split). Full fine-tuning has no adapter to compose: its cells are
    skipped here.
    """

    regime: Literal["compose"]
    source_langs: Langs
    target_langs: Langs
    # target-language training examples the learned weights are fitted on
    shots: int = Field(default=16, ge=1)
    # peft's combination: cat (exact, rank = sum of ranks), svd, or the inexact linear/ties/dare_ties
    method: Literal["cat", "svd", "linear", "ties", "dare_ties"] = "cat"
    search: WeightSearch = Field(default_factory=WeightSearch)
    # training examples per source adapter (default: all)
    max_train_examples: int | None = Field(default=None, ge=1)
    allow_leaking_pairs: bool = False

    @model_validator(mode="after")
    def _sources_per_target(self) -> "Compose":
        pairs = [x for x in [*self.source_langs, *self.target_langs] if PAIR in x]
        if pairs:
            raise ValueError(f"compose takes language codes, not article->summary pairs ({pairs[0]})")
        for t in self.target_langs:
            if not self.sources_for(t):
                raise ValueError(f"target {t} has no source language other than itself; "
                                 "add another language to source_langs")
            if not self.allow_leaking_pairs:
                for s in self.sources_for(t):
                    if frozenset({s, t}) in LEAKING_PAIRS:
                        raise ValueError(f"{s} -> {t} leaks: XL-Sum's {s} and {t} share articles; "
                                         "choose another pair or set allow_leaking_pairs: true")
        return self

    def sources_for(self, target: str) -> list[str]:
        """The source languages composed for ``target``: every source but the target itself."""
        return [s for s in self.source_langs if s != target]


Scenario = Annotated[Union[FullData, LowData, ZeroShot, FewShot, MultiSource, Compose], Field(discriminator="regime")]


class StudySpec(_Strict):
    """A whole study: the base run, the axes, and the scenarios to cross them with."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    # where runs go; relative paths are taken from the current directory
    output_dir: str | None = None
    base: dict[str, Any] = Field(default_factory=dict)
    # run-config sections overlaid on the base for every full / every LoRA cell
    per_method: dict[str, dict[str, Any]] = Field(default_factory=dict)
    axes: Axes = Field(default_factory=Axes)
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> "StudySpec":
        seen: dict[str, int] = {}
        for i, sc in enumerate(self.scenarios):
            if sc.label in seen:
                raise ValueError(
                    f"scenarios {seen[sc.label]} and {i} are both named {sc.label!r}; give them distinct `name`s"
                )
            seen[sc.label] = i
        for sc in self.scenarios:
            if isinstance(sc, FewShot):
                parent = next((p for p in self.scenarios if p.label == sc.after), None)
                if not isinstance(parent, ZeroShot):
                    raise ValueError(f"few_shot scenario {sc.label!r}: after={sc.after!r} names no zero_shot scenario")
                extra = sorted(set(sc.target_langs or []) - set(parent.target_langs))
                if extra:
                    raise ValueError(
                        f"few_shot scenario {sc.label!r}: target_langs {extra} are not targets of {sc.after!r}"
                    )
        return self

    def scenario_axes(self, scenario: _Scenario, source: str) -> Axes:
        """The study axes with the scenario's replacements applied (validated)."""
        merged = {**self.axes.model_dump(), **scenario.axes}
        try:
            return Axes.model_validate(merged)
        except ValidationError as err:
            raise LorasumError(_format(err, f"{source}: scenario {scenario.label}: axes")) from None


def _suggest(loc: tuple) -> str | None:
    """A "did you mean" path for an unknown study field at ``loc``, or None."""
    import difflib

    parts = [p for p in loc if p not in REGIMES]
    parent = next((p for p in parts[:-1] if isinstance(p, str)), "")
    regime = next((p for p in loc if p in REGIMES), None)
    classes = {"full_data": FullData, "low_data": LowData, "zero_shot": ZeroShot, "few_shot": FewShot,
               "multi_source": MultiSource}
    scenario_fields = classes[regime].model_fields if regime else {}
    fields = {"": StudySpec.model_fields, "axes": Axes.model_fields, "scenarios": scenario_fields}.get(parent)
    close = difflib.get_close_matches(str(parts[-1]), sorted(set(fields or ()) - {parts[-1]}), n=1, cutoff=0.6)
    return ".".join([*map(str, parts[:-1]), close[0]]) if close else None


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in REGIMES)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            hint = _suggest(e["loc"])
            msg = f"unknown field; did you mean {hint}?" if hint else \
                "unknown field (check its spelling and where it is nested)"
        elif e["type"] == "union_tag_invalid":
            msg = f"regime must be one of {', '.join(REGIMES)}"
        elif e["type"] == "union_tag_not_found":
            msg = f"every scenario needs a `regime`: one of {', '.join(REGIMES)}"
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "\n".join(lines)


def parse_study_spec(data: dict, source: str = "<study>") -> StudySpec:
    """Validate a dict as a :class:`StudySpec`; errors name ``source`` and the field."""
    try:
        spec = StudySpec.model_validate(data or {})
    except ValidationError as err:
        raise LorasumError(_format(err, source)) from None
    # the base must be a valid run config on its own (method defaults apply)
    parse_run_config(spec.base, f"{source}: base")
    for method, over in spec.per_method.items():
        if method not in METHOD_NAMES:
            raise LorasumError(f"{source}: per_method.{method}: unknown method; known: {', '.join(METHOD_NAMES)}")
        unknown = sorted(set(over) - {"model", "data", "method", "training", "generation"})
        if unknown:
            raise LorasumError(f"{source}: per_method.{method}: unknown sections {unknown}")
    for i, sc in enumerate(spec.scenarios):
        unknown = sorted(set(sc.overrides) - {"model", "data", "method", "training", "generation"})
        if unknown:
            raise LorasumError(f"{source}: scenarios.{i}.overrides: unknown sections {unknown}")
        axes = spec.scenario_axes(sc, source)
        if isinstance(sc, Compose):
            _check_compose_axes(sc, axes, f"{source}: scenarios.{i} ({sc.label})")
    return spec


def _check_compose_axes(sc: Compose, axes: Axes, where: str) -> None:
    """A compose scenario needs LoRA adapters: its axes must include the LoRA method."""
    if "lora" not in axes.method:
        raise LorasumError(f"{where}: axes.method is {axes.method}; composition needs LoRA adapters, "
                           "add lora to the scenario's axes.method")


def read_study_yaml(path: str | Path, overrides: list[str] | None = None) -> dict:
    """A study YAML file as a raw mapping, with ``dotted.path=value`` overrides applied
    (``base.training.lr=3e-4``, ``axes.seed=[0,1,2]``, ``scenarios.0.shots=[16]``)."""
    from lorasum.overrides import apply_overrides

    data = read_yaml(path)
    return apply_overrides(data, overrides) if overrides else data


def load_study_spec(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Read and validate a study YAML file, with optional overrides (see :func:`read_study_yaml`)."""
    return parse_study_spec(read_study_yaml(path, overrides), f"{path} (with overrides)" if overrides else str(path))
