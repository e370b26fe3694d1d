"""Typed run configuration: one YAML file describes one training run.

The models below are validated at the boundary (:func:`load_run_config`); an unknown or
wrong field raises :class:`~lorasum.errors.LorasumError` naming the field and the file.
Everything inside lorasum trusts a validated :class:`RunConfig`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator,
                      model_serializer, model_validator)

from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang
from lorasum.methods import DEFAULT_METHOD, METHODS
from lorasum.methods import NAMES as METHOD_NAMES
from lorasum.methods import FullMethod, LoraMethod, LoraTargets, MethodUnion  # noqa: F401 (re-exported)

XLSUM_HUB_ID = "csebuetnlp/xlsum"
DEFAULT_MODEL = "google/mt5-small"


def lang_list(v: Any) -> list[str]:
    """Validate a language or list of languages into distinct XL-Sum codes."""
    if isinstance(v, str):
        v = [v]
    if not v:
        raise ValueError("at least one language is needed")
    try:
        out = [normalize_lang(x) for x in v]
    except LorasumError as err:
        raise ValueError(str(err)) from None
    if len(set(out)) != len(out):
        raise ValueError(f"languages repeat: {out}")
    return out


Langs = Annotated[list[str], BeforeValidator(lang_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    """Base model: a hub id or a local folder saved with ``save_pretrained``."""

    name: str = DEFAULT_MODEL
    revision: str | None = None
    # decoder-only models read the article through a prompt; {lang_name} and {text} are filled in
    prompt_template: str = "Summarize the following {lang_name} article.\n\n{text}\n\nSummary:"


_NEW_FIELD_DEFAULTS = {"preset": None, "subset": None, "subsets": {}, "summary_lang": None,
                       "summary_lang_field": "summary_lang"}


class DataConfig(_Strict):
    """Where examples come from and how many of them are used.

    ``source`` is a hub dataset id (``csebuetnlp/xlsum``, ``GEM/mlsum``), a local folder
    written by ``datasets``' ``save_to_disk``, a local hub-style folder (Parquet/JSONL/CSV
    shards per split: ``data/train-00000-of-00002.parquet`` or ``train/*.jsonl``), a local
    JSONL / CSV / Parquet file, or a folder holding ``train``/``validation``/``test`` files.
    A single local file is split by its ``split_field``; ``splits`` maps lorasum's split
    names to the names used in the data. ``subset`` names the one hub config to read;
    ``subsets`` maps each language to its own config (XL-Sum's ``english``, MLSUM's ``de``).
    Without a language column and a ``subsets`` mapping, every row is in the one language
    of ``languages``. ``preset`` fills these fields from ``lorasum/data/presets/<name>.yaml``;
    fields given here win. A row's summary language is its ``summary_lang_field`` column,
    else ``summary_lang`` when set (cross-lingual data whose summaries share one language),
    else the article's language.
    """

    preset: str | None = None
    source: str = XLSUM_HUB_ID
    subset: str | None = None
    subsets: dict[str, str] = Field(default_factory=dict)
    languages: Langs = Field(default_factory=lambda: ["en"])
    # languages scored on the test split; default: the training languages (zero-shot: others)
    test_languages: Langs | None = None
    summary_lang: str | None = None
    format: Literal["auto", "jsonl", "csv", "parquet"] = "auto"
    id_field: str = "id"
    text_field: str = "text"
    summary_field: str = "summary"
    lang_field: str = "lang"
    summary_lang_field: str = "summary_lang"
    split_field: str = "split"
    splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"}
    )
    train_examples: int | None = Field(default=None, ge=1, description="per language, seeded random sample")
    validation_examples: int | None = Field(default=200, ge=1, description="per language, for in-training eval")
    test_examples: int | None = Field(default=None, ge=1, description="per language")
    sample_seed: int = 0
    skip_bad_rows: bool = False

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            from lorasum.data.presets import load_preset

            try:
                preset = load_preset(data["preset"])
            except LorasumError as err:
                raise ValueError(str(err)) from None
            data = {**preset, **data}
        return data

    @model_validator(mode="after")
    def _check_languages(self) -> "DataConfig":
        if self.summary_lang is not None:
            try:
                object.__setattr__(self, "summary_lang", normalize_lang(self.summary_lang, "data.summary_lang"))
            except LorasumError as err:
                raise ValueError(str(err)) from None
        if self.subsets:
            try:
                mapped = {normalize_lang(k, "data.subsets"): v for k, v in self.subsets.items()}
            except LorasumError as err:
                raise ValueError(str(err)) from None
            object.__setattr__(self, "subsets", mapped)
            missing = [lang for lang in [*self.languages, *(self.test_languages or [])] if lang not in mapped]
            if missing:
                raise ValueError(f"data.subsets names no config for language(s) {', '.join(missing)}; "
                                 f"add them (it maps {', '.join(mapped) or 'nothing'})")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_new_fields(self, handler):
        # fields added for any-dataset/cross-lingual data are left out at their defaults, so
        # configs written before they existed keep their dumps and study config hashes
        out = handler(self)
        for key, default in _NEW_FIELD_DEFAULTS.items():
            if out.get(key) == default:
                out.pop(key, None)
        return out

    @property
    def eval_languages(self) -> list[str]:
        return self.test_languages or self.languages

    @property
    def is_hub_xlsum(self) -> bool:
        return self.source == XLSUM_HUB_ID


# each method's config section lives in its module under lorasum.methods; the union is
# built from the registry there, so a new method needs no edit here
Method = MethodUnion


class TrainingConfig(_Strict):
    epochs: float = Field(default=3, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs when set")
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=5e-4, gt=0)
    schedule: Literal["linear", "constant", "cosine"] = "linear"
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    weight_decay: float = Field(default=0.0, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    # a gradient norm (before clipping) above this stops the run as diverged; NaN/inf always does
    max_grad_norm_abort: float | None = Field(default=1e5, gt=0)
    seed: int = 42
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    max_source_length: int = Field(default=512, ge=8)
    max_target_length: int = Field(default=84, ge=2)
    group_by_length: bool = True
    eval_every: int | None = Field(default=None, ge=1, description="steps between validation losses; default once per epoch")
    early_stopping_patience: int | None = Field(default=None, ge=1, description="evaluations without improvement")
    checkpoint_every: int = Field(default=200, ge=1, description="steps between resumable checkpoints")
    keep_checkpoints: int = Field(default=1, ge=1)
    multilingual_alpha: float = Field(default=0.5, gt=0, le=1, description="language upsampling exponent")
    torch_compile: bool = False


class GenerationConfig(_Strict):
    """Decoding settings; the defaults are XL-Sum's."""

    num_beams: int = Field(default=4, ge=1)
    length_penalty: float = 0.6
    no_repeat_ngram_size: int = Field(default=2, ge=0)
    max_source_length: int = Field(default=512, ge=8)
    max_target_length: int = Field(default=84, ge=2)
    batch_size: int = Field(default=16, ge=1)
    # ctranslate2: the same decoding by CTranslate2's C++ engine (T5/mT5; docs/generation-backends.md)
    backend: Literal["transformers", "ctranslate2"] = "transformers"
    # ctranslate2 only; anything but float32 rounds the weights and changes the summaries
    compute_type: Literal["float32", "int8", "int8_float32", "float16", "bfloat16", "int8_float16",
                          "int8_bfloat16"] = "float32"

    @model_validator(mode="after")
    def _compute_type_needs_ctranslate2(self) -> "GenerationConfig":
        if self.backend == "transformers" and self.compute_type != "float32":
            raise ValueError("compute_type applies to backend: ctranslate2 (transformers decodes in the "
                             "model's own precision)")
        return self


class FaithfulnessConfig(_Strict):
    """NLI faithfulness scoring (opt-in): a sequence-classification NLI model or a seq2seq judge."""

    model: str
    revision: str | None = None
    per_sentence: bool = False  # score each summary sentence and average
    max_chunks: int | None = Field(default=None, ge=1, description="article windows per item; the rest is cut")
    max_length: int | None = Field(default=None, ge=32, description="input tokens; default: the model's limit")
    batch_size: int = Field(default=16, ge=1)
    # seq2seq judges only; the default is SEAHORSE's input format and positive answer
    prompt: str = "premise: {premise} hypothesis: {hypothesis}"
    positive_token: str = "1"
    negative_token: str | None = None  # set: score = P(pos) / (P(pos) + P(neg))
    cache: str | None = None  # SQLite file; default $LORASUM_CACHE_DIR or ~/.cache/lorasum/nli.sqlite

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if "{premise}" not in v or "{hypothesis}" not in v:
            raise ValueError("the prompt needs both {premise} and {hypothesis}")
        return v


class EvaluationConfig(_Strict):
    """Scoring beyond ROUGE; ``faithfulness: MODEL`` is short for ``faithfulness: {model: MODEL}``."""

    faithfulness: FaithfulnessConfig | None = None

    @field_validator("faithfulness", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"model": v} if isinstance(v, str) else v


class TrackingConfig(_Strict):
    """Where training curves and the final test ROUGE are logged (see :mod:`lorasum.tracking`).

    ``tracking: [tensorboard, mlflow]`` is short for ``tracking: {backends: [tensorboard, mlflow]}``.
    ``uri`` is MLflow's tracking URI (default ``$MLFLOW_TRACKING_URI``, else MLflow's own);
    ``experiment`` names the MLflow experiment and the W&B project (default
    ``$MLFLOW_EXPERIMENT_NAME`` / ``$WANDB_PROJECT``, else ``lorasum``).
    """

    backends: list[str] = Field(default_factory=lambda: ["tensorboard"])
    uri: str | None = None
    experiment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"backends": data} if isinstance(data, (list, str)) else data

    @field_validator("backends", mode="before")
    @classmethod
    def _backends(cls, v: Any) -> Any:
        import difflib

        from lorasum.tracking import TRACKERS

        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list):
            return v
        for name in v:
            if name not in TRACKERS:
                close = difflib.get_close_matches(str(name).lower(), TRACKERS, n=1, cutoff=0.5)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ValueError(f"unknown tracker '{name}'; {hint}choose from {', '.join(TRACKERS)}")
        if len(set(v)) != len(v):
            raise ValueError(f"trackers repeat: {v}")
        return v


class RunConfig(_Strict):
    """One training run: base model, data, method, training and generation settings."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    method: Method = Field(default_factory=METHODS[DEFAULT_METHOD].config_class)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    # Optional starting point: a run folder or adapter to continue from (few-shot transfer).
    init_from: str | None = None
    evaluation: EvaluationConfig | None = None
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("model"), str):
                data["model"] = {"name": data["model"]}
            if isinstance(data.get("method"), str):
                data["method"] = {"name": data["method"]}
        return data

    def to_dict(self) -> dict:
        out = self.model_dump(mode="json")
        if out.get("evaluation") is None:
            out.pop("evaluation", None)  # runs without it keep the dict (and cell hashes) they had before
        if out.get("tracking") == TrackingConfig().model_dump(mode="json"):
            out.pop("tracking")  # likewise for the default tracking
        if self.generation.backend == "transformers":
            out["generation"].pop("backend", None)  # likewise for runs on the default backend
            out["generation"].pop("compute_type", None)
        return out


def format_validation_error(err: ValidationError, source: str) -> str:
    """One readable line per problem: ``file: field.path: message``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in METHOD_NAMES))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            from lorasum.overrides import suggest

            names = [str(p) for p in e["loc"] if not (isinstance(p, str) and p in METHOD_NAMES)]
            hint = suggest(names[0] if len(names) > 1 else "", names[-1]) if names else None
            msg = f"unknown field; did you mean {hint}?" if hint else \
                "unknown field (check its spelling and where it is nested)"
        elif e["type"] == "union_tag_invalid":
            msg = "method must be " + " or ".join(f"'{n}'" for n in METHOD_NAMES)
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "\n".join(lines)


def parse_run_config(data: dict, source: str = "<config>", overrides: list[str] | None = None) -> RunConfig:
    """Validate a dict as a :class:`RunConfig`, raising a :class:`LorasumError` naming ``source``.

    ``overrides`` (``section.field=value``) are applied first; field names from transformers
    and peft (``learning_rate``, ``lora_alpha``, ...) are renamed to lorasum's (see
    :mod:`lorasum.overrides`).
    """
    from lorasum.overrides import apply_overrides, resolve_aliases

    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} (with overrides)"
    try:
        return RunConfig.model_validate(resolve_aliases(data))
    except ValidationError as err:
        raise LorasumError(format_validation_error(err, source)) from None
    except LorasumError as err:
        raise LorasumError(f"{source}: {err}") from None


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LorasumError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise LorasumError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LorasumError(f"{path}: the top level must be a mapping of sections (model, data, method, ...)")
    return data


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read and validate a run YAML file, with optional ``section.field=value`` overrides."""
    return parse_run_config(read_yaml(path), str(path), overrides)
