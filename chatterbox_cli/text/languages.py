"""The languages we speak and how text in each is cut into sentences and measured.

Sentences come from pysbd with the language's own rules where pysbd has them; Norwegian and
Swedish use its Danish rules (same punctuation and abbreviation habits), Portuguese its Spanish
ones, and the rest (fi he ko ms sw tr) its generic English rules, which cut at `. ! ?` and keep
numbers and initials whole. On top, `abbreviations` are words after which a cut is undone.

Group lengths are measured in `spoken_length`, about letters of speech: a Han character or a
Hangul block is a whole syllable (~3 letters of English at the same speaking time), a kana a
mora (~2). So a group bound means about the same seconds in every script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatterbox_cli.runtime.errors import BadInput


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    segmenter: str
    """pysbd's language whose rules cut this one's sentences."""
    spaced: bool = True
    """Words are separated by spaces (not so in Chinese and Japanese)."""
    abbreviations: frozenset[str] = field(default_factory=frozenset)
    """Lower-case words (with their dot) that never end a sentence."""
    package: str = ""
    """Optional package upstream's text processing uses for this language, if any."""
    without: str = ""
    """What speech lacks when that package is missing."""


def _abbr(words: str) -> frozenset[str]:
    return frozenset(words.split())


_NORDIC = _abbr("hr. dr. prof. nr. f.eks. bl.a. osv. dvs. t.ex. ca. m.fl. jf. evt.")
_TABLE = [
    Language("ar", "Arabic", "ar"),
    Language("da", "Danish", "da", abbreviations=_NORDIC),
    Language("de", "German", "de", abbreviations=_abbr("dr. prof. nr. bzw. usw. ca. vgl. hr.")),
    Language("el", "Greek", "el", abbreviations=_abbr("κ. κα. δρ. π.χ. κλπ. βλ.")),
    Language("en", "English", "en"),
    Language("es", "Spanish", "es", abbreviations=_abbr("sr. sra. srta. dr. dra. ud. uds. núm.")),
    Language("fi", "Finnish", "en", abbreviations=_abbr("esim. mm. ns. tri. prof. nro. jne.")),
    Language("fr", "French", "fr", abbreviations=_abbr("m. mme. mlle. dr. pr. av. etc. cf.")),
    Language(
        "he",
        "Hebrew",
        "en",
        package="dicta-onnx",
        without="diacritics (niqqud) are not added",
    ),
    Language("hi", "Hindi", "hi"),
    Language("it", "Italian", "it", abbreviations=_abbr("sig. sig.ra dott. prof. ing. avv. ecc.")),
    Language("ja", "Japanese", "ja", spaced=False),
    Language("ko", "Korean", "en"),
    Language("ms", "Malay", "en", abbreviations=_abbr("dr. en. tn. pn. dll. sdn. bhd.")),
    Language("nl", "Dutch", "nl", abbreviations=_abbr("dhr. mevr. dr. prof. bijv. enz. nr.")),
    Language("no", "Norwegian", "da", abbreviations=_NORDIC),
    Language("pl", "Polish", "pl", abbreviations=_abbr("dr. prof. mgr. inż. np. itd. tzn. ul.")),
    Language("pt", "Portuguese", "es", abbreviations=_abbr("sr. sra. srta. dr. dra. prof. av.")),
    Language(
        "ru",
        "Russian",
        "ru",
        abbreviations=_abbr("г. гг. др. проф. т.е. т.д. ул. им. см."),
        package="russian-text-stresser",
        without="stress marks are not added",
    ),
    Language("sv", "Swedish", "da", abbreviations=_NORDIC),
    Language("sw", "Swahili", "en", abbreviations=_abbr("dkt. bw. bi.")),
    Language("tr", "Turkish", "en", abbreviations=_abbr("dr. prof. doç. vb. vs. sn. bkz.")),
    Language("zh", "Chinese", "zh", spaced=False, package="spacy-pkuseg"),
]
LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _TABLE}
ENGLISH = LANGUAGES["en"]


def language(code: str | None, allowed: tuple[str, ...] = tuple(LANGUAGES)) -> Language:
    """`code` checked against `allowed` (a family's languages); the error lists them."""
    key = (code or "en").strip().lower()
    if key not in allowed or key not in LANGUAGES:
        names = ", ".join(f"{c} ({LANGUAGES[c].name})" for c in allowed)
        raise BadInput(f"unknown language {code!r}; use one of: {names}")
    return LANGUAGES[key]


_WEIGHTS = (
    (0x1100, 0x11FF, 1),  # Hangul jamo (a letter each)
    (0x3040, 0x30FF, 2),  # hiragana, katakana: a mora
    (0x3400, 0x4DBF, 3),  # Han extension A
    (0x4E00, 0x9FFF, 3),  # Han: a syllable
    (0xAC00, 0xD7A3, 3),  # Hangul syllable blocks
    (0xF900, 0xFAFF, 3),  # Han compatibility
)


_MODULES = {"dicta-onnx": "dicta_onnx", "russian-text-stresser": "russian_text_stresser"}


def missing_package(lang: Language) -> str | None:
    """A note when upstream's optional text package for `lang` is not installed (upstream then
    goes on without it, and so do we)."""
    import importlib.util

    module = _MODULES.get(lang.package)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return (
        f"{lang.name}: {lang.without}, as upstream does without the optional package "
        f"{lang.package}; `pip install {lang.package}` adds them"
    )


def _weight(ch: str) -> int:
    code = ord(ch)
    if code < 0x1100:
        return 1
    for low, high, weight in _WEIGHTS:
        if low <= code <= high:
            return weight
    return 1


def spoken_length(text: str) -> int:
    """Length in letters of speech (see the module docstring)."""
    if text.isascii():
        return len(text)
    return sum(_weight(ch) for ch in text)
