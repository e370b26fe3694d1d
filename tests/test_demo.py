"""The offline demo: the shipped pretrained model, the lead baseline, and the SentencePiece tokenizer path."""
import json
import unicodedata

import pytest

from lorasum.demo import DATA, DEMO_LANGS, lead_baseline, lead_sentence
from lorasum.models.tiny import demo_model_path


def _test_rows():
    with open(DATA, encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r["split"] == "test"]


def test_shipped_demo_model_loads_through_the_builtin_name(tmp_path):
    from transformers import T5Tokenizer

    from lorasum.models.load import load_base
    from lorasum.study.resources import resolve_model

    path = resolve_model("lorasum:demo-mt5", tmp_path)
    assert path == str(demo_model_path())
    model, tok, fam = load_base(path)
    assert fam == "t5" and isinstance(tok, T5Tokenizer)
    assert model.config.vocab_size >= len(tok)
    size = sum(p.stat().st_size for p in demo_model_path().iterdir() if p.is_file())
    assert size < 5_000_000, f"shipped demo model is {size / 1e6:.1f} MB"


@pytest.mark.parametrize("lang", DEMO_LANGS)
def test_demo_tokenizer_round_trips_every_script(lang):
    from lorasum.models.load import load_tokenizer

    tok = load_tokenizer(str(demo_model_path()))
    rows = [r for r in _test_rows() if r["lang"] == lang]
    for r in rows:
        for text in (r["text"], r["summary"]):
            ids = tok(text).input_ids
            # SentencePiece normalizes NFKC as mT5's does (a fullwidth comma becomes ",")
            assert tok.decode(ids, skip_special_tokens=True) == unicodedata.normalize("NFKC", text)
            assert ids.count(tok.unk_token_id) / len(ids) < 0.01
    # a learnt vocabulary keeps sequences short: under half as many pieces as UTF-8 bytes (ByT5: one per byte)
    article = rows[0]["text"]
    assert len(tok(article).input_ids) < len(article.encode("utf-8")) / 2


def test_lead_sentence_splits_latin_arabic_and_cjk():
    assert lead_sentence("Police closed the park. Nobody was hurt.") == "Police closed the park."
    assert lead_sentence("وافق المجلس على الخطة. وستبدأ الأعمال في مارس.") == "وافق المجلس على الخطة."
    assert lead_sentence("市政府批准了计划。工程将开工。") == "市政府批准了计划。"


def test_lead_baseline_scores_the_first_sentence():
    from lorasum.metrics import corpus_scores, score_items

    rows = _test_rows()
    lead = lead_baseline(rows, resamples=50)
    assert set(lead["per_lang"]) == set(DEMO_LANGS)
    assert lead["overall"]["n"] == len(rows)
    assert lead["overall"]["rougeL"]["mean_ci"][0] > 10
    # it scores exactly the first sentence (the articles' sentences end in ". " or "。")
    for lang, end in (("en", ". "), ("zh-CN", "。")):
        sub = [r for r in rows if r["lang"] == lang]
        firsts = [r["text"].split(end)[0] + end.strip() for r in sub]
        direct = corpus_scores(score_items(firsts, [r["summary"] for r in sub], lang), [lang] * len(sub),
                               resamples=50)
        assert lead["per_lang"][lang]["rougeL"]["mean"] == direct["overall"]["rougeL"]["mean"]


def test_sentencepiece_tiny_mt5_trains_and_evaluates(tiny_sp_mt5, tiny_run_config, tmp_path):
    from transformers import T5Tokenizer

    from lorasum.evaluate import load_for_inference
    from lorasum.run import train_and_evaluate

    cfg = tiny_run_config(tiny_sp_mt5, "full", data__languages=["en", "zh-CN"])
    metrics = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    assert metrics["rouge"]["overall"]["n"] == 6
    model, tok, fam = load_for_inference(str(tmp_path / "run"))
    assert isinstance(tok, T5Tokenizer) and len(tok) <= model.config.vocab_size < 384
    with open(tmp_path / "run" / "predictions.jsonl", encoding="utf-8") as f:
        preds = [json.loads(line)["prediction"] for line in f]
    assert len(preds) == 6 and not any("<extra_id" in p or "</s>" in p for p in preds)


@pytest.mark.slow
def test_demo_beats_the_same_model_untrained(tmp_path, capsys):
    """A short demo run (full fine-tuning, 2 epochs) on the pretrained model vs a random one."""
    from lorasum.demo import run_demo
    from lorasum.models.tiny import build_tiny_model

    cfg = json.loads((demo_model_path() / "config.json").read_text())
    random_dir = build_tiny_model(tmp_path / "random", "mt5", d_model=cfg["d_model"], layers=cfg["num_layers"],
                                  tokenizer_dir=demo_model_path())
    pre = run_demo(tmp_path / "pre", epochs=2, progress=False, methods=("full",), samples_per_lang=1)
    out = capsys.readouterr().out
    rnd = run_demo(tmp_path / "rnd", epochs=2, progress=False, methods=("full",), model_dir=random_dir)
    pre_l, rnd_l = pre["full"]["rouge"]["overall"]["rougeL"], rnd["full"]["rouge"]["overall"]["rougeL"]
    assert pre_l["mean"] > rnd_l["mean"] + 15, (pre_l, rnd_l)
    assert pre_l["mean_ci"][0] > rnd_l["mean_ci"][1]
    assert "lead sentence" in out and "sample test summaries" in out
    assert f"{pre['lead']['overall']['rougeL']['mean']:.1f}" in out
