"""Language codes: XL-Sum's 45 codes and names, the XWikis languages, and any BCP-47 tag.

Every language in lorasum is named by a code. XL-Sum's codes (``en``, ``zh-CN``,
``sr-Latn``) and hub config names (``english``, ``chinese_simplified``) map to XL-Sum's
code; any other well-formed, registered BCP-47 tag (``it``, ``pl``, ``pt-BR``,
``zh-Hant``) is accepted in its standard form (``langcodes`` validates and standardises
it, and gives the English names used in prompts and for choosing a ROUGE stemmer).
:func:`normalize_lang` rejects anything else with a message that says what is accepted.
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


# Norwegian's written standards share NLTK's one Snowball stemmer ("norwegian").
_BASE_NAME_ALIASES = {"norwegian bokmål": "norwegian", "norwegian nynorsk": "norwegian"}


def _bcp47(value: str) -> str | None:
    """The standard form of a registered BCP-47 tag with a language subtag, else None."""
    import langcodes

    try:
        if not langcodes.tag_is_valid(value):
            return None
        tag = langcodes.standardize_tag(value)
        lang = langcodes.Language.get(tag).language
    except (ValueError, LookupError):
        return None
    return tag if lang and not lang.startswith("x") and lang != "und" else None


def normalize_lang(value: str, where: str = "") -> str:
    """The lorasum code of a language: XL-Sum's code for XL-Sum codes/names, else the standard BCP-47 tag.

    Raises a clear error for anything that is neither (``xx``, ``english!``).
    """
    key = str(value).strip().lower()
    code = _BY_KEY.get(key)
    if code is None:
        code = _bcp47(str(value).strip())
    if code is None:
        place = f"{where}: " if where else ""
        accepted = ", ".join(sorted(LANGUAGES))
        raise LorasumError(
            f"{place}unknown language {value!r}: not a registered BCP-47 tag (e.g. it, pl, pt-BR, zh-Hant) "
            f"nor an XL-Sum code or name; accepted codes: {accepted} and any BCP-47 tag"
        )
    return _BY_KEY.get(code.lower(), code)


def english_name(code: str) -> str:
    """English display name for prompts: ``zh-CN`` -> ``Chinese Simplified``, ``pt-BR`` -> ``Portuguese (Brazil)``."""
    if code in LANGUAGES:
        return LANGUAGES[code].name.replace("_", " ").title()
    import langcodes

    return langcodes.Language.get(code).display_name()


def base_name(code: str) -> str:
    """Lower-case English name of a language without region or script (``pt-BR`` -> ``portuguese``).

    XL-Sum languages keep their hub config name; this is the name a language-keyed tool
    such as XL-Sum's ROUGE scorer (NLTK Snowball stemmers) is given.
    """
    if code in LANGUAGES:
        return LANGUAGES[code].name
    import langcodes

    name = langcodes.Language.get(code).language_name().lower()
    return _BASE_NAME_ALIASES.get(name, name)


def xlsum_config_name(code: str) -> str:
    """The ``csebuetnlp/xlsum`` hub config for a language code."""
    lang = LANGUAGES[normalize_lang(code)]
    if not lang.in_xlsum:
        raise LorasumError(f"language {code!r} is not part of XL-Sum; use local data for it")
    return lang.name
