"""The compose scenario: spec checks, expansion into adapter and composition cells, a real tiny study."""
import copy
import json
import sys
from pathlib import Path

import pytest
import torch

from lorasum.errors import LorasumError
from lorasum.study import load_study, run_study, study_report, study_results
from lorasum.study.cells import skipped_variants
from lorasum.study.runner import cell_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lora_factory import delta_weights  # noqa: E402

COMPOSE = {"regime": "compose", "source_langs": ["en", "ru", "fr"], "target_langs": ["fr"], "shots": 4,
           "max_train_examples": 4,
           # no penalty: the tiny adapters barely move the loss, and the search should leave zero
           "search": {"budget": 6, "l1_penalty": 0.0}}
STUDY = {
    "name": "comp",
    "base": {"model": "lorasum:tiny-mt5",
             "data": {"source": "lorasum:demo", "validation_examples": 2, "test_examples": 3},
             "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
             "training": {"max_steps": 2, "batch_size": 4, "lr": 1e-2, "max_source_length": 64,
                          "max_target_length": 32, "checkpoint_every": 2},
             "generation": {"num_beams": 1, "max_source_length": 64, "max_target_length": 8, "batch_size": 4}},
    "axes": {"method": ["lora"], "rank": [4], "seed": [0]},
    "scenarios": [
        {"regime": "zero_shot", "source_langs": ["en"], "target_langs": ["fr"], "max_train_examples": 4},
        {"regime": "few_shot", "after": "zero_shot", "shots": [4]},
        COMPOSE,
    ],
}
UNIFORM = "compose/en+ru-to-fr/lora-r4-attention/uniform/seed0"
LEARNED = "compose/en+ru-to-fr/lora-r4-attention/learned/shots4/seed0"


def _with(scenario_changes: dict, study: dict = STUDY, **top) -> dict:
    d = copy.deepcopy(study)
    d["scenarios"][-1].update(scenario_changes)
    d.update(top)
    return d


# ---- spec validation

@pytest.mark.parametrize("change, message", [
    ({"target_langs": ["xx-bogus"]}, r"scenarios\.2\.target_langs: .*xx-bogus"),
    ({"source_langs": ["fr"], "target_langs": ["fr"]}, "target fr has no source language other than itself"),
    ({"source_langs": ["zh-CN", "en"], "target_langs": ["zh-TW"]}, "zh-CN -> zh-TW leaks"),
    ({"source_langs": ["de->en", "fr"]}, "language codes, not article->summary pairs"),
    ({"method": "average"}, r"scenarios\.2\.method"),
    ({"search": {"budget": 0}}, r"search\.budget"),
    ({"shots": 0}, r"scenarios\.2\.shots"),
    ({"axes": {"method": ["full"]}}, "composition needs LoRA adapters"),
])
def test_spec_errors_name_the_field(write_spec, change, message):
    with pytest.raises(LorasumError, match=message):
        load_study(write_spec(_with(change)))


def test_rslora_adapters_are_refused(write_spec):
    with pytest.raises(LorasumError, match="rsLoRA and DoRA adapters cannot be composed"):
        load_study(write_spec(_with({"axes": {"rslora": [True]}})))


# ---- expansion

def test_expansion_gives_source_adapters_then_uniform_and_learned_cells(write_spec):
    spec, cells = load_study(write_spec(_with({"target_langs": ["fr", "ar"]}, axes={"method": ["full", "lora"],
                                                                                     "rank": [4], "seed": [0]})))
    comp = {c.id: c for c in cells if c.scenario == "compose"}
    # fr is a source only for ar, so it gets an adapter; no full cells here
    assert sorted(comp) == sorted([
        "compose/en/lora-r4-attention/seed0", "compose/ru/lora-r4-attention/seed0", "compose/fr/lora-r4-attention/seed0",
        UNIFORM, LEARNED,
        "compose/en+ru+fr-to-ar/lora-r4-attention/uniform/seed0",
        "compose/en+ru+fr-to-ar/lora-r4-attention/learned/shots4/seed0"])
    assert skipped_variants(spec) == ["scenario compose: no full cells (composition needs LoRA adapters)"]
    u, lrn = comp[UNIFORM], comp[LEARNED]
    assert u.sources == lrn.sources == ("compose/en/lora-r4-attention/seed0", "compose/ru/lora-r4-attention/seed0")
    assert u.train_langs == ("en", "ru") and u.test_langs == ("fr",)
    assert (u.composition.kind, lrn.composition.kind) == ("uniform", "learned")
    assert lrn.composition.settings == {"method": "cat", "shots": 4, "budget": 6, "l1_penalty": 0.0, "seed": 0}
    # learned weights read `shots` examples of the target's train data; uniform reads none
    assert lrn.config.data.languages == ["fr"] and lrn.config.data.train_examples == 4
    assert u.config.data.train_examples is None
    ids = [c.id for c in cells]
    assert all(ids.index(s) < ids.index(UNIFORM) for s in u.sources)  # sources run first
    assert u.group == comp["compose/en/lora-r4-attention/seed0"].group
    adapter = comp["compose/ru/lora-r4-attention/seed0"]
    assert adapter.config.data.languages == ["ru"] and adapter.config.data.train_examples == 4
    assert not adapter.sources and adapter.composition.kind == "adapter"


