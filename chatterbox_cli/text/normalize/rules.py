"""The patterns, tried in one pass left to right (linear in the text): the first that matches
at a place wins, so the specific ones (tags, URLs, dates, money) come before plain numbers,
and what was said is never read again."""

from __future__ import annotations

import re
from functools import lru_cache

import chatterbox_cli.text.normalize.readers as readers
from chatterbox_cli.text.normalize.locale import WORDS, separators

UNITS = {
    "km/h": "speed-kilometer-per-hour", "mph": "speed-mile-per-hour",
    "m/s": "speed-meter-per-second", "km²": "area-square-kilometer",
    "m²": "area-square-meter", "°C": "temperature-celsius", "°F": "temperature-fahrenheit",
    "km": "length-kilometer", "cm": "length-centimeter", "mm": "length-millimeter",
    "m": "length-meter", "mi": "length-mile", "ft": "length-foot", "yd": "length-yard",
    "kg": "mass-kilogram", "mg": "mass-milligram", "g": "mass-gram", "lb": "mass-pound",
    "lbs": "mass-pound", "oz": "mass-ounce", "t": "mass-tonne", "ml": "volume-milliliter",
    "mL": "volume-milliliter", "l": "volume-liter", "L": "volume-liter",
    "gal": "volume-gallon", "ms": "duration-millisecond", "sec": "duration-second",
    "s": "duration-second", "min": "duration-minute", "h": "duration-hour",
    "hr": "duration-hour", "hrs": "duration-hour", "Hz": "frequency-hertz",
    "kHz": "frequency-kilohertz", "MHz": "frequency-megahertz", "GHz": "frequency-gigahertz",
    "kB": "digital-kilobyte", "KB": "digital-kilobyte", "MB": "digital-megabyte",
    "GB": "digital-gigabyte", "TB": "digital-terabyte", "W": "power-watt",
    "kW": "power-kilowatt", "kWh": "energy-kilowatt-hour", "V": "electric-volt",
    "ha": "area-hectare", "%": "concentr-percent", "°": "angle-degree",
}  # fmt: skip
CODES = (
    "USD EUR GBP JPY CNY INR KRW RUB TRY ILS CHF CAD AUD NZD SEK NOK DKK PLN BRL MXN ZAR "
    "SGD HKD AED SAR EGP MYR IDR"
).split()
SYMBOLS = r"US\$|R\$|[$€£¥₹₩₽₺₪]"
SYMBOLS_AFTER = r"[$€£¥₹₩₽₺₪]|zł|kr|Kč"
ROMAN = r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
NAME = r"[A-ZÀ-ÖØ-ÞА-ЯЁ][a-zà-öø-ÿа-яё]+"
PERCENT_WORD = {"ar": "بالمئة", "ko": "퍼센트", "zh": "百分之"}
"""CLDR's long percent keeps the sign in these; the word instead."""


def _alt(words: list[str]) -> str:
    return "|".join(map(re.escape, sorted(words, key=len, reverse=True)))


