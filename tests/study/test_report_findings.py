"""The report's Findings sentences, from synthetic paired-test tables and results tables:
"beats" only below the corrected alpha, with the numbers and the family named."""
from __future__ import annotations

import pandas as pd

from lorasum.metrics import adjust_p_values
from lorasum.report.findings import describe_variant, study_findings


def _paired(rows, scenario="low_data") -> pd.DataFrame:
    """Paired-comparison rows as :func:`paired_comparisons` returns them, Holm/BH by the real adjustment."""
    out = []
    for lang, shots, diff, p, cell in rows:
        out.append({"level": "language", "scenario": scenario, "train_langs": lang, "lang": lang, "shots": shots,
                    "seed": 0, "variant": "lora-r8-attention", "diff": diff, "ci_lo": diff - 2.1,
                    "ci_hi": diff + 2.1, "p_value": p, "n": 50, "lora_cell": cell, "full_cell": f"{cell}-full"})
    t = pd.DataFrame(out)
    t["p_holm"] = adjust_p_values(t["p_value"].to_numpy(), "holm")
    t["p_bh"] = adjust_p_values(t["p_value"].to_numpy(), "bh")
    return t


def _cells(ids, regime="low_data") -> pd.DataFrame:
    return pd.DataFrame({"cell_id": ids, "regime": regime, "train_langs": "en", "parent": None, "level": "overall",
                         "lang": "macro", "method": "lora", "variant": "lora-r8-attention", "rank": 8,
                         "shots": 8, "seed": 0, "rougeL_mean": 20.0})


def test_beats_is_claimed_only_where_the_holm_adjusted_p_is_below_alpha():
    paired = _paired([("fr", 32, 3.1, 0.004, "a"), ("en", 8, 2.0, 0.03, "b"), ("ru", 8, 0.4, 0.5, "c")])
    text = study_findings(_cells(["a", "b", "c"]), paired)
    assert text[0].startswith("3 comparisons of LoRA with full fine-tuning") and "Holm's correction runs over all 3" in text[0]
    assert ("LoRA (r=8, attention) beats full fine-tuning on fr at 32 examples by +3.1 ROUGE-L (95% CI [+1.0, +5.2]; "
            "paired bootstrap p=0.004, Holm-adjusted p=0.012 over 3 comparisons).") in text
    # raw p below alpha, adjusted above: not a win
    assert not any("beats full fine-tuning on en" in s for s in text)
    assert ("LoRA (r=8, attention) vs full fine-tuning on en at 8 examples: +2.0 ROUGE-L (95% CI [-0.1, +4.1]; "
            "paired bootstrap p=0.030, but Holm-adjusted p=0.060 over 3 comparisons): no significant difference "
            "after correction.") in text
    assert any(s.startswith("No significant difference (p ≥ 0.05 before and after correction) in 1 comparison: "
                            "LoRA (r=8, attention) on ru at 8 examples (+0.4, p=0.500)") for s in text)
    assert ("In all: LoRA significantly better in 1, full fine-tuning significantly better in 0, no significant "
            "difference in 2 of 3 comparisons (Holm-adjusted p < 0.05).") in text


def test_an_adjusted_p_just_above_alpha_is_no_significant_difference_while_alone_it_is_a_win():
    alone = study_findings(_cells(["a"]), _paired([("fr", 32, 1.5, 0.0255, "a")]))
    assert any(s.startswith("LoRA (r=8, attention) beats full fine-tuning on fr at 32 examples by +1.5") for s in alone)
    # a second comparison doubles Holm's multiplier: 2 x 0.0255 = 0.051 > 0.05
    two = study_findings(_cells(["a", "b"]), _paired([("fr", 32, 1.5, 0.0255, "a"), ("en", 32, 0.1, 0.9, "b")]))
    assert not any("beats" in s for s in two)
    assert any("Holm-adjusted p=0.051 over 2 comparisons): no significant difference after correction" in s
               for s in two)


def test_a_full_fine_tuning_win_is_stated_the_other_way_round():
    paired = _paired([("fr", None, -4.0, 0.001, "a")], scenario="zero_shot").assign(train_langs="en")
    text = study_findings(_cells(["a"], regime="zero_shot"), paired)
    assert "Holm's correction over this one comparison leaves its p unchanged" in text[0]
    assert ("Full fine-tuning beats LoRA (r=8, attention) on fr zero-shot from en by 4.0 ROUGE-L (LoRA − full -4.0; "
            "95% CI [-6.1, -1.9]; paired bootstrap p=0.001, Holm-adjusted p=0.001 over 1 comparison).") in text


