"""NLI entailment scoring with tiny models built offline and loaded through from_pretrained."""
from __future__ import annotations

import pytest
import torch

from lorasum.errors import LorasumError
from lorasum.metrics.faithfulness.cache import ScoreCache
from lorasum.metrics.faithfulness.nli import NLIScorer, NLISettings
from tests.metrics.faith_models import LABELS, build_classifier, build_judge

ARTICLES = ["the cat sat on the mat. " * 30, "short article about rain.", "a b c d e f g. " * 12,
            "the council met on monday to vote on the budget. it passed."]
SUMMARIES = ["the cat sat.", "it rained a lot today and the streets flooded.", "a b c.", "the budget passed."]


class _Models(dict):
    """Tiny models by name, each built on first use (a test builds only what it needs)."""

    BUILD = {
        "plain": lambda d: build_classifier(d / "plain"),
        "wins0": lambda d: build_classifier(d / "wins0", winner=0),
        "reversed_wins0": lambda d: build_classifier(d / "reversed0", tuple(reversed(LABELS)), winner=0),
        "reversed_wins2": lambda d: build_classifier(d / "reversed2", tuple(reversed(LABELS)), winner=2),
        "upper": lambda d: build_classifier(d / "upper", ("CONTRADICTION", "ENTAILMENT"), winner=1),
        "no_entailment": lambda d: build_classifier(d / "noent", ("positive", "negative")),
        # named like a judge, but its config says classifier: the kind follows the config
        "named_t5": lambda d: build_classifier(d / "t5-seahorse-judge"),
        "judge": lambda d: build_judge(d / "judge"),
    }

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, name):
        self[name] = self.BUILD[name](self.root)
        return self[name]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return _Models(tmp_path_factory.mktemp("nli"))


def _score(path, articles=ARTICLES, summaries=SUMMARIES, **kw):
    settings = kw.pop("settings", None)
    return NLIScorer(str(path), settings=settings, device="cpu", **kw).score(articles, summaries, cache=None)


def test_entailment_index_is_read_from_id2label(models):
    wins0 = [r["nli_entailment"] for r in _score(models["wins0"])]
    assert min(wins0) > 0.99  # class 0 is "entailment" and always wins
    rev0 = [r["nli_entailment"] for r in _score(models["reversed_wins0"])]
    assert max(rev0) < 0.01  # class 0 is "contradiction" now: the entailment column is 2
    rev2 = [r["nli_entailment"] for r in _score(models["reversed_wins2"])]
    assert min(rev2) > 0.99
    assert min(r["nli_entailment"] for r in _score(models["upper"])) > 0.99  # label case does not matter


def test_model_without_entailment_label_is_refused(models):
    with pytest.raises(LorasumError, match="no entailment label.*'positive'.*'negative'"):
        NLIScorer(str(models["no_entailment"]), device="cpu")


def test_kind_comes_from_the_config_not_the_name(models):
    assert NLIScorer(str(models["named_t5"]), device="cpu").kind == "classifier"
    assert NLIScorer(str(models["judge"]), device="cpu").kind == "seq2seq"


def test_score_is_max_over_article_windows(models):
    scorer = NLIScorer(str(models["plain"]), device="cpu")
    marker = scorer.tokenizer("zzz", add_special_tokens=False)["input_ids"]
    seen = []

    def rigged(inputs):
        out = []
        for x in inputs:
            ids = x["input_ids"]
            assert len(ids) <= scorer.max_length
            seen.append(len(ids))
            has = any(ids[i:i + len(marker)] == marker for i in range(len(ids)))
            out.append(0.9 if has else 0.1)
        return out

    scorer.probabilities = rigged
    filler = "the river rose over night. " * 20
    at_end = scorer.score([filler + "zzz", filler], ["the river rose.", "the river rose."])
    assert at_end[0]["nli_entailment"] == pytest.approx(0.9)  # only the last window holds the marker
    assert at_end[1]["nli_entailment"] == pytest.approx(0.1)
    assert at_end[0]["nli_chunks"] > 2 and not at_end[0]["nli_truncated"]
    mid = scorer.score([filler + "zzz " + filler], ["the river rose."])
    assert mid[0]["nli_entailment"] == pytest.approx(0.9)


