"""Sentence splitting for every XL-Sum script.

A sentence ends at a terminator, optionally followed by closing quotes or brackets:

- ``. ! ? …`` (Latin, Cyrillic, ...), Arabic ``؟`` and Urdu ``۔``, Devanagari ``। ॥``,
  Armenian-style ``։`` -- only when whitespace or the end of the text follows, so
  ``3.5``, ``U.S.`` inside a word and URLs stay whole;
- CJK ``。！？``, Burmese ``။``, Ethiopic ``። ፧ ፨`` -- wherever they stand, since these
  scripts do not put a space after a sentence;
- a line break always ends a sentence.

Thai marks sentences with spaces, not punctuation; it is split with pythainlp's
``sent_tokenize`` (``crfcut`` engine, a CRF trained on Thai text). No single library
splits all of XL-Sum's scripts (pysbd and nltk's punkt cover European languages), so the
rule set above is written here; abbreviations such as ``Mr.`` may end a sentence early,
which only splits a hypothesis into more pieces.
"""
from __future__ import annotations

import re
from functools import lru_cache

_CLOSERS = "\"'”’»)\\]」』）》〉"
_SPACED_ENDS = ".!?…؟۔।॥։"
_UNSPACED_ENDS = "。！？။።፧፨"
_END = re.compile(
    f"[{re.escape(_UNSPACED_ENDS)}]+[{re.escape(_CLOSERS)}]*"
    f"|[{re.escape(_SPACED_ENDS)}]+[{re.escape(_CLOSERS)}]*(?=\\s|$)"
    "|\\n+"
)


@lru_cache(maxsize=1)
def _thai_splitter():
    from pythainlp.tokenize import sent_tokenize

    return lambda text: sent_tokenize(text, engine="crfcut")


def split_sentences(text: str, lang: str | None = None) -> list[str]:
    """Sentences of ``text`` (stripped, none empty), for an XL-Sum language code.

    ``lang`` only matters for Thai (``"th"``); every other script is split by its
    punctuation, so an unknown or missing language still splits sensibly.
    """
    text = text.strip()
    if not text:
        return []
    if lang == "th":
        return [s.strip() for line in text.splitlines() for s in _thai_splitter()(line) if s.strip()]
    out, start = [], 0
    for m in _END.finditer(text):
        piece = text[start:m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
