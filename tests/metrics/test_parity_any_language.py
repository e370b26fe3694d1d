"""ROUGE parity with XL-Sum's scorer for languages outside XL-Sum.

XL-Sum's scorer (``multilingual-rouge``) can be given any language name. It has its own
behaviour for the names it knows: the NLTK Snowball stemmers of danish, dutch, finnish,
german, hungarian, italian, norwegian, romanian and swedish (plus XL-Sum's languages,
covered by test_parity.py). Any other name (czech, polish, greek, hebrew, catalan, ...)
gets no stemming and the generic tokenization. lorasum gives it the lower-case English
name of the tag's language, so region and script variants (pt-BR, zh-Hant, de-AT, nb)
score as their language. Every Snowball language is covered below, plus unstemmed ones
and variant tags; French news from OrangeSum (../shared/data) is the large real-text set.
"""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from lorasum.metrics import score_items, scorer_info
from lorasum.metrics.stemmers import stopwords_available

pytest.importorskip("multilingual_rouge", reason="reference scorer `multilingual-rouge` not installed")
if not stopwords_available():
    pytest.skip("NLTK stopwords corpus missing: the reference scorer cannot run", allow_module_level=True)

from .reference_scorer import reference_items  # noqa: E402
from .test_parity import _assert_same, _perturb  # noqa: E402

ORANGESUM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "orangesum_fr.jsonl.gz"

# (tag, article sentence, summary sentence): short news-style text written in each language.
TEXTS = [
    ("it", "Il governo italiano ha approvato martedì una nuova legge sulle energie rinnovabili, "
           "che prevede incentivi per le famiglie che installano pannelli solari.",
     "Approvata la legge sulle rinnovabili: incentivi alle famiglie per i pannelli solari."),
    ("nl", "De Nederlandse regering heeft dinsdag nieuwe maatregelen aangekondigd om de woningnood "
           "te bestrijden, waaronder de bouw van honderdduizend huizen.",
     "Kabinet kondigt bouw van honderdduizend woningen aan tegen de woningnood."),
    ("de", "Die Bundesregierung hat am Dienstag beschlossen, die Förderung für Elektroautos "
           "zu verlängern, wie das Wirtschaftsministerium mitteilte.",
     "Förderung für Elektroautos wird verlängert."),
    ("de-AT", "Die österreichischen Bundesbahnen haben angekündigt, die Nachtzüge nach Italien "
              "auszubauen und neue Verbindungen anzubieten.",
     "ÖBB bauen Nachtzugverbindungen nach Italien aus."),
    ("sv", "Den svenska regeringen presenterade på tisdagen en ny budget med satsningar på "
           "skolor, sjukvård och försvaret.",
     "Regeringens budget satsar på skolor och sjukvården."),
    ("da", "Den danske regering har fremlagt en plan om at reducere udledningerne fra landbruget "
           "med en afgift på drivhusgasser.",
     "Regeringen vil indføre afgift på landbrugets udledninger."),
    ("nb", "Regjeringen la tirsdag fram et forslag om å øke bevilgningene til sykehusene "
           "i Nord-Norge med flere hundre millioner kroner.",
     "Sykehusene i Nord-Norge får økte bevilgninger."),
    ("no", "Stortinget vedtok onsdag nye regler for strømstøtte til husholdningene.",
     "Nye regler for strømstøtte vedtatt."),
    ("fi", "Suomen hallitus päätti tiistaina korottaa opintotukea ja parantaa opiskelijoiden "
           "asumistukea ensi vuoden alusta.",
     "Hallitus korottaa opintotukea ensi vuonna."),
    ("hu", "A magyar kormány kedden bejelentette, hogy jövőre emelik a nyugdíjakat és "
           "a minimálbért.",
     "Jövőre emelkednek a nyugdíjak és a minimálbér."),
    ("ro", "Guvernul României a aprobat marți o ordonanță privind creșterea salariilor "
           "profesorilor din învățământul public.",
     "Salariile profesorilor vor crește, a decis guvernul."),
    ("pl", "Polski rząd przyjął we wtorek projekt ustawy o podwyżkach dla nauczycieli "
           "oraz pracowników służby zdrowia.",
     "Rząd przyjął projekt podwyżek dla nauczycieli."),
    ("cs", "Česká vláda ve středu schválila rozpočet na příští rok, který počítá se schodkem "
           "dvě stě miliard korun.",
     "Vláda schválila rozpočet se schodkem dvě stě miliard."),
    ("el", "Η ελληνική κυβέρνηση ανακοίνωσε την Τρίτη νέα μέτρα στήριξης για τα νοικοκυριά "
           "λόγω της αύξησης των τιμών της ενέργειας.",
     "Νέα μέτρα στήριξης για τα νοικοκυριά."),
    ("he", "הממשלה אישרה ביום שלישי תוכנית חדשה לבניית דירות בפריפריה ולהורדת מחירי הדיור.",
     "הממשלה אישרה תוכנית לבניית דירות בפריפריה."),
    ("ca", "El Govern ha aprovat aquest dimarts un pla per millorar el transport públic "
           "a les comarques de muntanya.",
     "El Govern aprova un pla de transport públic per a la muntanya."),
    ("pt-BR", "O governo brasileiro anunciou nesta terça-feira um novo programa de habitação "
              "popular com financiamentos mais baratos.",
     "Governo anuncia programa de habitação com financiamentos mais baratos."),
    ("zh-Hant", "行政院週二通過新的住宅政策，將興建更多社會住宅。", "行政院通過住宅政策"),
]


