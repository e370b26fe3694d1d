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
no library. Segmenters and pyonmttok are the libraries the reference uses, loaded only
when a text of their language is first scored, and fed faster-to-load copies of the
same dictionaries: Thai ``newmm`` gets the word list as a set and a sorted list (:class:`ThaiWords`)
instead of a trie built node by node (~1 s), and jieba gets its prefix dictionary from
a cache lorasum writes in a faster format (:func:`_load_jieba_dictionary`). jieba's
per-block segmentation is cached, since clauses recur across texts. What remains is
mostly pyonmttok (C++), newmm's and jieba's Python search, and ``str.translate``.
"""
from __future__ import annotations

import re
import threading
from bisect import bisect_left
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

def _jieba_cache_path(jieba) -> tuple[str, str]:
    """Where lorasum keeps jieba's prefix dictionary, and the key that says it is current."""
    import os
    import tempfile

    dict_file = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    st = os.stat(dict_file)
    key = f"jieba {getattr(jieba, '__version__', '?')} {dict_file} {st.st_size} {st.st_mtime_ns}"
    base = os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()
    return os.path.join(base, f"lorasum-jieba-{os.getuid() if hasattr(os, 'getuid') else 0}.bin"), key


def _load_jieba_dictionary(tok, jieba) -> None:
    """Give ``tok`` jieba's default prefix dictionary (FREQ, total), ~3x faster than jieba.

    jieba's own cache is one marshalled dict of ~500k entries (~0.9 s to read). lorasum
    keeps the same entries as one newline-joined string and an int64 array, which read
    and zip back into the identical dict in ~0.3 s. The file is rebuilt from jieba
    whenever the key (jieba version, dictionary path, size, mtime) changes; any
    problem falls back to ``tok.initialize()``.
    """
    import array
    import marshal
    import os

    try:
        path, key = _jieba_cache_path(jieba)
        with open(path, "rb") as f:
            stored_key, words, freqs, total = marshal.loads(f.read())
        if stored_key != key:
            raise ValueError("stale")
        counts = array.array("q")
        counts.frombytes(freqs)
        freq = dict(zip(words.split("\n"), counts))
        if len(freq) != len(counts):
            raise ValueError("corrupt")
        tok.FREQ, tok.total, tok.initialized = freq, total, True
        return
    except Exception:
        pass
    tok.initialize()  # jieba's own (marshal) cache, or the dictionary text
    try:
        words = list(tok.FREQ)
        if any("\n" in w for w in words):
            return
        blob = marshal.dumps((key, "\n".join(words), array.array("q", tok.FREQ.values()).tobytes(), tok.total))
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except Exception:
        pass


def _jieba() -> Callable[[str], list[str]]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()  # own instance: words added to jieba's global dictionary elsewhere do not leak in
    _load_jieba_dictionary(tok, jieba)
    cut_dag = tok._Tokenizer__cut_DAG  # what Tokenizer.cut runs on each Han block (HMM on)
    re_han, re_skip = jieba.re_han_default, jieba.re_skip_default

    @lru_cache(maxsize=2**16)
    def han_block(block: str) -> tuple[str, ...]:
        return tuple(cut_dag(block))

    def cut(text: str) -> list[str]:
        """``Tokenizer.cut(text)`` (cut_all=False, HMM=True), with each Han block's words
        cached: blocks are segmented independently, and clauses recur across texts."""
        out: list[str] = []
        for block in re_han.split(text):
            if not block:
                continue
            if re_han.match(block):
                out.extend(han_block(block))
            else:
                for piece in re_skip.split(block):
                    if re_skip.match(piece):
                        out.append(piece)
                    else:
                        out.extend(piece)
        return out

    return cut


def _mecab() -> Callable[[str], list[str]]:
    import fugashi
    import unidic_lite

    # Name the dictionary explicitly: fugashi.Tagger prefers the full ``unidic`` package when
    # it is installed, and that one fails until its dictionary has been downloaded.
    d = unidic_lite.DICDIR
    tagger = fugashi.GenericTagger(f'-r "{d}/mecabrc" -d "{d}" -O wakati -b 50000')
    return lambda text: tagger.parse(text).split()


class ThaiWords:
    """pythainlp's default word list with the two queries ``newmm`` makes of a ``Trie``.

    ``prefixes(text, start)`` lists the words that start at ``start``, shortest first,
    exactly as ``pythainlp.util.Trie`` does (walk on while the text so far is a prefix of
    some word, keep the prefixes that are words). Built from a set and a sorted list in
    about a tenth of the time pythainlp takes to build its node-per-character trie (~1 s):
    "is a prefix of some word" is a binary search for the first word not before it.
    """

    def __init__(self, words):
        words = {w.strip() for w in words}  # Trie.add strips
        words.discard("")  # the empty word is never reported by Trie.prefixes
        self.words = frozenset(words)
        self.sorted = sorted(words)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.words

    def prefixes(self, text: str, start: int = 0) -> list[str]:
        res = []
        ordered, words, n = self.sorted, self.words, len(self.sorted)
        lo = 0
        for end in range(start + 1, len(text) + 1):
            piece = text[start:end]
            # words that start with ``piece`` sort right after it, and after every
            # shorter piece's, so the search can start where the last one ended
            lo = bisect_left(ordered, piece, lo)
            if lo == n or not ordered[lo].startswith(piece):
                break
            if piece in words:
                res.append(piece)
        return res


def _thai() -> Callable[[str], list[str]]:
    from pythainlp.corpus import thai_words
    from pythainlp.tokenize import word_tokenize

    words = ThaiWords(thai_words())  # what newmm uses when given no dictionary
    return lambda text: word_tokenize(text, custom_dict=words, engine="newmm")


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
    pieces = _pretokenizer().tokenize(text)[0]
    if not text or max(text) < "\u3400":  # below every ideograph range: nothing to split
        return pieces
    return _CJK.sub(r" \1 ", " ".join(pieces)).split()


def tokens(text: str, name: str | None) -> list[str]:
    """Unstemmed tokens of ``text`` for reference language ``name`` (None: no segmenter)."""
    text = sanitize(text.lower().strip())
    seg = segmenter(name)
    out = seg(text) if seg is not None else []
    if not out and text:
        out = default_tokens(text)
    return out
