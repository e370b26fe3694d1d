"""Bootstrap corpus scores and the paired test, on cases whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from lorasum.errors import LorasumError
from lorasum.metrics import corpus_scores, paired_test

METRICS = ("rouge1", "rouge2", "rougeL")


def _items(f1, f2=None, fl=None):
    f2 = f1 if f2 is None else f2
    fl = f1 if fl is None else fl
    return [{"rouge1": {"p": a, "r": a, "f": a}, "rouge2": {"p": b, "r": b, "f": b}, "rougeL": {"p": c, "r": c, "f": c}}
            for a, b, c in zip(f1, f2, fl)]


def test_shape_rounding_and_groups():
    rng = np.random.default_rng(1)
    f = rng.uniform(0, 1, 60)
    langs = ["en"] * 40 + ["zh-CN"] * 20
    res = corpus_scores(_items(f, f / 2, f / 3), langs, resamples=200)
    assert set(res) == {"overall", "per_lang"} and set(res["per_lang"]) == {"en", "zh-CN"}
    assert res["overall"]["n"] == 60 and res["per_lang"]["en"]["n"] == 40
    s = res["overall"]["rouge1"]
    assert set(s) == {"mean", "mean_ci", "mid", "mid_ci"}
    assert s["mean"] == round(f.mean() * 100, 4)
    assert res["per_lang"]["zh-CN"]["rouge2"]["mean"] == round(f[40:].mean() * 50, 4)
    for x in (s["mean"], s["mid"], *s["mean_ci"]):
        assert x == round(x, 4)
    assert s["mean_ci"][0] < s["mid"] < s["mean_ci"][1]
    assert s["mid_ci"] == s["mean_ci"]


def test_same_seed_same_ci_other_seed_differs():
    f = np.random.default_rng(2).uniform(0, 1, 100)
    a = corpus_scores(_items(f), ["en"] * 100, resamples=300, seed=7)
    b = corpus_scores(_items(f), ["en"] * 100, resamples=300, seed=7)
    c = corpus_scores(_items(f), ["en"] * 100, resamples=300, seed=8)
    assert a == b
    assert a["overall"]["rouge1"]["mean_ci"] != c["overall"]["rouge1"]["mean_ci"]


def test_constant_scores_have_degenerate_ci():
    res = corpus_scores(_items([0.25] * 30), ["ru"] * 30, resamples=100)
    assert res["overall"]["rougeL"] == {"mean": 25.0, "mean_ci": [25.0, 25.0], "mid": 25.0, "mid_ci": [25.0, 25.0]}


def test_ci_covers_true_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(3)
    true_mean = 0.3  # Beta(3, 7)
    hits = 0
    trials = 150
    for t in range(trials):
        f = rng.beta(3, 7, 80)
        lo, hi = corpus_scores(_items(f), ["en"] * 80, resamples=300, seed=t)["overall"]["rouge1"]["mean_ci"]
        hits += lo <= true_mean * 100 <= hi
    assert 0.85 <= hits / trials <= 0.99
    wide = corpus_scores(_items(rng.beta(3, 7, 2000)), ["en"] * 2000, resamples=500)["overall"]["rouge1"]
    assert wide["mean_ci"][0] <= 30 <= wide["mean_ci"][1]
    assert wide["mean_ci"][1] - wide["mean_ci"][0] < 2.0


def test_mid_is_median_of_resampled_means_like_rouge_score():
    from rouge_score import scoring

    f = np.random.default_rng(4).beta(2, 5, 400)
    agg = scoring.BootstrapAggregator(n_samples=1000)
    for x in f:
        agg.add_scores({"rouge1": scoring.Score(x, x, x)})
    np.random.seed(0)
    theirs = agg.aggregate()["rouge1"]
    ours = corpus_scores(_items(f), ["en"] * 400)["overall"]["rouge1"]
    assert ours["mid"] == pytest.approx(theirs.mid.fmeasure * 100, abs=0.3)
    assert ours["mid_ci"][0] == pytest.approx(theirs.low.fmeasure * 100, abs=0.5)
    assert ours["mid_ci"][1] == pytest.approx(theirs.high.fmeasure * 100, abs=0.5)


def test_paired_identical_systems():
    f = np.random.default_rng(5).uniform(0, 1, 50)
    res = paired_test(_items(f), _items(f), ["en"] * 25 + ["fr"] * 25, resamples=200)
    for group in (res["overall"], *res["per_lang"].values()):
        for m in METRICS:
            assert group[m]["diff"] == 0.0 and group[m]["ci"] == [0.0, 0.0] and group[m]["p_value"] == 1.0
    assert res["overall"]["rouge1"]["n"] == 50 and res["per_lang"]["fr"]["rougeL"]["n"] == 25


def test_paired_better_on_every_item_is_significant():
    rng = np.random.default_rng(6)
    b = rng.uniform(0.1, 0.5, 60)
    a = b + rng.uniform(0.01, 0.05, 60)
    res = paired_test(_items(a), _items(b), ["en"] * 60, resamples=1000)
    r1 = res["overall"]["rouge1"]
    assert r1["diff"] == round((a - b).mean() * 100, 4)
    assert r1["p_value"] == pytest.approx(1 / 1001)
    assert 0 < r1["ci"][0] < r1["diff"] < r1["ci"][1]
    swapped = paired_test(_items(b), _items(a), ["en"] * 60, resamples=1000)["overall"]["rouge1"]
    assert swapped["diff"] == -r1["diff"] and swapped["p_value"] == r1["p_value"]


def test_paired_p_values_under_the_null_are_roughly_uniform():
    rng = np.random.default_rng(7)
    p = np.array([
        paired_test(_items(rng.uniform(0, 1, 100)), _items(rng.uniform(0, 1, 100)), ["en"] * 100,
                    resamples=200, seed=s)["overall"]["rouge1"]["p_value"]
        for s in range(60)
    ])
    assert np.mean(p < 0.05) <= 0.15  # false positives near the nominal 5%
    assert 0.3 < p.mean() < 0.7


def test_bad_input():
    with pytest.raises(LorasumError, match="one language per item"):
        corpus_scores(_items([0.1, 0.2]), ["en"])
    with pytest.raises(LorasumError, match="same items"):
        paired_test(_items([0.1]), _items([0.1, 0.2]), ["en"])
    with pytest.raises(LorasumError, match="score_items"):
        corpus_scores([{"rouge1": 1}], ["en"])
    with pytest.raises(LorasumError, match="resamples"):
        corpus_scores(_items([0.1]), ["en"], resamples=0)
    assert corpus_scores([], []) == {"overall": {"n": 0}, "per_lang": {}}
