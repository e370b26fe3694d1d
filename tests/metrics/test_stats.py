"""Bootstrap corpus scores and the paired test, on cases whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from lorasum.errors import LorasumError
from lorasum.metrics import adjust_p_values, corpus_scores, corpus_summary, paired_summary, paired_test

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
    assert set(res) == {"overall", "pooled", "per_lang"} and set(res["per_lang"]) == {"en", "zh-CN"}
    assert res["overall"]["n"] == 60 and res["overall"]["n_langs"] == 2 and res["per_lang"]["en"]["n"] == 40
    assert res["overall"]["rouge1"]["mean"] == round((f[:40].mean() + f[40:].mean()) / 2 * 100, 4)
    s = res["pooled"]["rouge1"]
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
    assert corpus_scores([], []) == {"overall": {"n": 0}, "pooled": {"n": 0}, "per_lang": {}}
    with pytest.raises(LorasumError, match="2 measures per item but 1 names"):
        corpus_summary(np.zeros((3, 2)), ["en"] * 3, measures=("x",))
    with pytest.raises(LorasumError, match="finite"):
        corpus_summary([0.1, float("nan")], ["en", "en"])
    with pytest.raises(LorasumError, match="unknown p-value correction 'bonferroni'"):
        adjust_p_values([0.1], "bonferroni")
    with pytest.raises(LorasumError, match="between 0 and 1"):
        adjust_p_values([0.1, 1.5])


def test_mid_is_not_the_mean_on_a_skewed_set_and_matches_rouge_score():
    """On a small, strongly skewed set the median of resampled means sits well below the mean."""
    from rouge_score import scoring

    f = np.array([0.4 ** k for k in range(10)])  # mean 0.1667, resampled means skewed right
    agg = scoring.BootstrapAggregator(n_samples=20_000)
    for x in f:
        agg.add_scores({"rouge1": scoring.Score(x, x, x)})
    np.random.seed(0)
    theirs = agg.aggregate()["rouge1"].mid.fmeasure * 100
    ours = corpus_scores(_items(f), ["en"] * 10, resamples=100_000, seed=0)["overall"]["rouge1"]
    assert ours["mean"] - theirs > 0.8  # the set tells mean and mid apart
    assert ours["mid"] == pytest.approx(theirs, abs=0.3)
    assert ours["mean"] - ours["mid"] > 0.8


def test_macro_weighs_languages_equally_pooled_weighs_items():
    langs = ["A"] * 100 + ["B"] * 2
    res = corpus_summary([1.0] * 100 + [0.0] * 2, langs, resamples=500)
    # Resampling within each language keeps both languages constant: the macro CI is a point.
    assert res["overall"]["score"] == {"mean": 0.5, "mean_ci": [0.5, 0.5], "mid": 0.5, "mid_ci": [0.5, 0.5]}
    assert res["overall"]["n"] == 102 and res["overall"]["n_langs"] == 2
    pooled = res["pooled"]["score"]
    assert pooled["mean"] == round(100 / 102, 4)
    assert pooled["mean_ci"][0] < 0.97 and pooled["mean_ci"][1] == 1.0
    assert res["per_lang"]["B"]["score"]["mean"] == 0.0 and res["per_lang"]["A"]["n"] == 100
    rouge = corpus_scores(_items([1.0] * 100 + [0.0] * 2), langs, resamples=200)
    assert rouge["overall"]["rougeL"]["mean"] == 50.0 and rouge["pooled"]["rougeL"]["mean"] == 98.0392


def test_macro_ci_is_stratified_by_language():
    rng = np.random.default_rng(11)
    big, small = rng.uniform(0, 1, 2000), rng.uniform(0, 1, 40)
    res = corpus_summary(np.concatenate([big, small]), ["A"] * 2000 + ["B"] * 40, resamples=4000, seed=3)
    lo, hi = res["overall"]["score"]["mean_ci"]
    assert res["overall"]["score"]["mean"] == round((big.mean() + small.mean()) / 2, 4)
    # the SE of an average of two independent language means
    se = 0.5 * np.sqrt(big.var(ddof=1) / 2000 + small.var(ddof=1) / 40)
    assert (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.1)
    plo, phi = res["pooled"]["score"]["mean_ci"]
    assert phi - plo < (hi - lo) / 2  # pooling hides the small language's uncertainty


def test_paired_macro_difference_is_stratified():
    langs = ["A"] * 100 + ["B"] * 2
    a = [1.0] * 100 + [0.0] * 2
    b = [0.0] * 100 + [1.0] * 2
    res = paired_summary(a, b, langs, measures=("faith",), resamples=500)
    assert res["overall"]["faith"] == {"diff": 0.0, "ci": [0.0, 0.0], "p_value": 1.0, "n": 102}
    assert res["pooled"]["faith"]["diff"] == round(98 / 102, 4)
    assert res["pooled"]["faith"]["p_value"] == pytest.approx(1 / 501, abs=1e-6)
    assert res["per_lang"]["B"]["faith"]["diff"] == -1.0
    rng = np.random.default_rng(12)
    x, y = rng.uniform(0, 1, (2, 1000))
    z = np.concatenate([x + 0.05, y])  # A better by 5 points on language A only
    res = paired_summary(z, np.concatenate([x, y + rng.normal(0, 0.2, 1000)]), ["A"] * 1000 + ["B"] * 1000,
                         resamples=2000)
    m = res["overall"]["score"]
    assert m["diff"] == round((res["per_lang"]["A"]["score"]["diff"] + res["per_lang"]["B"]["score"]["diff"]) / 2, 4)
    se = 0.5 * 0.2 / np.sqrt(1000)  # language A's differences are constant
    assert (m["ci"][1] - m["ci"][0]) / 2 == pytest.approx(1.96 * se, rel=0.15)
    rouge = paired_test(_items(a), _items(b), langs, resamples=200)
    assert rouge["overall"]["rougeL"]["diff"] == 0.0 and rouge["pooled"]["rougeL"]["diff"] == 96.0784


# Benjamini & Hochberg (1995), section 4: fifteen p-values; BH at 0.05 rejects four, Holm three.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
           0.7590, 1.000]
HOLM_ADJUSTED = [0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278, 0.278, 0.278, 0.3213, 1, 1, 1, 1, 1, 1]
BH_ADJUSTED = [0.0015, 0.003, 0.0095, 0.035625, 0.0603, 0.0638571, 0.0638571, 0.0645, 0.0765, 0.486, 0.5811818,
               0.714875, 0.7532308, 0.8132143, 1]


@pytest.mark.parametrize("method, expected, rejected", [("holm", HOLM_ADJUSTED, 3), ("bh", BH_ADJUSTED, 4)])
def test_adjusted_p_values_match_the_textbook_example(method, expected, rejected):
    order = np.random.default_rng(0).permutation(15)  # input order must not matter
    adj = adjust_p_values(np.array(BH_1995)[order], method)
    np.testing.assert_allclose(adj, np.array(expected)[order], atol=1e-6)
    assert (adj < 0.05).sum() == rejected
    assert adjust_p_values([], method).size == 0
    assert adjust_p_values([0.03], method).tolist() == [0.03]