def test_max_chunks_cuts_and_records_it(models):
    scorer = NLIScorer(str(models["plain"]), settings=NLISettings(max_chunks=1), device="cpu")
    out = scorer.score(["the river rose over night. " * 20, "short."], ["the river rose.", "short."])
    assert out[0]["nli_truncated"] and out[0]["nli_chunks"] > 1
    assert not out[1]["nli_truncated"] and out[1]["nli_chunks"] == 1


def test_per_sentence_scores_average_over_sentences(models):
    scorer = NLIScorer(str(models["plain"]), settings=NLISettings(per_sentence=True), device="cpu")
    marker = scorer.tokenizer("zzz", add_special_tokens=False)["input_ids"]
    scorer.probabilities = lambda inputs: [
        0.9 if any(x["input_ids"][i:i + len(marker)] == marker for i in range(len(x["input_ids"]))) else 0.1
        for x in inputs]
    out = scorer.score(["an article."], ["first zzz. second one."])
    assert out[0]["nli_entailment"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["plain", "judge"])
def test_batched_equals_one_by_one(models, name):
    one = _score(models[name], batch_size=1)
    many = _score(models[name], batch_size=7)
    assert [r["nli_chunks"] for r in one] == [r["nli_chunks"] for r in many]
    for a, b in zip(one, many):
        assert a["nli_entailment"] == pytest.approx(b["nli_entailment"], abs=1e-5)


def test_seq2seq_score_is_positive_token_probability(models):
    scorer = NLIScorer(str(models["judge"]), device="cpu")
    article, summary = "the cat sat on the mat.", "a cat sat."
    got = scorer.score([article], [summary])[0]["nli_entailment"]
    tok, model = scorer.tokenizer, scorer.model
    enc = tok(f"premise: {article} hypothesis: {summary}", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits
    p = logits[0, -1].softmax(-1)
    one, zero = tok("1", add_special_tokens=False)["input_ids"][0], tok("0", add_special_tokens=False)["input_ids"][0]
    assert got == pytest.approx(p[one].item(), rel=1e-5)
    norm = NLIScorer(str(models["judge"]), settings=NLISettings(negative_token="0"), device="cpu")
    assert norm.score([article], [summary])[0]["nli_entailment"] == pytest.approx(
        (p[one] / (p[one] + p[zero])).item(), rel=1e-5)


def test_cache_hit_costs_no_model_call(models, tmp_path):
    cache = ScoreCache(tmp_path / "nli.sqlite")
    calls = []

    def scorer(settings=None):
        s = NLIScorer(str(models["plain"]), settings=settings, device="cpu")
        s.model.register_forward_hook(lambda *a: calls.append(1))
        return s

    first = scorer().score(ARTICLES, SUMMARIES, cache=cache)
    assert len(calls) > 0
    calls.clear()
    again = scorer().score(ARTICLES, SUMMARIES, cache=cache)
    assert calls == [] and again == first
    scorer(NLISettings(per_sentence=True)).score(ARTICLES, SUMMARIES, cache=cache)  # other settings, other key
    assert len(calls) > 0
    calls.clear()
    scorer().score(ARTICLES + ["a new article."], SUMMARIES + ["new."], cache=cache)
    assert len(calls) == 1  # only the new pair is scored


def test_empty_summary_scores_none_without_a_model_call(models):
    scorer = NLIScorer(str(models["plain"]), device="cpu")
    calls = []
    scorer.model.register_forward_hook(lambda *a: calls.append(1))
    out = scorer.score(["an article."], ["  "])
    assert out == [{"nli_entailment": None, "nli_chunks": 0, "nli_truncated": False}]
    assert calls == []


def test_long_summary_is_cut_so_windows_stay_large(models):
    scorer = NLIScorer(str(models["plain"]), device="cpu")  # 64 positions
    article = "the river rose over night. " * 12
    long_summary = "the river rose over night and the town flooded. " * 3
    out = scorer.score([article, article], [long_summary, "the river rose."])
    assert out[0]["nli_truncated"] and not out[1]["nli_truncated"]
    assert out[0]["nli_chunks"] <= 2 * out[1]["nli_chunks"]  # windows of at least half the input
