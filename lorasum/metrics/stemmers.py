"""Per-language stemmers of XL-Sum's multilingual ROUGE scorer.

Which stemmer a language gets (reference language names):

- NLTK Snowball with ``ignore_stopwords=True`` for every Snowball language (arabic,
  english, french, german, portuguese, russian, spanish, ...): stopwords stay unstemmed.
  That needs NLTK's ``stopwords`` corpus; when it is missing the reference scorer
  crashes, and lorasum warns, stems stopwords too, and records
  ``stopwords_available: false`` in :func:`lorasum.metrics.scorer_info`;
- Turkish: ``TurkishStemmer`` (PyPI);
- Hindi: a light suffix stripper (Ramanathan & Rao 2003), written here because no
  package ships it;
- Bengali: the rule-based RafiStemmer (abhik1505040/bengali-stemmer, MIT). No package
  on PyPI ships it with its rule file, so the rules ship with lorasum
  (``resources/bengali_stemmer.rules`` and its MIT licence) and the few lines of its
  matcher are written here;
- any other named language: no stemming; ``None`` (no language): Porter, as in the reference.

Only tokens longer than 3 code points are stemmed. Stems are cached per language in a
plain dict (a known token costs one C lookup), since the same words recur across a corpus
and Snowball stemming is the costliest step. RafiStemmer tests each rule group's
suffixes with one ``str.endswith(tuple)`` before looking for the first that matches
(the rule order, so the same stem), instead of one call per suffix.
"""
from __future__ import annotations

import re
import threading
import logging
from functools import lru_cache
from importlib import resources
from typing import Callable

MIN_STEM_LENGTH = 3  # stem only tokens longer than this
PORTER = "porter"
_lock = threading.Lock()
_import_lock = threading.Lock()


def _import_nltk() -> None:
    """Import NLTK without the scikit-learn and SciPy it imports for features the scorer never uses.

    NLTK's package ``__init__`` imports every sub-package, and ``nltk.classify.scikitlearn``,
    ``nltk.metrics`` and ``nltk.translate`` import scikit-learn and SciPy when they are
    installed (2-3 s, most of the scorer's start-up; the Snowball stemmers and stopword lists
    use neither). Those imports are guarded by NLTK itself (``except ImportError``), so they are
    hidden while NLTK loads; the stemmers are NLTK's own, unchanged. Only when this process has
    imported none of them yet; NLTK's scikit-learn classifier wrapper and Fisher's exact test
    are then unavailable in it.
    """
    import sys

    with _import_lock:
        if "nltk" in sys.modules:
            return
        hidden = [name for name in ("sklearn", "scipy") if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # an import of it raises ImportError
        try:
            import nltk  # noqa: F401
        finally:
            for name in hidden:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]


@lru_cache(maxsize=1)
def stopwords_available() -> bool:
    """Whether NLTK's stopwords corpus can be loaded (needed for ``ignore_stopwords``)."""
    _import_nltk()
    try:
        from nltk.corpus import stopwords

        stopwords.words("english")
        return True
    except LookupError:
        logging.getLogger("lorasum.metrics").warning(
            "NLTK stopwords corpus not found: Snowball stemmers will also stem stopwords, so "
            "ROUGE for en, es, fr, pt, ru, ar, de differs from XL-Sum's scorer (recorded as "
            "stopwords_available: false). Install it with "
            "`python -c \"import nltk; nltk.download('stopwords')\"` or set NLTK_DATA."
        )
        return False


def snowball_languages() -> tuple[str, ...]:
    _import_nltk()
    from nltk.stem import SnowballStemmer

    return tuple(lang for lang in SnowballStemmer.languages if lang != PORTER)


# --- Hindi --------------------------------------------------------------------------------

_HINDI_SUFFIXES = {
    5: ("ाएंगी", "ाएंगे", "ाऊंगी", "ाऊंगा", "ाइयाँ", "ाइयों", "ाइयां"),
    4: ("ाएगी", "ाएगा", "ाओगी", "ाओगे", "एंगी", "ेंगी", "एंगे", "ेंगे", "ूंगी", "ूंगा", "ातीं", "नाओं",
        "नाएं", "ताओं", "ताएं", "ियाँ", "ियों", "ियां"),
    3: ("ाकर", "ाइए", "ाईं", "ाया", "ेगी", "ेगा", "ोगी", "ोगे", "ाने", "ाना", "ाते", "ाती", "ाता",
        "तीं", "ाओं", "ाएं", "ुओं", "ुएं", "ुआं"),
    2: ("कर", "ाओ", "िए", "ाई", "ाए", "ने", "नी", "ना", "ते", "ीं", "ती", "ता", "ाँ", "ां", "ों", "ें"),
    1: ("ो", "े", "ू", "ु", "ी", "ि", "ा"),
}


