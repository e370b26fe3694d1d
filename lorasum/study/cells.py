"""Expanding a study spec into cells: one cell = one run of the runner.

Cell ids are readable paths in the paper's vocabulary, stable across re-runs, e.g.
``low_data/en/lora-r8-attention/shots64/seed1``. Each cell also carries a short hash
of its resolved run config and of its inputs' content, so a spec edit or a changed data
file or model that changes what a cell would compute is detected instead of silently
reusing the old result.

Compose cells depend on several source-adapter cells (``Cell.sources``). A source
adapter identical to a cell of another scenario (same config hash) is that cell, run once.

Sharding: ``--shard i/n`` gives each of n machines a deterministic share of cells with
no coordination: a cell *group* goes to shard ``sha256(group id) mod n + 1``, a function
of its own id only, so adding or removing a scenario never moves an existing cell to
another machine. A group is a cell plus the few-shot cells that continue from it, so a
few-shot cell always lands on the machine that runs its zero-shot parent, and runs after
it there. Shares are balanced in expectation, not exactly. A compose cell goes with its
first source adapter; its other sources may run on other shards, and it waits for them
until their folders are merged in.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from lorasum.config import RunConfig, parse_run_config
from lorasum.errors import LorasumError
from lorasum.methods import DEFAULT_METHOD, get_method
from lorasum.methods import label as method_label
from lorasum.study.spec import (PAIR, Axes, Compose, FewShot, FullData, LowData, MultiSource, StudySpec, ZeroShot,
                                split_pair)


@dataclass(frozen=True)
class Variant:
    """One point of the method axes: a method and the config fields the axes set for it.

    ``label`` is the method's label of the resolved config (see :mod:`lorasum.methods`),
    e.g. ``full`` or ``lora-r8-attention``; it is empty until the cell's config is built.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def columns(self) -> dict[str, Any]:
        """The results table's method columns; methods without rank/targets leave them empty."""
        return {"rank": None, "targets": None, "lora_alpha": None,
                **get_method(self.method).axis_columns(self.options)}