def _items(rows):
    rng = random.Random(1)
    preds, refs, langs, kinds = [], [], [], []
    for lang, text, summary in rows:
        for pred, ref, kind in ((text, summary, "lead"), (_perturb(summary, rng), summary, "perturbed"),
                                (summary, text, "swapped"), (summary, summary, "identical")):
            preds.append(pred)
            refs.append(ref)
            langs.append(lang)
            kinds.append(kind)
    return preds, refs, langs, kinds


def test_parity_in_languages_outside_xlsum():
    preds, refs, langs, kinds = _items(TEXTS)
    ours = _assert_same(preds, refs, langs, kinds)
    assert sum(0 < it["rougeL"]["f"] < 1 for it in ours) > len(ours) // 3


def test_stemming_matters_for_the_added_snowball_languages():
    # guards the comparison: inflected forms match only through the language's stemmer
    cases = {"it": ("leggi rinnovabile famiglia", "legge rinnovabili famiglie"),
             "sv": ("skolorna budgeten", "skolor budget"),
             "nl": ("woningen maatregelen", "woning maatregel")}
    for lang, (pred, ref) in cases.items():
        assert score_items([pred], [ref], lang)[0]["rouge1"]["f"] == 1.0, lang
        assert score_items([pred], [ref], "pl")[0]["rouge1"]["f"] < 1.0, lang


def test_scorer_info_names_tokenizer_and_stemmer_per_language():
    info = scorer_info(["it", "pl", "pt-BR", "zh-Hant", "nb"])["languages"]
    assert info["it"]["stemmer"].startswith("snowball-italian")
    assert info["pl"]["stemmer"] is None and info["pl"]["segmenter"] == "pyonmttok-aggressive"
    assert info["pt-BR"]["stemmer"].startswith("snowball-portuguese")
    assert info["zh-Hant"]["segmenter"] == "jieba"
    assert info["nb"]["stemmer"].startswith("snowball-norwegian")


@pytest.mark.skipif(not ORANGESUM.is_file(), reason="OrangeSum sample not in ../shared/data")
def test_parity_on_orangesum_french_with_region_tag():
    rows = []
    with gzip.open(ORANGESUM, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows.append(("fr-FR", row["text"].split("\n")[0][:600], row["summary"]))
            if len(rows) == 60:
                break
    preds, refs, langs, kinds = _items(rows)
    ours = _assert_same(preds, refs, langs, kinds)
    assert reference_items(preds[:1], refs[:1], langs[:1])[0] == {k: ours[0][k] for k in ("rouge1", "rouge2", "rougeL")}