def hindi_stem(token: str) -> str:
    """Strip the longest listed suffix, keeping at least two characters."""
    for length in (5, 4, 3, 2, 1):
        if len(token) > length + 1 and token.endswith(_HINDI_SUFFIXES[length]):
            return token[:-length]
    return token


# --- Bengali (RafiStemmer) ---------------------------------------------------------------

_BENGALI_VOWEL_SIGNS = frozenset("ািীেুূো")


class RafiStemmer:
    """Bengali rule-based stemmer; behaves as abhik1505040/bengali-stemmer's ``stem_word``.

    The rule file holds ``{ ... }`` groups of suffixes, tried group after group; within a
    group the first suffix the word ends with applies: either a replacement (``suf -> rep``,
    ``.`` keeps the original character) or removal when a consonant remains before it.
    """

    def __init__(self, rules: str):
        self.groups: list[list[str]] = []
        self.replace: dict[str, str] = {}
        lines = []
        for raw in rules.splitlines():
            line = re.sub(r"#.*", "", re.sub(r"\s*", "", raw.strip()))
            if not line:
                continue
            if re.fullmatch(r".*->.*", line):
                parts = line.split("->")
                if len(parts) != 2:  # the original parser skips such lines
                    continue
                line = parts[0]
                if parts[1]:
                    self.replace[line] = parts[1]
            if line:
                lines.append(line)
        i = 0
        while i < len(lines):
            if lines[i] == "{":
                group = []
                i += 1
                while i < len(lines) and lines[i] != "}":
                    group.append(lines[i])
                    i += 1
                self.groups.append(group)
            i += 1
        self._ends = [tuple(group) for group in self.groups]

    def stem(self, word: str) -> str:
        for group, ends in zip(self.groups, self._ends):
            if not word.endswith(ends):  # one C call rules out the whole group
                continue
            for suffix in group:
                if not word.endswith(suffix):
                    continue
                index = len(word) - len(suffix)
                if suffix in self.replace:
                    rep = self.replace[suffix]
                    chars = list(word)
                    for k, c in enumerate(rep):
                        if c != ".":
                            chars[index + k] = c
                    word = "".join(chars[: index + len(rep)])
                elif any(c not in _BENGALI_VOWEL_SIGNS for c in word[:index]):
                    word = word[:index]
                break
        return word


def bengali_rules() -> str:
    return resources.files("lorasum.metrics").joinpath("resources/bengali_stemmer.rules").read_bytes().decode("utf-8")


# --- selection ----------------------------------------------------------------------------

def _build(name: str | None) -> Callable[[str], str] | None:
    if name is None:
        _import_nltk()
        from nltk.stem import SnowballStemmer

        return SnowballStemmer(PORTER).stem
    if name == "hindi":
        return hindi_stem
    if name == "bengali":
        return RafiStemmer(bengali_rules()).stem
    if name == "turkish":
        from TurkishStemmer import TurkishStemmer

        return TurkishStemmer().stem
    if name in snowball_languages():
        from nltk.stem import SnowballStemmer

        return SnowballStemmer(name, ignore_stopwords=stopwords_available()).stem
    return None


def stemmer_name(name: str | None) -> str | None:
    """Which stemmer a reference language name gets, for the record; None: no stemming."""
    if name is None:
        return "porter"
    if name in ("hindi", "bengali", "turkish"):
        return {"hindi": "hindi-suffixes", "bengali": "rafi", "turkish": "TurkishStemmer"}[name]
    if name in snowball_languages():
        return f"snowball-{name}" + ("" if stopwords_available() else "-stemming-stopwords")
    return None


class _Stems(dict):
    """token -> scoring form (its stem if longer than 3 code points), filled on first sight.

    A lookup of a known token is one C dict hit (no Python call); the table is emptied
    when it reaches ``limit`` entries, so memory stays bounded on endless input.
    """

    def __init__(self, stem: Callable[[str], str], limit: int = 2**18):
        super().__init__()
        self.stem, self.limit = stem, limit

    def __missing__(self, token: str) -> str:
        if len(self) >= self.limit:
            self.clear()
        value = self.stem(token) if len(token) > MIN_STEM_LENGTH else token
        self[token] = value
        return value


@lru_cache(maxsize=None)
def stemmer(name: str | None) -> Callable[[str], str] | None:
    """The token -> stem function for a reference language name (None: Porter), built once.

    Returns None for languages without a stemmer. It stems whatever it is given: use
    :func:`stem_tokens`, which leaves tokens of 3 code points or fewer alone.
    """
    with _lock:
        return _build(name)


@lru_cache(maxsize=None)
def _stems(name: str | None) -> _Stems | None:
    stem = stemmer(name)
    return None if stem is None else _Stems(stem)


def stem_tokens(tokens: list[str], name: str | None) -> list[str]:
    """Stem the tokens longer than 3 code points, as the reference does (cached per token)."""
    stems = _stems(name)
    if stems is None:
        return list(tokens)
    return list(map(stems.__getitem__, tokens))