def test_too_few_resamples_for_the_family_is_said_before_any_claim():
    paired = _paired([(lang, 8, 1.0, 0.001, lang) for lang in ("en", "fr", "ru")])
    text = study_findings(_cells(["en", "fr", "ru"]), paired, resamples=40)
    assert "the smallest attainable Holm-adjusted p is 0.073, not below 0.05" in text[1]


def _lang(cell, regime, variant, lang, y, *, shots=None, train="en", parent=None, rank=None, seed=0):
    method = "full" if variant == "full" else "lora"
    return {"cell_id": cell, "level": "language", "regime": regime, "scenario": regime, "method": method,
            "variant": variant, "rank": rank if rank or method == "full" else 8, "shots": shots, "seed": seed,
            "train_langs": train, "lang": lang, "parent": parent, "rougeL_mean": y}


def test_transfer_rank_and_efficiency_sentences_carry_their_numbers():
    rows = [_lang("z-full", "zero_shot", "full", "fr", 10.0), _lang("z-lora", "zero_shot", "lora-r8-attention", "fr", 14.0),
            _lang("f-full", "few_shot", "full", "fr", 18.0, shots=16, train="fr", parent="z-full"),
            _lang("f-lora", "few_shot", "lora-r8-attention", "fr", 17.0, shots=16, train="fr", parent="z-lora")]
    for r, ys in ((4, (30.0, 30.0)), (8, (30.0, 32.0)), (16, (33.0, 33.0))):  # two seeds each: means 30, 31, 33
        rows += [_lang(f"r{r}s{s}", "low_data", f"lora-r{r}-attention", "en", y, shots=64, rank=r, seed=s)
                 for s, y in enumerate(ys)]
        rows.append(_lang(f"d{r}", "low_data", f"lora-r{r}-dora", "en", 40.0 - r, shots=64, rank=r))
    rows.append(_lang("full64", "low_data", "full", "en", 29.0, shots=64))
    eff = [{"cell_id": "full64", "level": "overall", "variant": "full", "trainable_params": 40_000_000,
            "trainable_share": 1.0, "artifact_mb": 160.0},
           {"cell_id": "r8s0", "level": "overall", "variant": "lora-r8-attention", "trainable_params": 200_000,
            "trainable_share": 0.005, "artifact_mb": 0.8}]
    df = pd.concat([pd.DataFrame(rows), pd.DataFrame(eff)], ignore_index=True)
    text = study_findings(df, pd.DataFrame())
    assert text[0].startswith("No LoRA cell has a matched full fine-tuning cell")
    assert ("Transfer en → fr (means over seeds): zero-shot ROUGE-L LoRA (r=8, attention) 14.0, full fine-tuning 10.0; "
            "16 fr examples bring them to LoRA (r=8, attention) 17.0 (+3.0), full fine-tuning 18.0 (+8.0) "
            "(gain over zero-shot).") in " ".join(text)
    assert any(s.startswith("Rank ablation (en, 64 examples, LoRA attention): ROUGE-L 30.0 at r=4, 31.0 at r=8, "
                            "33.0 at r=16; it rises with rank (range 3.0); full fine-tuning 29.0") for s in text)
    assert any(s.startswith("Rank ablation (en, 64 examples, LoRA dora): ROUGE-L 36.0 at r=4, 32.0 at r=8, "
                            "24.0 at r=16; it falls with rank") for s in text)
    assert ("LoRA (r=8, attention) trains 200,000 parameters (0.50% of the model), full fine-tuning 40,000,000; "
            "its artifact is 0.80 MB against 160.00 MB (200x smaller).") in text


def test_variant_labels_read_as_method_and_options():
    assert describe_variant("full") == "full fine-tuning"
    assert describe_variant("lora-r16-attention+ffn-rslora") == "LoRA (r=16, attention+ffn, rslora)"
    assert describe_variant("dora-r8-attention") == "DoRA (r=8, attention)"
    assert describe_variant("ia3") == "ia3"
