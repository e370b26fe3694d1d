"""Command-line overrides, field names from transformers/peft, and "did you mean" hints."""
import pytest

from lorasum.cli import main
from lorasum.config import load_run_config, parse_run_config
from lorasum.errors import LorasumError


def test_overrides_set_dotted_fields_with_yaml_values(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("method: lora\ntraining:\n  lr: 1.0e-4\n", encoding="utf-8")
    run = load_run_config(cfg, ["training.lr=3e-4", "method.r=16", "method.targets=[q, v]",
                                "training.max_steps=null", "data.languages=[en, russian]"])
    assert run.training.lr == pytest.approx(3e-4)
    assert (run.method.r, run.method.targets) == (16, ["q", "v"])
    assert run.data.languages == ["en", "ru"]
    assert run.training.max_steps is None


def test_override_of_unknown_field_gets_the_yaml_error():
    with pytest.raises(LorasumError, match=r"run.yaml \(with overrides\): training.lrr: unknown field; "
                                           r"did you mean training.lr\?"):
        parse_run_config({}, "run.yaml", ["training.lrr=1e-3"])
    with pytest.raises(LorasumError, match="override 'lr': write it as section.field=value"):
        parse_run_config({}, "run.yaml", ["lr"])


def test_transformers_and_peft_names_map_to_lorasum_fields():
    run = parse_run_config({
        "learning_rate": 3e-4, "num_train_epochs": 2, "per_device_train_batch_size": 4,
        "training": {"gradient_accumulation_steps": 8, "warmup_ratio": 0.05},
        "method": {"name": "lora", "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.05,
                   "target_modules": ["q", "v"]},
    })
    t, m = run.training, run.method
    assert (t.lr, t.epochs, t.batch_size, t.grad_accum, t.warmup_ratio) == (3e-4, 2, 4, 8, 0.05)
    assert (m.r, m.alpha, m.dropout, m.targets) == (16, 32, 0.05, ["q", "v"])
    dumped = run.to_dict()
    assert "learning_rate" not in dumped and dumped["method"]["r"] == 16


def test_alias_given_twice_is_an_error():
    with pytest.raises(LorasumError, match="learning_rate and training.lr both given"):
        parse_run_config({"learning_rate": 1e-3, "training": {"lr": 2e-3}}, "run.yaml")


@pytest.mark.parametrize("data, hint", [
    ({"trainig": {}}, "did you mean training?"),
    ({"lr": 1e-3}, "did you mean training.lr?"),
    ({"training": {"learnig_rate": 1e-3}}, "did you mean training.lr?"),
    ({"method": {"name": "lora", "rank": 8}}, "did you mean method.r?"),
    ({"generation": {"num_beam": 2}}, "did you mean generation.num_beams?"),
])
def test_unknown_fields_get_a_suggestion(data, hint):
    with pytest.raises(LorasumError) as err:
        parse_run_config(data, "run.yaml")
    assert hint in str(err.value)


def test_train_records_overrides_in_resolved_config(tmp_path, tiny_mt5, monkeypatch):
    import lorasum.run

    seen = {}

    def fake_train(cfg, out, progress=True):  # stops before training: only the resolved config matters here
        seen["cfg"] = cfg
        raise LorasumError("stop")

    monkeypatch.setattr(lorasum.run, "train_and_evaluate", fake_train)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {tiny_mt5}\nmethod: lora\n", encoding="utf-8")
    assert main(["train", str(cfg), "training.lr=3e-4", "lora_alpha=64", "-o", str(tmp_path / "o")]) == 2
    resolved = seen["cfg"].to_dict()
    assert resolved["training"]["lr"] == 3e-4 and resolved["method"]["alpha"] == 64
