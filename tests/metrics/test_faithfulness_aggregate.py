"""Per-language means, CIs and the paired test over per-item faithfulness signals."""
import pytest

from lorasum.metrics.faithfulness import faithfulness_paired_test, faithfulness_scores


def _item(nli, numbers, chunks=1):
    return {"nli_entailment": nli, "novel_number_share": numbers, "nli_chunks": chunks, "nli_truncated": False}


def test_means_skip_undefined_items_and_ci_brackets_the_mean():
    items = [_item(0.2, None), _item(0.4, 1.0, 3), _item(0.9, 0.0), _item(0.5, None)]
    res = faithfulness_scores(items, ["en", "en", "en", "fr"], resamples=300)
    en = res["per_lang"]["en"]
    assert en["n"] == 3
    assert en["nli_entailment"]["mean"] == pytest.approx(0.5) and en["nli_entailment"]["n"] == 3
    assert en["novel_number_share"] == {"mean": 0.5, "mean_ci": [0.0, 1.0], "n": 2}
    lo, hi = en["nli_entailment"]["mean_ci"]
    assert 0.2 <= lo < 0.5 < hi <= 0.9
    assert "novel_number_share" not in res["per_lang"]["fr"]  # undefined for every French item
    assert en["nli_chunked_share"] == 0.3333
    assert res["overall"]["nli_entailment"]["mean"] == pytest.approx(0.5)


def test_paired_test_finds_a_constant_difference():
    a = [_item(0.8 + 0.01 * i, 0.0) for i in range(20)]
    b = [_item(0.5 + 0.01 * i, 0.5) for i in range(20)]
    res = faithfulness_paired_test(a, b, ["en"] * 20, resamples=200)
    t = res["per_lang"]["en"]["nli_entailment"]
    assert t["diff"] == pytest.approx(0.3) and t["ci"] == [pytest.approx(0.3), pytest.approx(0.3)]
    assert t["p_value"] < 0.01
    assert res["overall"]["novel_number_share"]["diff"] == pytest.approx(-0.5)
    same = faithfulness_paired_test(a, a, ["en"] * 20, resamples=200)
    assert same["overall"]["nli_entailment"]["p_value"] == 1.0


def test_overall_is_the_macro_average_over_languages_and_pooled_weighs_items():
    items = [_item(1.0, 0.0)] * 8 + [_item(0.0, None)] * 2
    langs = ["en"] * 8 + ["fr"] * 2
    res = faithfulness_scores(items, langs, resamples=300)
    assert res["overall"]["nli_entailment"]["mean"] == pytest.approx(0.5)
    assert res["overall"]["nli_entailment"]["mean_ci"] == [pytest.approx(0.5), pytest.approx(0.5)]
    assert res["overall"]["nli_entailment"]["n_langs"] == 2
    assert res["pooled"]["nli_entailment"]["mean"] == pytest.approx(0.8)
    # a measure undefined for every French item averages the languages where it is defined
    assert res["overall"]["novel_number_share"]["n_langs"] == 1
    paired = faithfulness_paired_test(items, [_item(0.5, 0.0)] * 10, langs, resamples=300)
    assert paired["overall"]["nli_entailment"]["diff"] == pytest.approx(0.0)
    assert paired["pooled"]["nli_entailment"]["diff"] == pytest.approx(0.3)
