"""Methods as modules: the registry, rsLoRA and DoRA options, their study axes and labels."""
import copy
import json
import math

import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lorasum.config import RunConfig, parse_run_config
from lorasum.errors import LorasumError
from lorasum.methods import METHODS, get_method, label
from lorasum.methods.lora import LoraMethod, apply_lora
from lorasum.models.load import load_base
from lorasum.study import parse_study_spec
from lorasum.study.cells import expand


def test_run_config_union_is_built_from_the_registry():
    assert set(METHODS) == {"full", "lora"}
    cfg = parse_run_config({"method": {"name": "lora", "r": 4, "rslora": True, "dora": True}})
    assert isinstance(cfg.method, METHODS["lora"].config_class)
    assert cfg.method.rslora and cfg.method.dora
    assert isinstance(parse_run_config({"method": "full"}).method, METHODS["full"].config_class)
    with pytest.raises(LorasumError, match="run.yaml: method.rslora: Input should be a valid boolean"):
        parse_run_config({"method": {"name": "lora", "rslora": "sometimes"}}, "run.yaml")


def test_off_options_stay_out_of_the_saved_config():
    # configs (and study hashes) written before rsLoRA/DoRA existed must stay the same
    plain = RunConfig().to_dict()["method"]
    assert plain == {"name": "lora", "r": 8, "alpha": 16.0, "dropout": 0.1, "targets": "attention"}
    on = parse_run_config({"method": {"name": "lora", "rslora": True, "dora": True}}).to_dict()["method"]
    assert on["rslora"] is True and on["dora"] is True
    assert parse_run_config({"method": on}).method == parse_run_config({"method": on}).method


@pytest.mark.parametrize("cfg, expected", [
    ({"name": "full"}, "full"),
    ({"name": "lora", "r": 8}, "lora-r8-attention"),
    ({"name": "lora", "r": 8, "rslora": True}, "lora-r8-attention-rslora"),
    ({"name": "lora", "r": 16, "dora": True, "targets": ["q", "v"]}, "dora-r16-q+v"),
    ({"name": "lora", "r": 4, "dora": True, "rslora": True, "targets": "attention+ffn"},
     "dora-r4-attention+ffn-rslora"),
])
def test_labels(cfg, expected):
    assert label(parse_run_config({"method": cfg}).method) == expected


def test_rslora_scales_by_alpha_over_sqrt_rank(tiny_mt5):
    for rslora, want in ((False, 8 / 4), (True, 8 / math.sqrt(4))):
        model, _, fam = load_base(str(tiny_mt5))
        peft_model = apply_lora(model, fam, LoraMethod(r=4, alpha=8, rslora=rslora))
        scalings = [m.scaling["default"] for m in peft_model.modules() if isinstance(m, LoraLayer)]
        assert scalings and all(s == pytest.approx(want) for s in scalings), (rslora, set(scalings))


def test_dora_option_adds_magnitude_vectors(tiny_mt5):
    model, _, fam = load_base(str(tiny_mt5))
    names = [n for n, _ in apply_lora(model, fam, LoraMethod(r=4, dora=True)).named_parameters()]
    assert any("lora_magnitude_vector" in n for n in names)


STUDY = {
    "name": "variants",
    "base": {"model": "google/mt5-small", "data": {"source": "data.jsonl"}},
    "axes": {"method": ["full", "lora"], "rank": [4, 16], "rslora": [False, True], "dora": [False, True]},
    "scenarios": [{"regime": "low_data", "languages": ["en"], "shots": [64]}],
}


def test_study_crosses_rank_with_lora_rslora_and_dora():
    cells = {c.id: c for c in expand(parse_study_spec(copy.deepcopy(STUDY), "s.yaml"), "s.yaml")}
    labels = [f"{head}-r{r}-attention{tail}" for r in (4, 16) for head in ("lora", "dora") for tail in ("", "-rslora")]
    assert sorted(cells) == sorted(f"low_data/en/{v}/shots64/seed0" for v in ["full", *labels])
    for cid, cell in cells.items():
        m = cell.config.method
        assert cell.variant.label == label(m) and cell.axes()["variant"] == label(m)
        if m.name == "lora":
            assert (m.dora, m.rslora) == ("dora-" in cid, "-rslora" in cid)
            assert cell.axes()["rank"] == m.r
    # the plain LoRA cell is the cell a spec without the new axes makes: same id, same hash
    old = copy.deepcopy(STUDY)
    del old["axes"]["rslora"], old["axes"]["dora"]
    before = {c.id: c.config_hash for c in expand(parse_study_spec(old, "s.yaml"), "s.yaml")}
    assert before == {cid: cells[cid].config_hash for cid in before}