@lru_cache(maxsize=32)
def pattern(lang: str) -> re.Pattern:
    w = WORDS[lang]
    dec, grp = separators(lang)
    groups = re.escape(grp) + (" \u00a0\u202f" if grp.isspace() else "")
    num = rf"(?:\d{{1,3}}(?:[{groups}]\d{{3}})+(?!\d)|\d+)(?:[{re.escape(dec)}.]\d+)?"
    unit = _alt(list(UNITS))
    codes = "|".join(CODES)
    end = r"(?![A-Za-z0-9_/²³])"
    parts = {
        "tag": r"\[[^\[\]\n]{1,40}\]",
        "url": r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]]",
        "email": r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+"
        r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        "phone": r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}|\(\d{2,5}\) ?\d{3,4}"
        r"[ .-]?\d{3,4}|\d{3}-\d{3}-\d{4})(?![\d-])",
        "iso": r"(?<![\d.-])\d{4}-\d{1,2}-\d{1,2}(?![\d-])",
        "slash": r"(?<![\d/])\d{1,4}/\d{1,2}/\d{1,4}(?![\d/])",
        "dots": r"(?<![\d.-])\d{1,2}(?P<dsep>[.-])\d{1,2}(?P=dsep)\d{4}(?!\d|[.-]\d)",
        "clock": r"(?<![\d:.])(?:[01]?\d|2[0-3]):[0-5]\d(?!\d|:\d)"
        r"(?:\s?[AaPp]\.?\s?[Mm](?:\.(?=\s+[a-z]))?(?!\w))?",
        "dotted": r"(?<![\w.])[vV]?\d+(?:\.\d+){2,}(?![\w]|\.\d)",
        "money": rf"(?:{SYMBOLS})\s?{num}(?:\s?(?:thousand|million|billion|trillion|bn|mn"
        rf"|[kKmMbB])(?![\w]))?|(?<![A-Za-z0-9_.,]){num}\s?(?:{SYMBOLS_AFTER})(?!\w)"
        rf"|\b(?:{codes})\s?{num}|(?<![A-Za-z0-9_.,]){num}\s?(?:{codes})\b",
        "decade": r"(?<![A-Za-z0-9_.,])(?:1[1-9]|20)?[0-9]0'?s(?!\w)" if lang == "en" else "(?!)",
        "range": rf"(?<![A-Za-z0-9_.,-]){num}(?:\s?[–—]\s?|-){num}(?:\s?(?:{unit}){end})?",
        "unit": rf"(?<![A-Za-z0-9_.,])-?{num}\s?(?:{unit}){end}",
        "percent_first": rf"%\s?{num}" if lang == "tr" else "(?!)",
    }
    if w.ordinal_suffix:
        parts["ordinal"] = rf"(?<![A-Za-z0-9_.,])\d+(?:{w.ordinal_suffix})(?!\w)"
    if w.dot_ordinals:
        parts["dot_ordinal"] = r"(?<![A-Za-z0-9_.,])\d{1,3}\.(?=[ \t]+[^\W\d_])"
    if w.chapters:
        parts["chapter"] = (
            rf"(?i:\b(?:{'|'.join(w.chapters.split())})\.?\s+)(?-i:(?=[IVXLCDM]){ROMAN})(?!\w)"
        )
    parts |= {
        "regnal": rf"\b{NAME}\s+(?=[IVXLCDM]{{2,}}|[VX]\b)(?:{ROMAN})(?![\w'’])"
        + (r"(?:\.(?=\s+\w))?" if w.dot_ordinals else ""),
        "code": r"(?<!\w)(?:[A-Za-z_]+\d+|\d+[A-Za-z_]+)\w*",
        "hash": r"#\s?\d+",
        "negative": rf"(?<![A-Za-z0-9_.,)])[-−]{num}",
        "number": num,
        "symbol": r"(?<=\s)[&+=@](?=\s)|(?<=[A-Za-z])&(?=[A-Za-z])",
    }
    return re.compile("|".join(f"(?P<{k}>{v})" for k, v in parts.items()))


def normalize(text: str, lang: str = "en") -> str:
    """`text` as it is spoken in `lang` (a code of `text.languages`); unknown: as written."""
    if lang not in WORDS:
        return text
    said = pattern(lang).sub(lambda m: _say(m, lang), text)
    return re.sub(r"(?<=\S) {2,}(?=\S)", " ", said)


def _say(m: re.Match, lang: str) -> str:
    kind, text = m.lastgroup, m[0]  # the outer group: an inner one (`dsep`) closes before it
    if kind in ("tag", "code"):
        return text
    return READERS[kind](lang, text)


def _number_in(lang: str, text: str) -> str:
    return re.search(r"[-−]?\d[\d\s.,\u00a0\u202f]*\d|[-−]?\d", text)[0].strip()


def _phone(lang: str, text: str) -> str:
    return readers.digits(lang, text)


