"""lorasum's ROUGE against XL-Sum's own scorer (PyPI ``multilingual-rouge``), item by item.

Skips when the reference package is not installed or NLTK's stopwords corpus is missing
(the reference crashes without it); the real-data half also skips without ../shared/data.
"""
from __future__ import annotations

import random

import pytest

from lorasum.languages import XLSUM_CODES
from lorasum.metrics import score_items
from lorasum.metrics.stemmers import stopwords_available

pytest.importorskip("multilingual_rouge", reason="reference scorer `multilingual-rouge` not installed")
if not stopwords_available():
    pytest.skip("NLTK stopwords corpus missing: the reference scorer cannot run", allow_module_level=True)

from .reference_scorer import reference_items  # noqa: E402

TOL = 1e-6


def _assert_same(preds, refs, langs, kinds):
    ours = score_items(preds, refs, langs)
    theirs = reference_items(preds, refs, langs)
    bad = []
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for metric in ("rouge1", "rouge2", "rougeL"):
            for k in ("p", "r", "f"):
                if abs(a[metric][k] - b[metric][k]) > TOL:
                    bad.append((langs[i], kinds[i], metric, k, a[metric][k], b[metric][k], preds[i][:60], refs[i][:60]))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
    return ours


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    words = [w for i, w in enumerate(words) if i % 4 != 3]
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def test_parity_on_real_text_in_all_45_languages(xlsum_rows):
    rng = random.Random(0)
    by_lang: dict[str, list[dict]] = {}
    for row in xlsum_rows:
        by_lang.setdefault(row["lang"], []).append(row)
    assert set(by_lang) == set(XLSUM_CODES)
    preds, refs, langs, kinds = [], [], [], []

    def add(pred, ref, lang, kind):
        preds.append(pred)
        refs.append(ref)
        langs.append(lang)
        kinds.append(kind)

    for lang, rows in sorted(by_lang.items()):
        for i, row in enumerate(rows):
            ref = row["summary"]
            lead = row["text"].strip().split("\n")[0]
            add(lead, ref, lang, "lead")
            add(_perturb(ref, rng), ref, lang, "perturbed")
            add(rows[(i + 1) % len(rows)]["summary"], ref, lang, "other")
            if i == 0:
                add("", ref, lang, "empty")
                add(ref, "", lang, "empty-ref")
                add(ref, ref, lang, "identical")
                add("... !!! «» — ¿?", ref, lang, "punctuation")
                add(ref[: len(ref) // 2] + " COVID-19 2024年 Москва ok👍", ref, lang, "mixed")
                add("1,234.5 2024 covid19 3.14 ١٢٣ ১২৩ 12:30", ref + " 2024", lang, "digits")
    ours = _assert_same(preds, refs, langs, kinds)
    # The comparison is not vacuous: many items score strictly between 0 and 1.
    assert sum(0 < it["rougeL"]["f"] < 1 for it in ours) > len(ours) // 3


BUILT_IN = [
    ("en", "The U.S. economy grew 2.5% in 2023, officials said.", "US economy grew by 2.5 percent in 2023"),
    ("en", "Running runners ran; being there, they were running.", "runner runs being"),
    ("en", "tab\tand\nnewline\u2028line sep\u00a0nbsp", "tab and newline line sep nbsp"),
    ("tr", "İstanbul'da ISTANBUL istanbul Iğdır", "istanbul ığdır"),
    ("fa", "بیمارستان\u200cهای دولتی", "بیمارستانهای دولتی"),
    ("hi", "लड़कियों ने किताबें पढ़ीं\u200d", "लड़कियाँ किताब पढ़ती हैं"),
    ("bn", "আমাকে তারা করেছিলেন হেসেছিলেন", "আমা তারা করে"),
    ("ar", "قال المسؤولون إن الاقتصاد نما", "الاقتصاد نما بسرعة"),
    ("ru", "Экономика выросла на 2,5% в 2023 году", "экономика росла в 2023"),
    ("zh-CN", "我们今天去北京大学 AI2024 学习", "我们 今天 在 北京 学习"),
    ("zh-TW", "委員會週二批准了預算。", "委員會批准預算"),
    ("ja", "東京都は火曜日、新しい予算を承認した。ＡＢＣ１２３", "東京 都 予算 承認"),
    ("th", "คณะกรรมการ อนุมัติ งบประมาณ 2567", "คณะกรรมการอนุมัติงบประมาณ"),
    ("my", "မြန်မာနိုင်ငံ၏ \u200cစီးပွားရေး", "မြန်မာ စီးပွားရေး"),
    ("ko", "위원회는 화요일 예산을 승인했다", "위원회 예산 승인"),
    ("sr-Cyrl", "Влада је усвојила буџет", "влада усвојила буџет"),
    ("es", "Los hospitales públicos recibieron más fondos", "hospital público fondos"),
    ("pt", "Os hospitais públicos receberam mais verbas", "hospitais receberam verbas"),
    ("fr", "Les hôpitaux publics ont reçu davantage", "hôpital public reçu"),
    ("de", "Die öffentlichen Krankenhäuser erhielten mehr Geld", "Krankenhäuser erhalten Geld"),
    ("cs", "Veřejné nemocnice dostaly více peněz", "nemocnice dostaly peníze"),
    ("am", "ኮሚቴው ማክሰኞ በጀት አጽድቋል።", "ኮሚቴው በጀት አጽድቋል"),
    ("vi", "Ủy ban đã phê duyệt ngân sách mới", "ủy ban phê duyệt ngân sách"),
    ("en", "café CAFÉ cafe\u0301 \ufffd\x00\x07 x\u200by", "café xy"),
    (None, "The quick brown foxes jumped over lazy dogs 42x", "quick brown fox jumps over the lazy dog"),
]


def test_parity_on_built_in_cases():
    langs = [lang for lang, _, _ in BUILT_IN]
    preds = [p for _, p, _ in BUILT_IN]
    refs = [r for _, _, r in BUILT_IN]
    _assert_same(preds + refs, refs + preds, langs + langs, ["built-in"] * (2 * len(langs)))