def test_base_config_rslora_shows_in_labels():
    spec = copy.deepcopy(STUDY)
    spec["base"]["method"] = {"name": "lora", "rslora": True}
    del spec["axes"]["rslora"], spec["axes"]["dora"]
    ids = sorted(c.id for c in expand(parse_study_spec(spec, "s.yaml"), "s.yaml"))
    assert ids == ["low_data/en/full/shots64/seed0", "low_data/en/lora-r16-attention-rslora/shots64/seed0",
                   "low_data/en/lora-r4-attention-rslora/shots64/seed0"]


def test_unknown_method_names_the_field():
    spec = copy.deepcopy(STUDY)
    spec["axes"]["method"] = ["lora", "prefix"]
    with pytest.raises(LorasumError, match=r"s.yaml: axes.method: unknown method\(s\) \['prefix'\]"):
        parse_study_spec(spec, "s.yaml")
    spec = copy.deepcopy(STUDY)
    spec["per_method"] = {"prefix": {}}
    with pytest.raises(LorasumError, match="s.yaml: per_method.prefix: unknown method"):
        parse_study_spec(spec, "s.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("option", ["rslora", "dora"])
def test_rslora_and_dora_runs_save_adapters_plain_peft_loads(option, tiny_run_config, tiny_mt5, tmp_path):
    from lorasum.run import train_and_evaluate

    cfg = tiny_run_config(tiny_mt5, "lora", **{f"method__{option}": True})
    metrics = train_and_evaluate(cfg, tmp_path / option, progress=False)
    adapter = tmp_path / option / "adapter"
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert saved[f"use_{option}"] is True
    assert saved["use_rslora" if option == "dora" else "use_dora"] is False
    assert metrics["run"]["variant"] == label(cfg.method) == get_method("lora").label(cfg.method)

    tok = AutoTokenizer.from_pretrained(tiny_mt5)
    x = tok(["Police in Leeds closed the area around the bridge."], return_tensors="pt")
    dec = torch.zeros((1, 3), dtype=torch.long)
    with torch.no_grad():
        base_logits = AutoModelForSeq2SeqLM.from_pretrained(tiny_mt5).eval()(**x, decoder_input_ids=dec).logits
        tuned = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_mt5), adapter).eval()
        tuned_logits = tuned(**x, decoder_input_ids=dec).logits
    assert getattr(tuned.peft_config["default"], f"use_{option}") is True
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4), "the adapter did not change the outputs"


def test_report_draws_one_rank_line_per_lora_variant(tmp_path):
    import sys
    from pathlib import Path

    import yaml

    from lorasum.report import plots
    from lorasum.report.compare import matched_pairs
    from lorasum.study import run_study, study_results

    sys.path.insert(0, str(Path(__file__).parent / "study"))
    from fakes import fake_train_and_evaluate

    spec = copy.deepcopy(STUDY)
    spec["axes"].update(rank=[4, 16], dora=[False])
    spec["base"]["data"]["source"] = "lorasum:demo"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    run_study(tmp_path / "s.yaml", out_dir=tmp_path / "s", runner=fake_train_and_evaluate, progress=False)
    df = study_results(tmp_path / "s", write=False)
    fig = plots.rank_ablation(df)
    # x positions are the ranks, shifted slightly sideways per line so none hides another
    lines = {line.get_label(): [round(x) for x in line.get_xdata()] for ax in fig.axes for line in ax.get_lines()
             if not line.get_label().startswith(("_", "full fine-tuning"))}
    assert lines == {"lora-attention": [4, 16], "lora-attention-rslora": [4, 16]}
    # every LoRA variant is compared with the full cell it matches
    assert sorted(a["variant"] for a, _ in matched_pairs(df)) == [
        "lora-r16-attention", "lora-r16-attention-rslora", "lora-r4-attention", "lora-r4-attention-rslora"]
