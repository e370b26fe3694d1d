"""Model-free faithfulness signals on constructed texts with known answers."""
import random

import pytest

from lorasum.metrics.faithfulness.signals import SIGNAL_KEYS, fragments, novel_number_share, signals, words

ARTICLE = ("The central bank raised interest rates to 4.5 percent on Tuesday. Officials in Frankfurt said "
           "inflation had reached 3,000 basis points over a decade. Markets fell sharply after the announcement.")
LEAD = "The central bank raised interest rates to 4.5 percent on Tuesday."


def test_lead_sentence_summary_is_fully_extractive():
    s = signals(ARTICLE, LEAD, "en")
    assert set(s) == set(SIGNAL_KEYS)
    assert [s[f"novel_{n}gram_share"] for n in (1, 2, 3, 4)] == [0.0, 0.0, 0.0, 0.0]
    assert s["fragment_coverage"] == 1.0
    n = len(words(LEAD, "en"))
    assert s["summary_tokens"] == n
    assert s["fragment_density"] == n  # one fragment covering the whole summary: n^2 / n
    assert s["compression_ratio"] == pytest.approx(len(words(ARTICLE, "en")) / n)
    assert s["novel_number_share"] == 0.0


def test_summary_in_another_language_is_fully_novel():
    s = signals(ARTICLE, "Банк поднял ставки во вторник.", "ru")
    assert s["novel_1gram_share"] == 1.0
    assert s["fragment_coverage"] == 0.0
    assert s["fragment_density"] == 0.0


def test_novel_bigram_share_counts_occurrences():
    # bigrams: (markets fell) seen, (fell in) new, (in frankfurt) seen -> 1 of 3 novel
    s = signals(ARTICLE, "Markets fell in Frankfurt", "en")
    assert s["novel_1gram_share"] == 0.0
    assert s["novel_2gram_share"] == pytest.approx(1 / 3)
    assert s["novel_4gram_share"] == 1.0


def test_digits_of_every_script_are_the_same_numbers():
    assert novel_number_share("دفع 300 دولار", "قال إنه دفع ٣٠٠ دولار") == 0.0  # Arabic-Indic
    assert novel_number_share("۴۵ نفر", "45 نفر کشته شدند") == 0.0  # Persian
    assert novel_number_share("२०२३ में", "साल 2023 में") == 0.0  # Devanagari
    assert novel_number_share("১২ জন", "12 জন") == 0.0  # Bengali
    assert novel_number_share("3000 points", "3,000 basis points") == 0.0  # group separators dropped
    assert novel_number_share("paid 301 dollars", "paid ٣٠٠ dollars") == 1.0
    assert novel_number_share("no numbers here", "12") is None


def test_capitalised_tokens_absent_from_article():
    s = signals(ARTICLE, "Officials in Berlin met Markets experts.", "en")
    # "Officials" opens the sentence (skipped); "Berlin" is new, "Markets" is in the article
    assert s["novel_capitalised_share"] == pytest.approx(1 / 2)
    assert signals(ARTICLE, LEAD, "en")["novel_capitalised_share"] == 0.0  # "Tuesday" is in the article
    assert signals(ARTICLE, "The bank raised rates.", "en")["novel_capitalised_share"] is None  # initial only
    assert signals("चुनाव सोमवार को हुए।", "चुनाव हुए।", "hi")["novel_capitalised_share"] is None  # no case
    # Latin capitals inside a caseless script's text are not counted: the script decides
    assert signals("报道称", "据 BBC 报道。", "zh-CN")["novel_capitalised_share"] is None


def test_segmented_languages_use_rouge_words():
    article = "选举在周一举行。结果很晚才公布。"
    s = signals(article, "选举在周一举行。", "zh-CN")
    assert s["novel_1gram_share"] == 0.0 and s["fragment_coverage"] == 1.0
    assert " " not in words(article, "zh-CN")


def _newsroom_fragments(S, A):
    """Grusky et al.'s greedy algorithm, literally (lil-lab/newsroom ``_get_fragments``)."""
    F, i, j = [], 0, 0
    while i < len(S):
        f = []
        while j < len(A):
            if S[i] == A[j]:
                i_, j_ = i, j
                while i_ < len(S) and j_ < len(A) and S[i_] == A[j_]:
                    i_, j_ = i_ + 1, j_ + 1
                if len(f) < (i_ - i):
                    f = S[i:i_]
                j = j_
            else:
                j += 1
        i, j = i + max(len(f), 1), 0
        if f:
            F.append(f)
    return F


def test_fragments_match_the_newsroom_algorithm():
    rng = random.Random(0)
    for _ in range(300):
        A = tuple(rng.choice("abcd") for _ in range(rng.randint(0, 30)))
        S = tuple(rng.choice("abcde") for _ in range(rng.randint(0, 12)))
        assert fragments(S, A) == [tuple(f) for f in _newsroom_fragments(S, A)]
    # the reference skips past a matched run: "a a b" is not found at position 1 here
    assert fragments(tuple("aab"), tuple("aaab")) == _newsroom_fragments(tuple("aab"), tuple("aaab"))


def test_capitalised_tokens_are_checked_in_cased_languages_outside_xlsum():
    from lorasum.metrics.faithfulness.signals import novel_capitalised_share, script_of

    assert script_of("it") == "Latin" and script_of("pl") == "Latin" and script_of("he") != "Latin"
    article_words = ("il", "sindaco", "di", "roma", "ha", "parlato")
    assert novel_capitalised_share("Ieri il sindaco di Milano ha parlato.", article_words, "it") == 1.0
    assert novel_capitalised_share("Ieri il sindaco di Roma ha parlato.", article_words, "it") == 0.0
