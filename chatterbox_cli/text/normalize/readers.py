"""How one matched thing is said: a number, money, a date, a time, a unit, a phone number.

Every reader gets the language code and the matched text's parts and gives the words; where a
language has no number words (`words.SPOKEN`), the digits stay as written.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import chatterbox_cli.text.normalize.locale as locale
import chatterbox_cli.text.normalize.words as words
from chatterbox_cli.text.normalize.locale import WORDS

SYMBOL_CODES = {
    "$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW",
    "₽": "RUB", "₺": "TRY", "₪": "ILS", "R$": "BRL", "zł": "PLN", "Kč": "CZK", "Fr.": "CHF",
}  # fmt: skip
KRONA = {"sv": "SEK", "no": "NOK", "da": "DKK"}
SCALES = {"thousand": 3, "k": 3, "K": 3, "million": 6, "m": 6, "M": 6, "mn": 6,
          "billion": 9, "bn": 9, "b": 9, "B": 9, "trillion": 12}  # fmt: skip
EN_MONEY = {"USD": "dollar", "GBP": "pound", "EUR": "euro", "INR": "rupee"}
"""What English speakers call them ("five dollars", not CLDR's "five US dollars")."""
SCALE_WORDS = {3: "thousand", 6: "million", 9: "billion", 12: "trillion"}


def number_parts(lang: str, text: str) -> tuple[str, str, bool]:
    """`-1.200,50` (German) -> ("1200", "50", True): the group marks dropped, the decimal
    mark found whichever the text used (`.` counts as one too, unless it groups thousands)."""
    dec, _ = locale.separators(lang)
    negative = text[:1] in "-−"
    body = text.lstrip("-−").strip()
    if dec in body:
        whole, frac = body.rsplit(dec, 1)
    elif "." in body and not re.fullmatch(r"\d{1,3}(?:\.\d{3})+", body):
        whole, frac = body.rsplit(".", 1)
    else:
        whole, frac = body, ""
    return re.sub(r"\D", "", whole) or "0", re.sub(r"\D", "", frac), negative


def value(lang: str, text: str) -> Decimal:
    whole, frac, negative = number_parts(lang, text)
    try:
        v = Decimal(f"{whole or 0}.{frac}" if frac else whole or "0")
    except InvalidOperation:
        v = Decimal(0)
    return -v if negative else v


def number(lang: str, text: str, as_year: bool = True) -> str:
    """A cardinal or a decimal; a bare 4-digit 1100-2099 is read as a year."""
    whole, frac, negative = number_parts(lang, text)
    if frac:
        said = words.decimal(lang, whole, frac, negative)
    elif as_year and not negative and re.fullmatch(r"1[1-9]\d\d|20\d\d", text.strip()):
        said = words.year(lang, int(whole))
    elif len(whole) > words.MAX_DIGITS:
        said = words.digits(lang, whole)
    else:
        said = words.cardinal(lang, -int(whole or 0) if negative else int(whole or 0))
    return said if said is not None else text


def digits(lang: str, text: str) -> str:
    """A phone number: digit by digit, its groups apart."""
    groups = [g for g in re.split(r"\D+", text) if g]
    said = [words.digits(lang, g) for g in groups]
    if None in said:
        return text
    lead = f"{WORDS[lang].plus} " if text.lstrip().startswith("+") else ""
    return lead + ", ".join(said)


def ordinal(lang: str, digits_: str, text: str) -> str:
    said = words.ordinal(lang, int(digits_)) if len(digits_) <= 6 else None
    return said if said is not None else text


def money(lang: str, symbol: str, amount: str, scale: str | None, text: str) -> str:
    if symbol == "kr":
        code = KRONA.get(lang, "SEK")
    elif lang == "zh" and symbol == "¥":
        code = "CNY"
    else:
        code = SYMBOL_CODES.get(symbol, symbol.upper())
    v = value(lang, amount)
    if scale and lang == "en":
        power = SCALES[scale]
        return f"{number(lang, amount, as_year=False)} {SCALE_WORDS[power]} " + _plural(
            lang, code, Decimal(10) ** power
        )
    said = words.currency(lang, v, code) if v != v.to_integral_value() else None
    if said:
        return said
    return f"{number(lang, amount, as_year=False)} {_plural(lang, code, v)}"


def _plural(lang: str, code: str, count: Decimal) -> str:
    if lang == "en" and code in EN_MONEY:
        return EN_MONEY[code] + ("" if count == 1 else "s")
    try:
        return locale.currency_name(lang, code, count)
    except Exception:  # an unknown code: say its letters
        return " ".join(code)


def unit(lang: str, amount: str, unit_id: str, text: str) -> str:
    """`5 km` -> "five kilometers": CLDR's long form with the number said in words."""
    v = value(lang, amount)
    try:
        shaped = locale.unit(lang, v, unit_id)
    except Exception:  # a unit this language's CLDR data lacks
        return text
    shown = locale.formatted(lang, v)
    said = number(lang, amount, as_year=False)
    if shown in shaped:
        return shaped.replace(shown, said, 1)
    return shaped


def clock(lang: str, h: int, m: int, ampm: str | None, text: str) -> str:
    hw = words.cardinal(lang, h)
    if hw is None:
        return text
    if lang == "en":
        tail = f" {ampm.lower()} m" if ampm else ""
        if m == 0:
            return f"{hw}{tail}" if ampm else f"{hw} o'clock"
        mw = ("oh " if m < 10 else "") + words.cardinal(lang, m)
        return f"{hw} {mw}{tail}"
    if ampm and h < 12 and ampm.lower() == "p":
        hw = words.cardinal(lang, h + 12)
    pattern = WORDS[lang].time
    if m == 0:
        pattern = pattern.split("{m}")[0].strip()
    return pattern.format(h=hw, m=words.cardinal(lang, m))


def date(lang: str, y: int, mo: int, d: int, text: str) -> str | None:
    """A calendar date in the language's way; None when it is not one (13/45/2026)."""
    if not (1 <= mo <= 12 and 1 <= d <= 31) or words.cardinal(lang, d) is None:
        return None
    day = words.cardinal(lang, d)
    if d == 1 and lang in ("fr", "it"):
        day = words.ordinal(lang, 1)
    return WORDS[lang].date.format(
        d=day,
        do=words.ordinal(lang, d),
        m=locale.months(lang)[mo - 1],
        mn=words.cardinal(lang, mo),
        y=words.year(lang, y),
    )


def spelled(lang: str, text: str) -> str:
    """A URL or an e-mail address: its words kept, its marks named, its digits said."""
    w = WORDS[lang]
    body = re.sub(r"^https?://", "", text)
    names = {".": w.dot, "/": w.slash, "@": w.at, "-": "-", "_": "_", ":": ":"}
    out = []
    for part in re.split(r"([./@:])", body):
        if part in names:
            out.append(names[part])
        elif part:
            out.append(re.sub(r"\d+", lambda m: words.digits(lang, m[0]) or m[0], part))
    return " ".join(out)


def dotted(lang: str, text: str) -> str:
    """A version or an address (`3.10.4`, `192.168.0.1`): each part a number, "dot" between."""
    head = text[0] if text[0] in "vV" else ""
    parts = text[len(head) :].split(".")
    said = [words.cardinal(lang, int(p)) if len(p) <= 6 else words.digits(lang, p) for p in parts]
    if None in said:
        return text
    return (head + " " if head else "") + f" {WORDS[lang].dot} ".join(said)


def regnal(lang: str, n: int) -> str:
    """A ruler's numeral: "the Eighth", "der Achte", "quatorze" (French cardinals past 1)."""
    style = WORDS[lang].regnal
    if style == "{c}" and not (n == 1 and lang == "fr"):
        return words.cardinal(lang, n) or str(n)
    o = words.ordinal(lang, n) or str(n)
    if lang in ("es", "it", "pt") and n > 10:
        o = words.cardinal(lang, n) or o
    if lang in ("en", "de"):
        o = o[:1].upper() + o[1:]
    return style.replace("{O}", o).replace("{o}", o).replace("{c}", o)