@dataclass(frozen=True)
class Composition:
    """What a compose-scenario cell does: train a source ``adapter``, or compose them (``uniform``/``learned``).

    ``settings`` (composition cells only) enter the cell's config hash: the peft
    combination ``method``, and for learned weights the target ``shots`` and the search's
    ``budget``, ``l1_penalty`` and ``seed``.
    """

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One run of a study, with the axis values it stands for."""

    id: str
    scenario: str
    regime: str
    variant: Variant
    seed: int
    train_langs: tuple[str, ...]
    test_langs: tuple[str, ...]
    shots: int | None
    multilingual: bool
    config: RunConfig  # portable: model/data names as written, init_from unset
    config_hash: str
    parent: str | None = None  # few-shot: the zero-shot cell it continues
    summary_lang: str | None = None  # cross-lingual cells (de->en): the summaries' language
    group: str = ""  # sharding unit: the root cell id
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    composition: Composition | None = None  # compose scenario cells
    sources: tuple[str, ...] = ()  # compose: the source-adapter cells, in train_langs order

    @property
    def requires(self) -> tuple[str, ...]:
        """Cells that must be done before this one runs: its parent and its source adapters."""
        return ((self.parent,) if self.parent else ()) + self.sources

    def axes(self) -> dict[str, Any]:
        """Axis values, as stored in ``cell.json`` and in the results table."""
        return {
            "cell_id": self.id,
            "scenario": self.scenario,
            "regime": self.regime,
            "method": self.variant.method,
            "variant": self.variant.label,
            **self.variant.columns(),
            "seed": self.seed,
            "train_langs": list(self.train_langs),
            "test_langs": list(self.test_langs),
            "summary_lang": self.summary_lang,
            "shots": self.shots,
            "multilingual": self.multilingual,
            "parent": self.parent,
            "config_hash": self.config_hash,
            **({"composition": self.composition.kind, "sources": list(self.sources)} if self.composition else {}),
        }


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` laid onto ``base``: nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _norm_sections(d: dict) -> dict:
    d = copy.deepcopy(d or {})
    if isinstance(d.get("model"), str):
        d["model"] = {"name": d["model"]}
    if isinstance(d.get("method"), str):
        d["method"] = {"name": d["method"]}
    return d


def variants(axes: Axes, base_method: dict | None = None) -> list[Variant]:
    """Every method variant the axes ask for, each method expanding its own axes."""
    return [Variant(m, options) for m in axes.method
            for options in get_method(m).variants(axes, base_method or {})]


# Settings that change how a cell runs, never what it computes: how often it checkpoints
# and how many checkpoints it keeps (a resumed run is bit-exact), how many test articles are
# decoded at once (a throughput knob; batching changes padding, not the method), and whether
# bad rows are skipped (a run that succeeds without skipping has no bad rows to skip).
NO_EFFECT = {"training": ("checkpoint_every", "keep_checkpoints"), "generation": ("batch_size",),
             "data": ("skip_bad_rows",)}


def config_hash(config: RunConfig, parent_hash: str | None = None, extra: dict | None = None) -> str:
    """Short stable hash of what a cell computes: its config less :data:`NO_EFFECT`, the
    fingerprints of its model and data (content or hub commit), its parent's hash, and
    ``extra`` (a compose cell's settings and source hashes; left out when None)."""
    from lorasum.study.fingerprints import data_fingerprint, model_fingerprint

    d = config.to_dict()
    d.pop("tracking", None)  # where a cell's curves are logged, never what it computes
    for section, keys in NO_EFFECT.items():
        for key in keys:
            d[section].pop(key, None)
    inputs = {"model": model_fingerprint(config.model.name, config.model.revision),
              "data": data_fingerprint(config.data.source, config.data.is_hub_xlsum)}
    payload = {"config": d, "inputs": inputs, "parent": parent_hash}
    if extra is not None:
        payload["extra"] = extra
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _langs_part(langs: list[str] | tuple[str, ...]) -> str:
    langs = [x.replace(PAIR, "2") for x in langs]  # de->en names a folder as de2en
    if len(langs) <= 4:
        return "+".join(langs)
    digest = hashlib.sha256(",".join(sorted(langs)).encode()).hexdigest()[:6]
    return f"{len(langs)}langs-{digest}"


def _summary_lang(languages, test_languages, cell_id: str, source: str) -> str | None:
    """The one summary language of a cell's language pairs (None: summaries in the article's language)."""
    entries = [*languages, *test_languages]
    targets = {split_pair(x)[1] or split_pair(x)[0] for x in entries}
    if not any(split_pair(x)[1] for x in entries):
        return None
    if len(targets) > 1:
        raise LorasumError(f"{source}: cell {cell_id}: its language pairs ask for summaries in "
                           f"{', '.join(sorted(targets))}; one cell trains and tests one summary language")
    return targets.pop()


class _Builder:
    def __init__(self, spec: StudySpec, source: str):
        self.spec = spec
        self.source = source
        self.base = _norm_sections(spec.base)

    def config(self, scenario, v: Variant, seed: int, *, cell_id: str, languages, test_languages,
               train_examples, multilingual_alpha=None) -> RunConfig:
        d = deep_merge(self.base, _norm_sections(self.spec.per_method.get(v.method, {})))
        d = deep_merge(d, _norm_sections(scenario.overrides))
        # the method section: what base/per_method/overrides say for this method, then the axes' values
        method = d.get("method") or {}
        same = method.get("name", DEFAULT_METHOD) == v.method
        d["method"] = {**({k: x for k, x in method.items() if k != "name"} if same else {}),
                       **v.options, "name": v.method}
        data = d.setdefault("data", {})
        data.update(languages=[split_pair(x)[0] for x in languages],
                    test_languages=[split_pair(x)[0] for x in test_languages],
                    train_examples=train_examples, sample_seed=seed)
        summary_lang = _summary_lang(languages, test_languages, cell_id, self.source)
        if summary_lang is not None:
            data["summary_lang"] = summary_lang
        training = d.setdefault("training", {})
        training["seed"] = seed
        if multilingual_alpha is not None:
            training["multilingual_alpha"] = multilingual_alpha
        d.pop("init_from", None)
        return parse_run_config(d, f"{self.source}: cell {cell_id}")

    def cell(self, scenario, v: Variant, seed: int, *, langs_part: str, shots: int | None, languages,
             test_languages, train_examples, multilingual=False, multilingual_alpha=None,
             parent: Cell | None = None, composition: Composition | None = None,
             sources: tuple[Cell, ...] = ()) -> Cell:
        tail = ([f"shots{shots}"] if shots is not None else []) + [f"seed{seed}"]
        if composition is not None and composition.kind != "adapter":
            tail.insert(0, composition.kind)
        m = get_method(v.method)
        # names the cell in errors: the axes' values on the method's defaults
        draft = "/".join([scenario.label, langs_part, m.label(m.config_class.model_construct(**v.options)), *tail])
        cfg = self.config(scenario, v, seed, cell_id=draft, languages=languages, test_languages=test_languages,
                          train_examples=train_examples, multilingual_alpha=multilingual_alpha)
        v = replace(v, label=method_label(cfg.method))  # the label of what the cell really trains
        cid = "/".join([scenario.label, langs_part, v.label, *tail])
        extra = None
        if sources:  # a composition: its settings and what it composes
            extra = {"composition": composition.kind, **composition.settings,
                     "sources": {lang: s.config_hash for s in sources for lang in s.train_langs}}
        return Cell(
            id=cid, scenario=scenario.label, regime=scenario.regime, variant=v, seed=seed,
            train_langs=tuple(lang for s in sources for lang in s.train_langs) if sources
            else tuple(split_pair(x)[0] for x in languages),
            test_langs=tuple(split_pair(x)[0] for x in test_languages), shots=shots,
            multilingual=multilingual, config=cfg, summary_lang=cfg.data.summary_lang,
            config_hash=config_hash(cfg, parent.config_hash if parent else None, extra),
            parent=parent.id if parent else None,
            group=parent.group if parent else (sources[0].group if sources else cid),
            composition=composition, sources=tuple(s.id for s in sources),
        )


def expand(spec: StudySpec, source: str = "<study>") -> list[Cell]:
    """All cells of a study, parents before the cells that depend on them."""
    b = _Builder(spec, source)
    base_method = b.base.get("method") or {}
    cells: list[Cell] = []
    by_scenario: dict[str, list[Cell]] = {}
    for sc in spec.scenarios:
        if isinstance(sc, (FewShot, Compose)):
            continue
        axes = spec.scenario_axes(sc, source)
        vs = variants(axes, base_method)
        made = list(_scenario_cells(b, sc, axes, vs))
        by_scenario[sc.label] = made
        cells.extend(made)
    for sc in spec.scenarios:
        if not isinstance(sc, FewShot):
            continue
        parent_sc = next(p for p in spec.scenarios if p.label == sc.after)
        targets = sc.target_langs or parent_sc.target_langs
        for parent in by_scenario[sc.after]:
            for t in targets:
                for k in sc.shots:
                    cells.append(b.cell(
                        sc, parent.variant, parent.seed,
                        langs_part=f"{_langs_part(parent.train_langs)}-to-{t}", shots=k,
                        languages=[t], test_languages=[t], train_examples=k, parent=parent,
                    ))
    roots = {c.config_hash: c for c in cells if not c.requires}
    for sc in spec.scenarios:
        if isinstance(sc, Compose):
            cells.extend(_compose_cells(b, sc, spec.scenario_axes(sc, source), base_method, roots))
    ids = [c.id for c in cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise LorasumError(f"{source}: cell ids repeat (axes values repeat?): {dupes[:3]}")
    return cells


def _scenario_cells(b: _Builder, sc, axes: Axes, vs: list[Variant]) -> Iterator[Cell]:
    if isinstance(sc, FullData):
        if sc.multilingual:
            for v in vs:
                for seed in axes.seed:
                    yield b.cell(sc, v, seed, langs_part=f"multi-{_langs_part(sc.languages)}", shots=None,
                                 languages=sc.languages, test_languages=sc.languages,
                                 train_examples=sc.max_train_examples, multilingual=True,
                                 multilingual_alpha=sc.alpha)
            return
        for lang in sc.languages:
            for v in vs:
                for seed in axes.seed:
                    yield b.cell(sc, v, seed, langs_part=_langs_part([lang]), shots=None, languages=[lang],
                                 test_languages=[lang], train_examples=sc.max_train_examples)
    elif isinstance(sc, LowData):
        for lang in sc.languages:
            for k in sc.shots:
                for v in vs:
                    for seed in axes.seed:
                        yield b.cell(sc, v, seed, langs_part=_langs_part([lang]), shots=k, languages=[lang],
                                     test_languages=[lang], train_examples=k)
    elif isinstance(sc, (ZeroShot, MultiSource)):
        part = f"{_langs_part(sc.source_langs)}-to-{_langs_part(sc.target_langs)}"
        for v in vs:
            for seed in axes.seed:
                yield b.cell(sc, v, seed, langs_part=part, shots=None, languages=sc.source_langs,
                             test_languages=sc.target_langs, train_examples=sc.max_train_examples,
                             multilingual=len(sc.source_langs) > 1)
    else:  # pragma: no cover - the spec's union is closed
        raise LorasumError(f"unknown regime {sc.regime}")


def lora_variants(vs: list[Variant]) -> list[Variant]:
    """The variants a compose scenario keeps: composition needs adapters, so full fine-tuning is left out."""
    return [v for v in vs if get_method(v.method).artifact_name == "adapter"]


def skipped_variants(spec: StudySpec, source: str = "<study>") -> list[str]:
    """One note per compose scenario whose axes name methods it leaves out (full fine-tuning)."""
    notes = []
    base_method = _norm_sections(spec.base).get("method") or {}
    for sc in spec.scenarios:
        if isinstance(sc, Compose):
            vs = variants(spec.scenario_axes(sc, source), base_method)
            left = sorted({v.method for v in vs} - {v.method for v in lora_variants(vs)})
            if left:
                notes.append(f"scenario {sc.label}: no {', '.join(left)} cells (composition needs LoRA adapters)")
    return notes


def _compose_cells(b: _Builder, sc: Compose, axes: Axes, base_method: dict, roots: dict[str, Cell]) -> Iterator[Cell]:
    """Source adapters (reusing identical cells of the study), then per target uniform and learned cells."""
    adapters: dict[tuple[int, int, str], Cell] = {}
    for i, v in enumerate(lora_variants(variants(axes, base_method))):
        for seed in axes.seed:
            for lang in [x for x in sc.source_langs if any(x in sc.sources_for(t) for t in sc.target_langs)]:
                c = b.cell(sc, v, seed, langs_part=_langs_part([lang]), shots=None, languages=[lang],
                           test_languages=[lang], train_examples=sc.max_train_examples,
                           composition=Composition("adapter"))
                m = c.config.method
                if getattr(m, "rslora", False) or getattr(m, "dora", False):
                    raise LorasumError(f"{b.source}: scenario {sc.label}: cell {c.id}: rsLoRA and DoRA adapters "
                                       "cannot be composed as an exact weighted sum; set axes: "
                                       "{rslora: [false], dora: [false]} for this scenario")
                if c.config_hash in roots:
                    c = roots[c.config_hash]
                else:
                    roots[c.config_hash] = c
                    yield c
                adapters[(i, seed, lang)] = c
            for t in sc.target_langs:
                srcs = tuple(adapters[(i, seed, s)] for s in sc.sources_for(t))
                part = f"{_langs_part(sc.sources_for(t))}-to-{t}"
                yield b.cell(sc, v, seed, langs_part=part, shots=None, languages=[t], test_languages=[t],
                             train_examples=None, sources=srcs,
                             composition=Composition("uniform", {"method": sc.method}))
                search = {"budget": sc.search.budget, "l1_penalty": sc.search.l1_penalty,
                          "seed": seed if sc.search.seed is None else sc.search.seed}
                yield b.cell(sc, v, seed, langs_part=part, shots=sc.shots, languages=[t], test_languages=[t],
                             train_examples=sc.shots, sources=srcs,
                             composition=Composition("learned", {"method": sc.method, "shots": sc.shots,
                                                                 **search}))


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` (1-based, as in ``--shard 2/4``) -> ``(i, n)``."""
    if shard is None:
        return None
    if isinstance(shard, tuple):
        i, n = shard
    else:
        try:
            i, n = (int(x) for x in str(shard).split("/"))
        except ValueError:
            raise LorasumError(f"--shard: expected i/n such as 1/4, got {shard!r}") from None
    if not (n >= 1 and 1 <= i <= n):
        raise LorasumError(f"--shard: need 1 <= i <= n, got {i}/{n}")
    return i, n


def group_shard(group: str, n: int) -> int:
    """The 1-based shard of a cell group out of ``n``: a hash of the group id alone."""
    return int(hashlib.sha256(group.encode("utf-8")).hexdigest(), 16) % n + 1


def shard_index(cells: list[Cell], n: int) -> dict[str, int]:
    """Cell id -> 1-based shard; each group's shard depends on its own id only."""
    return {c.id: group_shard(c.group, n) for c in cells}


def select_shard(cells: list[Cell], shard: str | tuple[int, int] | None) -> list[Cell]:
    parsed = parse_shard(shard)
    if parsed is None:
        return list(cells)
    i, n = parsed
    where = shard_index(cells, n)
    return [c for c in cells if where[c.id] == i]


def estimate_steps(config: RunConfig, examples: int | None) -> int | None:
    """Optimizer steps the runner will take for ``examples`` training examples."""
    t = config.training
    if t.max_steps:
        return t.max_steps
    if examples is None:
        return None
    per_epoch = math.ceil(examples / (t.batch_size * t.grad_accum))
    return math.ceil(per_epoch * t.epochs)
