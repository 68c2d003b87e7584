"""Number words per language: num2words (18 of the 23 languages, Malay through its Indonesian
words, which are the same), cn2an for Chinese. Greek, Hindi and Swahili have no maintained
library here: their numbers stay digits, which the model reads as it can.

Our own rules only where the libraries are wrong or silent: negatives (num2words fails in
Polish), decimals (wrong in Italian and Turkish), years outside English (Japanese gives an
era name), ordinals in Chinese.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

N2W = {
    "ar": "ar", "da": "da", "de": "de", "en": "en", "es": "es", "fi": "fi", "fr": "fr",
    "he": "he", "it": "it", "ja": "ja", "ko": "ko", "ms": "id", "nl": "nl", "no": "no",
    "pl": "pl", "pt": "pt", "ru": "ru", "sv": "sv", "tr": "tr",
}  # fmt: skip
SPOKEN = frozenset(N2W) | {"zh"}
"""Languages whose numbers become words."""
MAX_DIGITS = 15
"""Longer digit runs are read digit by digit (no one says a 20-digit number as a number)."""
CURRENCY_N2W = frozenset("de en es fi fr he it ko nl pl pt ru".split())
"""num2words' currency words are right here (its Arabic says riyal for every code)."""
FRACTION_AS_NUMBER = frozenset("fr es it pt ru pl tr ar".split())
"""`3,14` is "three comma fourteen" here, digit by digit elsewhere."""
YEARS = frozenset(("en", "de", "nl"))
"""Where num2words says a year as years are said (not as the cardinal)."""
_ZH_DIGITS = "零一二三四五六七八九"


@lru_cache(maxsize=4096)
def cardinal(lang: str, n: int) -> str | None:
    """`n` in words; None where the language has no number words (the digits stay)."""
    if lang not in SPOKEN:
        return None
    if len(str(abs(n))) > MAX_DIGITS:
        return digits(lang, str(abs(n)))
    if n < 0:
        return f"{MINUS[lang]} {cardinal(lang, -n)}"
    if lang == "zh":
        import cn2an

        return cn2an.an2cn(str(n))
    from num2words import num2words

    return num2words(n, lang=N2W[lang]).replace(",", "").replace("  ", " ").strip()


def decimal(lang: str, whole: str, frac: str, negative: bool = False) -> str | None:
    """`whole.frac` with the language's decimal word."""
    head = cardinal(lang, int(whole or "0"))
    if head is None:
        return None
    if lang in FRACTION_AS_NUMBER and len(frac) <= 3:
        zeros = len(frac) - len(frac.lstrip("0"))
        tail = " ".join(
            [cardinal(lang, 0)] * zeros + ([cardinal(lang, int(frac))] if frac.strip("0") else [])
        )
    else:
        tail = digits(lang, frac)
    sep = "" if lang in ("zh", "ja") else " "
    said = f"{head}{sep}{POINT[lang]}{sep}{tail}"
    return f"{MINUS[lang]} {said}" if negative else said


@lru_cache(maxsize=4096)
def ordinal(lang: str, n: int) -> str | None:
    if lang not in SPOKEN:
        return None
    if lang == "zh":
        return "第" + cardinal(lang, n)
    from num2words import num2words

    try:
        return num2words(n, lang=N2W[lang], to="ordinal").replace(",", "").strip()
    except (NotImplementedError, KeyError, ValueError, TypeError):
        return cardinal(lang, n)


@lru_cache(maxsize=1024)
def year(lang: str, n: int) -> str | None:
    """A year as the language says years: "nineteen ninety-nine", "neunzehnhundertneunzig";
    Chinese digit by digit; elsewhere the cardinal (num2words' Japanese years are eras)."""
    if lang in YEARS:
        from num2words import num2words

        return num2words(n, lang=lang, to="year")
    if lang == "zh":
        return digits(lang, str(n), sep="")
    return cardinal(lang, n)


def digits(lang: str, text: str, sep: str = " ") -> str | None:
    """One word per digit (phone numbers, long runs, fractions)."""
    if lang not in SPOKEN:
        return None
    if lang == "zh":
        return sep.join(_ZH_DIGITS[int(d)] for d in text if d.isdigit())
    return sep.join(cardinal(lang, int(d)) for d in text if d.isdigit())


def currency(lang: str, amount: Decimal, code: str) -> str | None:
    """num2words' own money words (major and minor units) where they are right; else None."""
    if lang not in CURRENCY_N2W:
        return None
    from num2words import num2words

    try:
        return num2words(amount, lang=N2W[lang], to="currency", currency=code)
    except (NotImplementedError, KeyError, ValueError, TypeError):
        return None


MINUS = {
    "ar": "سالب", "da": "minus", "de": "minus", "el": "μείον", "en": "minus", "es": "menos",
    "fi": "miinus", "fr": "moins", "he": "מינוס", "hi": "ऋण", "it": "meno", "ja": "マイナス",
    "ko": "마이너스", "ms": "negatif", "nl": "min", "no": "minus", "pl": "minus", "pt": "menos",
    "ru": "минус", "sv": "minus", "sw": "hasi", "tr": "eksi", "zh": "负",
}  # fmt: skip
POINT = {
    "ar": "فاصلة", "da": "komma", "de": "Komma", "el": "κόμμα", "en": "point", "es": "coma",
    "fi": "pilkku", "fr": "virgule", "he": "נקודה", "hi": "दशमलव", "it": "virgola", "ja": "点",
    "ko": "점", "ms": "perpuluhan", "nl": "komma", "no": "komma", "pl": "przecinek",
    "pt": "vírgula", "ru": "запятая", "sv": "komma", "sw": "nukta", "tr": "virgül", "zh": "点",
}  # fmt: skip