def _date(lang: str, text: str) -> str:
    a, b, c = (int(x) for x in re.split(r"[-/.]", text))
    if re.fullmatch(r"\d{4}-.*", text) or (len(text.split("/")[0]) == 4 and "/" in text):
        y, mo, d = a, b, c
    elif "/" in text:
        order = WORDS[lang].order
        y, mo, d = (c, a, b) if order == "mdy" else (a, b, c) if order == "ymd" else (c, b, a)
    else:
        y, mo, d = c, b, a
    said = readers.date(lang, y, mo, d, text)
    if said is not None:
        return said
    return re.sub(r"\d+", lambda n: readers.number(lang, n[0], as_year=False), text)


def _clock(lang: str, text: str) -> str:
    m = re.match(r"(\d+):(\d+)\s?(?:([AaPp])\.?\s?[Mm]\.?)?", text)
    return readers.clock(lang, int(m[1]), int(m[2]), m[3], text)


def _money(lang: str, text: str) -> str:
    num = _number_in(lang, text)
    head, tail = (part.strip() for part in text.partition(num)[::2])
    return readers.money(lang, head or tail, num, tail if head and tail else None, text)


def _range(lang: str, text: str) -> str:
    m = re.match(r"(.+?)(?:\s?[–—]\s?|-)(\d.*)", text)
    first, rest = m[1], m[2]
    second = _number_in(lang, rest)
    unit = rest[len(second) :].strip()
    years = all(re.fullmatch(r"1[1-9]\d\d|20\d\d", x) for x in (first, second))
    a = readers.number(lang, first, as_year=years)
    b = _unit(lang, second + " " + unit) if unit else readers.number(lang, second, years)
    return f"{a} {WORDS[lang].to} {b}"


def _unit(lang: str, text: str) -> str:
    num = _number_in(lang, text)
    symbol = text[text.index(num) + len(num) :].strip()
    if symbol == "%" and lang in PERCENT_WORD:
        said = readers.number(lang, num, as_year=False)
        return f"百分之{said}" if lang == "zh" else f"{said} {PERCENT_WORD[lang]}"
    return readers.unit(lang, num, UNITS[symbol], text)


def _decade(lang: str, text: str) -> str:
    """ "the 1990s" -> "the nineteen nineties", "the '80s" -> "the eighties"."""
    digits = text.rstrip("s").rstrip("'")
    said = (
        readers.number(lang, digits)
        if len(digits) == 4
        else readers.words.cardinal(lang, int(digits))
    )
    return said[:-1] + "ies" if said.endswith("y") else said + "s"


def _ordinal(lang: str, text: str) -> str:
    return readers.ordinal(lang, re.match(r"\d+", text)[0], text)


def _chapter(lang: str, text: str) -> str:
    head, numeral = text.rsplit(None, 1)
    return f"{head} {readers.words.cardinal(lang, roman(numeral)) or numeral}"


def _regnal(lang: str, text: str) -> str:
    name, numeral = text.rstrip(".").rsplit(None, 1)
    return f"{name} {readers.regnal(lang, roman(numeral))}"


def _hash(lang: str, text: str) -> str:
    return f"{WORDS[lang].number} {readers.number(lang, text.lstrip('# '), as_year=False)}"


def _symbol(lang: str, text: str) -> str:
    w = WORDS[lang]
    return f" {dict(zip('&+=@', (w.and_, w.plus, w.equals, w.at), strict=True))[text]} "


def roman(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for a, b in zip(numeral, numeral[1:] + " ", strict=True):
        v = values[a]
        total += -v if b != " " and values[b] > v else v
    return total


READERS = {
    "url": readers.spelled,
    "email": readers.spelled,
    "phone": _phone,
    "iso": _date,
    "slash": _date,
    "dots": _date,
    "clock": _clock,
    "dotted": readers.dotted,
    "money": _money,
    "decade": _decade,
    "range": _range,
    "unit": _unit,
    "percent_first": lambda lang, text: _unit(lang, text.lstrip("% ") + "%"),
    "ordinal": _ordinal,
    "dot_ordinal": _ordinal,
    "chapter": _chapter,
    "regnal": _regnal,
    "hash": _hash,
    "negative": lambda lang, text: readers.number(lang, text, as_year=False),
    "number": readers.number,
    "symbol": _symbol,
}