def test_an_identical_cell_elsewhere_in_the_study_is_reused_as_the_source_adapter(write_spec):
    low = {"regime": "low_data", "languages": ["en"], "shots": [4]}
    study = copy.deepcopy(STUDY)
    study["scenarios"].insert(0, low)
    _, cells = load_study(write_spec(study))
    ids = [c.id for c in cells]
    assert "compose/en/lora-r4-attention/seed0" not in ids
    uniform = next(c for c in cells if c.id == UNIFORM)
    assert uniform.sources == ("low_data/en/lora-r4-attention/shots4/seed0", "compose/ru/lora-r4-attention/seed0")


def test_weight_search_settings_change_the_learned_fingerprint_only(write_spec, tmp_path):
    def hashes(changes):
        _, cells = load_study(write_spec(_with(changes), name=f"s{len(list(tmp_path.iterdir()))}.yaml"))
        return {c.id: c.config_hash for c in cells}

    base = hashes({})
    for change in ({"search": {"budget": 7}}, {"search": {"l1_penalty": 0.1}}, {"search": {"seed": 3}},
                   {"shots": 5}):
        h = hashes(change)
        learned = next(k for k in h if "/learned/" in k)
        assert learned not in base or h[learned] != base[learned], change
        assert h[UNIFORM] == base[UNIFORM], change
        assert h["compose/en/lora-r4-attention/seed0"] == base["compose/en/lora-r4-attention/seed0"]
    h = hashes({"method": "svd"})
    assert h[UNIFORM] != base[UNIFORM] and h[LEARNED] != base[LEARNED]
    h = hashes({"max_train_examples": 5})  # new source adapters: every composition of them changes
    assert h[UNIFORM] != base[UNIFORM] and h[LEARNED] != base[LEARNED]


def test_compositions_wait_for_their_source_adapters(write_spec, tmp_path, fake_runner):
    def flaky(config, run_dir, *, progress=True):
        if "compose/ru" in str(run_dir):
            raise RuntimeError("disk full")
        return fake_runner(config, run_dir, progress=progress)

    # the fake runner loads no model: a hub name spares building the tiny one
    study = copy.deepcopy(STUDY)
    study["base"]["model"] = "google/mt5-small"
    out = run_study(write_spec(study), out_dir=tmp_path / "s", runner=flaky, progress=False)
    assert out["failed"] == ["compose/ru/lora-r4-attention/seed0"]
    assert sorted(out["waiting"]) == sorted([UNIFORM, LEARNED])
    listed = run_study(write_spec(study), out_dir=tmp_path / "s", dry_run=True, cells=["compose/*/uniform/*"])
    assert [c["id"] for c in listed["cells"]] == ["compose/en/lora-r4-attention/seed0",
                                                  "compose/ru/lora-r4-attention/seed0", UNIFORM]


# ---- a real tiny study

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import yaml

    tmp = tmp_path_factory.mktemp("compose-study")
    spec = tmp / "study.yaml"
    spec.write_text(yaml.safe_dump(STUDY, sort_keys=False))
    out = run_study(spec, out_dir=tmp / "s", progress=False)
    again = run_study(spec, out_dir=tmp / "s", progress=False)
    return {"dir": tmp / "s", "out": out, "again": again, "spec": spec}


def _deltas(adapter: Path) -> dict:
    from peft import PeftModel

    from lorasum.models.load import load_base

    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model, _, _ = load_base(base)
    return delta_weights(PeftModel.from_pretrained(model, str(adapter)), "default")


@pytest.mark.slow
def test_tiny_study_runs_compositions_once(study):
    assert not study["out"]["failed"] and not study["out"]["waiting"]
    assert study["out"]["ran"][-2:] == [UNIFORM, LEARNED]
    assert "compose/fr/lora-r4-attention/seed0" not in study["out"]["ran"]  # fr is only a target
    assert study["again"]["ran"] == [] and len(study["again"]["skipped"]) == len(study["out"]["ran"])


