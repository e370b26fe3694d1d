"""Faithfulness through the config, `lorasum score` and a training run."""
import json

import pytest

from lorasum.cli import main
from lorasum.config import parse_run_config
from lorasum.errors import LorasumError
from lorasum.metrics.faithfulness.nli import SEAHORSE_PROMPT
from lorasum.run import train_and_evaluate
from tests.metrics.faith_models import build_classifier


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return build_classifier(tmp_path_factory.mktemp("nli") / "clf")


def test_evaluation_section_is_optional_and_validated():
    cfg = parse_run_config({"evaluation": {"faithfulness": "some/nli-model"}})
    assert cfg.evaluation.faithfulness.model == "some/nli-model"
    assert cfg.evaluation.faithfulness.prompt == SEAHORSE_PROMPT
    assert "evaluation" not in parse_run_config({}).to_dict()  # cell hashes of existing studies do not move
    assert cfg.to_dict()["evaluation"]["faithfulness"]["model"] == "some/nli-model"
    with pytest.raises(LorasumError, match=r"run.yaml: evaluation.faithfulness.prompt: .*\{premise\}"):
        parse_run_config({"evaluation": {"faithfulness": {"model": "m", "prompt": "{hypothesis}"}}}, "run.yaml")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_score_with_articles_faithfulness_against_and_per_item(tmp_path, classifier, capsys):
    arts = [("en-1", "en", "The council voted 12 to 3 on Monday to approve the budget in Leeds."),
            ("en-2", "en", "Heavy rain flooded the streets of York overnight, police said."),
            ("ru-1", "ru", "Совет одобрил бюджет в понедельник 12 голосами.")]
    refs = _jsonl(tmp_path / "refs.jsonl", [{"id": i, "lang": lang, "summary": t.split(" on ")[0]}
                                            for i, lang, t in arts])
    articles = _jsonl(tmp_path / "articles.jsonl", [{"id": i, "lang": lang, "text": t} for i, lang, t in arts])
    lead = _jsonl(tmp_path / "lead.jsonl", [{"id": i, "lang": lang, "prediction": t} for i, lang, t in arts])
    novel = _jsonl(tmp_path / "novel.jsonl", [{"id": i, "lang": lang, "prediction": "Officials in Paris paid 99."}
                                              for i, lang, _ in arts])
    out, per_item = tmp_path / "result.json", tmp_path / "items.jsonl"
    rc = main(["score", "--references", refs, "--predictions", lead, "--articles", articles, "--against", novel,
               "--faithfulness", str(classifier), "--faithfulness-cache", str(tmp_path / "nli.sqlite"),
               "--per-item", str(per_item), "--resamples", "100", "-o", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    f = result["faithfulness"]["per_lang"]["en"]
    assert f["novel_1gram_share"]["mean"] == 0.0 and f["fragment_coverage"]["mean"] == 1.0
    assert 0 <= f["nli_entailment"]["mean"] <= 1 and f["nli_entailment"]["n"] == 2
    assert result["scorer"]["faithfulness"]["nli"]["model"] == str(classifier)
    assert result["scorer"]["faithfulness"]["nli"]["fingerprint"].startswith("sha256:")
    paired = result["faithfulness_paired_test"]["overall"]
    assert paired["novel_1gram_share"]["diff"] < 0 and paired["novel_number_share"]["diff"] == -1.0
    assert "nli_entailment" in paired
    rows = [json.loads(line) for line in per_item.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["en-1", "en-2", "ru-1"]
    for key in ("rouge1_precision", "rouge1_recall", "rouge1_f", "rougeL_f", "novel_2gram_share",
                "fragment_density", "compression_ratio", "novel_number_share", "nli_entailment", "nli_chunks"):
        assert key in rows[0], key
    assert rows[0]["rouge1_recall"] == 100.0 and rows[0]["novel_number_share"] == 0.0


def test_score_nli_without_articles_is_a_one_line_error(tmp_path, capsys):
    refs = _jsonl(tmp_path / "r.jsonl", [{"id": 1, "lang": "en", "summary": "x"}])
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": 1, "lang": "en", "prediction": "x"}])
    assert main(["score", "--references", refs, "--predictions", preds, "--faithfulness", "m"]) == 2
    assert "needs the articles: give --articles" in capsys.readouterr().err


def test_articles_must_cover_every_reference(tmp_path):
    refs = _jsonl(tmp_path / "r.jsonl", [{"id": 1, "lang": "en", "summary": "x"}, {"id": 2, "lang": "en", "summary": "y"}])
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": 1, "lang": "en", "prediction": "x"}, {"id": 2, "lang": "en", "prediction": "y"}])
    arts = _jsonl(tmp_path / "a.jsonl", [{"id": 1, "lang": "en", "text": "x"}])
    from lorasum.metrics import score_files

    with pytest.raises(LorasumError, match=r"r.jsonl:2: id '2' has no article in .*a.jsonl"):
        score_files(refs, preds, articles=arts)


@pytest.mark.slow
def test_training_run_records_faithfulness(tiny_run_config, tiny_mt5, classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("LORASUM_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tiny_run_config(tiny_mt5, "lora", evaluation={"faithfulness": {"model": str(classifier)}})
    metrics = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    f = metrics["faithfulness"]
    assert set(f["per_lang"]) == {"en", "ru"} and f["overall"]["n"] == 6
    assert metrics["scorer"]["faithfulness"]["nli"]["kind"] == "classifier"
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert all("novel_1gram_share" in r["faithfulness"] and "nli_entailment" in r["faithfulness"] for r in rows)
    scored = [r for r in rows if r["prediction"].strip()]  # an untrained tiny model may say nothing
    assert all(0 <= r["faithfulness"]["nli_entailment"] <= 1 for r in scored)
    assert f["overall"].get("nli_entailment", {}).get("n", 0) == len(scored)
    assert (tmp_path / "cache" / "nli.sqlite").is_file()
