"""Text -> unstemmed tokens, exactly as XL-Sum's multilingual ROUGE scorer makes them.

The pipeline (from ``multilingual_rouge_scoring`` in csebuetnlp/xl-sum, packaged on PyPI
as ``multilingual-rouge``), in order:

1. ``text.lower()`` (no Unicode normalisation: NFC and NFD text differ);
2. delete U+0000, U+FFFD and every ``C*`` character except ``\\t\\n\\r`` (so ZWJ/ZWNJ
   vanish and join the letters around them); ``Zs`` and ``\\t\\n\\r`` become spaces;
3. split on ASCII non-alphanumerics and every ``P*`` character, dropping them, and join
   the pieces with single spaces;
4. segment: Chinese with jieba ``cut``, Japanese with MeCab (fugashi, unidic-lite, wakati),
   Thai with pythainlp ``newmm``, Burmese with syllable rules. jieba and pythainlp return
   ``" "`` tokens; they are kept and count in n-grams and in the LCS, as in the reference;
5. any other language (or a segmenter that returns nothing): pyonmttok ``aggressive``
   tokenization, a space around each CJK ideograph, split on whitespace.

Why hand-written: the reference walks every character in Python, which dominates its
run time. Steps 2-3 here are one ``str.translate`` through a table filled from the
running Python's ``unicodedata`` (the tables the reference consults, so the result is
identical) the first time each character is seen. The Burmese syllable rules exist in
no library. Segmenters and pyonmttok are the libraries the reference uses.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Callable

# Languages (reference names) that have a word segmenter.
SEGMENTED = {"chinese": "jieba", "japanese": "fugashi+unidic-lite", "thai": "pythainlp-newmm",
             "burmese": "syllable-rules"}

_lock = threading.Lock()


def _is_ascii_punct(cp: int) -> bool:
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


class _CleanTable(dict):
    """``str.translate`` table filled on first sight of each code point.

    Maps characters to delete to None and space-like/punctuation characters to a space;
    other characters map to themselves. After warm-up every lookup is a C dict hit.
    """

    def __missing__(self, cp: int):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if ch in "\t\n\r":
            value = " "
        elif cp == 0 or cp == 0xFFFD or cat[0] == "C":
            value = None
        elif cat == "Zs" or cat[0] == "P" or _is_ascii_punct(cp):
            value = " "
        else:
            value = cp
        self[cp] = value
        return value


_CLEAN = _CleanTable()


_CJK = re.compile(
    "([\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
    "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f])"
)


def sanitize(text: str) -> str:
    """Steps 2-3 on already lower-cased text: cleaned words joined by single spaces."""
    return " ".join(text.translate(_CLEAN).split())


# --- segmenters -------------------------------------------------------------------------

def _jieba() -> Callable[[str], list[str]]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()  # own instance: words added to jieba's global dictionary elsewhere do not leak in
    tok.initialize()
    return lambda text: list(tok.cut(text))


def _mecab() -> Callable[[str], list[str]]:
    import fugashi
    import unidic_lite

    # Name the dictionary explicitly: fugashi.Tagger prefers the full ``unidic`` package when
    # it is installed, and that one fails until its dictionary has been downloaded.
    d = unidic_lite.DICDIR
    tagger = fugashi.GenericTagger(f'-r "{d}/mecabrc" -d "{d}" -O wakati -b 50000')
    return lambda text: tagger.parse(text).split()


def _thai() -> Callable[[str], list[str]]:
    from pythainlp.tokenize import word_tokenize

    return lambda text: word_tokenize(text, engine="newmm")


_MY_ASAT, _MY_DOT, _MY_STACK = "\u103a", "\u1037", "\u1039"
_MY_DEPENDENT = ({chr(0x102B + x) for x in range(8)} | {chr(0x1036 + x) for x in range(3)}
                 | {chr(0x103B + x) for x in range(4)} | {_MY_ASAT})


def burmese_syllables(text: str) -> list[str]:
    """Burmese syllable segmentation (rules of https://dl.acm.org/doi/10.1145/3325885)."""
    text = text.replace("\u200c", " ").replace(_MY_DOT + _MY_ASAT, _MY_ASAT + _MY_DOT)
    units = list("".join(text.lower().strip().split()))
    # A dependent sign joins the unit before it (right to left, so chains collapse).
    for i in range(len(units) - 1, 0, -1):
        if units[i][0] in _MY_DEPENDENT:
            units[i - 1] += units[i]
            units[i] = ""
    units = [u for u in units if u]
    # A short unit with asat (len < 4, to leave "au" alone) joins the unit before it.
    for i in range(1, len(units)):
        if _MY_ASAT in units[i] and len(units[i]) < 4:
            units[i - 1] += units[i]
            units[i] = ""
    joined = " ".join(u for u in units if u).replace(" " + _MY_STACK + " ", _MY_STACK)
    return joined.split()


def _burmese() -> Callable[[str], list[str]]:
    return burmese_syllables


_SEGMENTER_FACTORIES = {"chinese": _jieba, "japanese": _mecab, "thai": _thai, "burmese": _burmese}


@lru_cache(maxsize=None)
def segmenter(name: str | None) -> Callable[[str], list[str]] | None:
    """The word segmenter for a reference language name, built once per process."""
    factory = _SEGMENTER_FACTORIES.get(name) if name else None
    if factory is None:
        return None
    with _lock:
        return factory()


@lru_cache(maxsize=1)
def _pretokenizer():
    import pyonmttok

    return pyonmttok.Tokenizer("aggressive")


def default_tokens(text: str) -> list[str]:
    """pyonmttok ``aggressive`` (splits letters from digits), then CJK ideographs apart."""
    pieces = " ".join(_pretokenizer().tokenize(text)[0])
    return _CJK.sub(r" \1 ", pieces).split()


def tokens(text: str, name: str | None) -> list[str]:
    """Unstemmed tokens of ``text`` for reference language ``name`` (None: no segmenter)."""
    text = sanitize(text.lower().strip())
    seg = segmenter(name)
    out = seg(text) if seg is not None else []
    if not out and text:
        out = default_tokens(text)
    return out