@pytest.mark.slow
@pytest.mark.parametrize("cell", [UNIFORM, LEARNED])
def test_composed_adapter_is_the_exact_weighted_sum_of_the_sources(study, cell):
    d = cell_dir(study["dir"], cell)
    record = json.loads((d / "composition.json").read_text())
    weights = record["weights"]
    if cell == UNIFORM:
        assert weights == {"en": 0.5, "ru": 0.5}
    else:
        assert record["evaluations"] == 6 and len(record["curve"]) == 6
        assert all(w != 0 for w in weights.values())  # so the sum below tests every source
    got = _deltas(d / "adapter")
    sources = json.loads((d / "cell.json").read_text())["sources"]
    want = None
    for lang, src in zip(("en", "ru"), sources):
        dw = _deltas(cell_dir(study["dir"], src) / "adapter")
        want = {k: weights[lang] * v for k, v in dw.items()} if want is None else \
            {k: want[k] + weights[lang] * v for k, v in dw.items()}
    assert got.keys() == want.keys() and got
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6), k
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["run"]["test_examples"] == {"fr": 3} and "rougeL" in metrics["rouge"]["overall"]
    assert metrics["rouge"]["overall"]["rougeL"]["mean_ci"]  # bootstrap CI like every cell
    assert len((d / "predictions.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_learned_weights_read_the_targets_train_split_only(study):
    from lorasum.data.stream import sample_examples
    from lorasum.demo import DATA

    record = json.loads((cell_dir(study["dir"], LEARNED) / "composition.json").read_text())
    split = {}
    for line in Path(DATA).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        split[row["id"]] = (row["lang"], row["split"])
    assert len(record["examples"]) == 4
    assert {split[i] for i in record["examples"]} == {("fr", "train")}
    # the study's seeded sampler, as a low-data cell with 4 French examples would draw them
    _, cells = load_study(study["spec"])
    cfg = next(c for c in cells if c.id == LEARNED).config.data.model_copy(update={"source": str(DATA)})
    assert record["examples"] == [ex["id"] for ex in sample_examples(cfg, "train", ["fr"], 4, 0)["fr"]]
    tested = [json.loads(x)["id"] for x in
              (cell_dir(study["dir"], LEARNED) / "predictions.jsonl").read_text().splitlines()]
    assert {split[i] for i in tested} == {("fr", "test")}


@pytest.mark.slow
def test_results_and_report_show_the_four_settings_per_target(study):
    from lorasum.report.composition import comparison

    df = study_results(study["dir"])
    comp = df[(df["regime"] == "compose") & (df["level"] == "language")]
    by_kind = {k: g for k, g in comp.groupby("composition")}
    assert set(by_kind) == {"adapter", "uniform", "learned"}
    for kind in ("uniform", "learned"):
        assert by_kind[kind]["train_langs"].tolist() == ["en+ru"] and by_kind[kind]["lang"].tolist() == ["fr"]
    table = comparison(df)
    assert table["setting"].tolist() == ["zero-shot", "few-shot", "uniform", "learned"]
    assert table["label"].tolist() == ["zero-shot (en)", "few-shot k=4 (en)", "uniform (en+ru)",
                                       "learned k=4 (en+ru)"]
    assert table["y"].notna().all() and (table["lo"] <= table["y"]).all() and (table["y"] <= table["hi"]).all()
    html = study_report(study["dir"]).read_text()
    assert "Composition of language adapters" in html and "id='fig-composition'" in html
    md = (study["dir"] / "report" / "summary.md").read_text()
    section = md.split("## Composition of language adapters")[1].split("\n## ")[0]
    assert "learned k=4 (en+ru)" in section and "en +0.50, ru +0.50" in section and "Absent" not in section
    assert "| compose | fr | fr | en+ru | – | lora-r4-attention (uniform) |" in md


@pytest.mark.slow
def test_report_names_the_settings_a_target_lacks(study, tmp_path):
    import shutil

    from lorasum.report.composition import absent, comparison, section

    part = tmp_path / "part"
    shutil.copytree(study["dir"], part)
    shutil.rmtree(part / "runs" / "few_shot")
    df = study_results(part)
    table = comparison(df)
    assert absent(table, "fr") == ["few-shot"]
    sec = section(part, df)
    assert sec.png and "Absent: fr: no few-shot cells." in sec.markdown
