"""Language codes: XL-Sum's 45 codes and names, plus the XWikis languages.

Every language in lorasum is named by its XL-Sum code (``en``, ``zh-CN``, ``sr-Latn``).
Users may also write XL-Sum's hub config names (``english``, ``chinese_simplified``);
:func:`normalize_lang` maps either form to the code and rejects anything else with a
message that lists what is accepted.
"""
from __future__ import annotations

from dataclasses import dataclass

from lorasum.errors import LorasumError


@dataclass(frozen=True)
class Language:
    code: str  # XL-Sum code, used everywhere inside lorasum
    name: str  # XL-Sum hub config name (``csebuetnlp/xlsum``), or the English name
    script: str
    in_xlsum: bool = True


_XLSUM = [
    ("am", "amharic", "Ethiopic"), ("ar", "arabic", "Arabic"), ("az", "azerbaijani", "Latin"),
    ("bn", "bengali", "Bengali"), ("my", "burmese", "Myanmar"),
    ("zh-CN", "chinese_simplified", "Han"), ("zh-TW", "chinese_traditional", "Han"),
    ("en", "english", "Latin"), ("fr", "french", "Latin"), ("gu", "gujarati", "Gujarati"),
    ("ha", "hausa", "Latin"), ("hi", "hindi", "Devanagari"), ("ig", "igbo", "Latin"),
    ("id", "indonesian", "Latin"), ("ja", "japanese", "Japanese"), ("rn", "kirundi", "Latin"),
    ("ko", "korean", "Hangul"), ("ky", "kyrgyz", "Cyrillic"), ("mr", "marathi", "Devanagari"),
    ("ne", "nepali", "Devanagari"), ("om", "oromo", "Latin"), ("ps", "pashto", "Arabic"),
    ("fa", "persian", "Arabic"), ("pcm", "pidgin", "Latin"), ("pt", "portuguese", "Latin"),
    ("pa", "punjabi", "Gurmukhi"), ("ru", "russian", "Cyrillic"),
    ("gd", "scottish_gaelic", "Latin"), ("sr-Cyrl", "serbian_cyrillic", "Cyrillic"),
    ("sr-Latn", "serbian_latin", "Latin"), ("si", "sinhala", "Sinhala"),
    ("so", "somali", "Latin"), ("es", "spanish", "Latin"), ("sw", "swahili", "Latin"),
    ("ta", "tamil", "Tamil"), ("te", "telugu", "Telugu"), ("th", "thai", "Thai"),
    ("ti", "tigrinya", "Ethiopic"), ("tr", "turkish", "Latin"), ("uk", "ukrainian", "Cyrillic"),
    ("ur", "urdu", "Arabic"), ("uz", "uzbek", "Latin"), ("vi", "vietnamese", "Latin"),
    ("cy", "welsh", "Latin"), ("yo", "yoruba", "Latin"),
]
# XWikis adds German and Czech; both have their own stemmer (German) or none (Czech).
_EXTRA = [("de", "german", "Latin"), ("cs", "czech", "Latin")]

LANGUAGES: dict[str, Language] = {
    **{c: Language(c, n, s) for c, n, s in _XLSUM},
    **{c: Language(c, n, s, in_xlsum=False) for c, n, s in _EXTRA},
}
_BY_KEY: dict[str, str] = {}
for _lang in LANGUAGES.values():
    _BY_KEY[_lang.code.lower()] = _lang.code
    _BY_KEY[_lang.name] = _lang.code
    _BY_KEY[_lang.code.lower().replace("-", "_")] = _lang.code

XLSUM_CODES: tuple[str, ...] = tuple(c for c, _, _ in _XLSUM)

# Pairs that share articles in XL-Sum: a transfer split between them leaks.
LEAKING_PAIRS: tuple[frozenset[str], ...] = (
    frozenset({"zh-CN", "zh-TW"}),
    frozenset({"sr-Cyrl", "sr-Latn"}),
)


def normalize_lang(value: str, where: str = "") -> str:
    """Return the XL-Sum code for a code or XL-Sum name; raise a clear error otherwise."""
    key = str(value).strip().lower()
    code = _BY_KEY.get(key)
    if code is None:
        place = f"{where}: " if where else ""
        accepted = ", ".join(sorted(LANGUAGES))
        raise LorasumError(
            f"{place}unknown language {value!r}. Use an XL-Sum code or name; accepted codes: {accepted}"
        )
    return code


def xlsum_config_name(code: str) -> str:
    """The ``csebuetnlp/xlsum`` hub config for a language code."""
    lang = LANGUAGES[normalize_lang(code)]
    if not lang.in_xlsum:
        raise LorasumError(f"language {code!r} is not part of XL-Sum; use local data for it")
    return lang.name
