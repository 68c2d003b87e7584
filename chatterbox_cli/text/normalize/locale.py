"""What each language calls things: CLDR (through Babel) for separators, months, units,
currencies and percent with their plural forms; our own short table for the words CLDR does
not hold (symbols, ranges, clock times, date order, chapter words)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache


@dataclass(frozen=True)
class Words:
    to: str
    """a range: "5 to 10"."""
    plus: str
    equals: str
    and_: str
    at: str
    dot: str
    slash: str
    number: str
    """`#5`."""
    time: str = "{h} {m}"
    """A clock time; `{h}`, `{m}` in words ({m} dropped at :00 with what follows it)."""
    date: str = "{d} {m} {y}"
    """`{d}` day, `{do}` its ordinal, `{m}` month name, `{mn}` month number, `{y}` year."""
    order: str = "dmy"
    """How `1/2/2026` is read."""
    chapters: str = ""
    """Words after which a roman numeral is a cardinal ("Chapter IV")."""
    regnal: str = "{o}"
    """A ruler's numeral: "Henry VIII" -> "Henry the Eighth" (`{o}` ordinal, `{c}` cardinal)."""
    ordinal_suffix: str = ""
    """A regex of ordinal endings after digits (`21st`, `1er`, `2º`)."""
    dot_ordinals: bool = False
    """`1. Mai`: digits and a period before a word are an ordinal."""


WORDS: dict[str, Words] = {
    "en": Words("to", "plus", "equals", "and", "at", "dot", "slash", "number",
                date="{m} {do}, {y}", order="mdy",
                chapters="chapter part book volume vol act scene section phase level stage "
                "round war article appendix class type",
                regnal="the {o}", ordinal_suffix=r"st|nd|rd|th"),
    "de": Words("bis", "plus", "gleich", "und", "at", "Punkt", "Schrägstrich", "Nummer",
                time="{h} Uhr {m}", date="{do} {m} {y}",
                chapters="kapitel teil band akt szene buch abschnitt artikel",
                regnal="der {o}", dot_ordinals=True),
    "fr": Words("à", "plus", "égale", "et", "arobase", "point", "barre oblique", "numéro",
                time="{h} heures {m}",
                chapters="chapitre partie livre tome acte scène article",
                regnal="{c}", ordinal_suffix=r"er|re|ère|ème|eme|e"),
    "es": Words("a", "más", "igual a", "y", "arroba", "punto", "barra", "número",
                time="{h} y {m}", date="{d} de {m} de {y}",
                chapters="capítulo parte libro tomo acto escena artículo",
                ordinal_suffix=r"\.?º|\.?ª"),
    "it": Words("a", "più", "uguale", "e", "chiocciola", "punto", "barra", "numero",
                time="{h} e {m}",
                chapters="capitolo parte libro volume atto scena articolo",
                ordinal_suffix=r"\.?º|\.?ª"),
    "pt": Words("a", "mais", "igual a", "e", "arroba", "ponto", "barra", "número",
                time="{h} e {m}", date="{d} de {m} de {y}",
                chapters="capítulo parte livro volume ato cena artigo",
                ordinal_suffix=r"\.?º|\.?ª"),
    "nl": Words("tot", "plus", "is", "en", "apenstaartje", "punt", "schuine streep", "nummer",
                time="{h} uur {m}", chapters="hoofdstuk deel boek akte scène artikel",
                regnal="de {o}", ordinal_suffix=r"ste|de|e"),
    "pl": Words("do", "plus", "równa się", "i", "małpa", "kropka", "ukośnik", "numer",
                date="{do} {m} {y}", chapters="rozdział część księga tom akt scena artykuł",
                dot_ordinals=True),
    "ru": Words("до", "плюс", "равно", "и", "собака", "точка", "слэш", "номер",
                date="{do} {m} {y}", chapters="глава часть книга том акт сцена статья",
                ordinal_suffix=r"-й|-я|-е|-го|-му|-ом|-ой|-ый|-ая|-ое"),
    "tr": Words("ile", "artı", "eşittir", "ve", "et", "nokta", "eğik çizgi", "numara",
                chapters="bölüm kısım kitap cilt perde sahne madde",
                dot_ordinals=True),
    "sv": Words("till", "plus", "är lika med", "och", "snabel-a", "punkt", "snedstreck",
                "nummer", time="klockan {h} {m}", chapters="kapitel del bok akt scen",
                regnal="den {o}", ordinal_suffix=r":a|:e"),
    "da": Words("til", "plus", "lig med", "og", "snabel-a", "punktum", "skråstreg", "nummer",
                time="klokken {h} {m}", date="{do} {m} {y}", chapters="kapitel del bog akt scene",
                regnal="den {o}", dot_ordinals=True),
    "no": Words("til", "pluss", "er lik", "og", "krøllalfa", "punktum", "skråstrek", "nummer",
                time="klokka {h} {m}", date="{do} {m} {y}", chapters="kapittel del bok akt scene",
                regnal="den {o}", dot_ordinals=True),
    "fi": Words("–", "plus", "on yhtä kuin", "ja", "ät", "piste", "kauttaviiva", "numero",
                time="kello {h} {m}", date="{do} {m} {y}", chapters="luku osa kirja näytös",
                dot_ordinals=True),
    "ms": Words("hingga", "tambah", "sama dengan", "dan", "alias", "titik", "garis miring",
                "nombor", time="pukul {h} {m}"),
    "ar": Words("إلى", "زائد", "يساوي", "و", "آت", "نقطة", "شرطة مائلة", "رقم",
                time="{h} و{m} دقيقة", regnal="{c}"),
    "he": Words("עד", "ועוד", "שווה", "ו", "שטרודל", "נקודה", "לוכסן", "מספר",
                time="{h} ו{m} דקות", date="{d} ב{m} {y}", regnal="{c}"),
    "ja": Words("から", "プラス", "イコール", "と", "アット", "ドット", "スラッシュ", "番号",
                time="{h}時{m}分", date="{y}年{mn}月{d}日", order="ymd", regnal="{c}"),
    "zh": Words("至", "加", "等于", "和", "艾特", "点", "斜杠", "第",
                time="{h}点{m}分", date="{y}年{mn}月{d}日", order="ymd", regnal="{c}"),
    "ko": Words("에서", "더하기", "는", "와", "골뱅이", "점", "슬래시", "번호",
                time="{h}시 {m}분", date="{y}년 {mn}월 {d}일", order="ymd", regnal="{c}"),
    "el": Words("έως", "συν", "ίσον", "και", "παπάκι", "τελεία", "κάθετος", "αριθμός",
                regnal="{c}"),
    "hi": Words("से", "धन", "बराबर", "और", "एट", "डॉट", "स्लैश", "नंबर", regnal="{c}"),
    "sw": Words("hadi", "jumlisha", "sawa na", "na", "at", "nukta", "mkwaju", "namba",
                regnal="{c}"),
}  # fmt: skip


@lru_cache(maxsize=64)
def separators(lang: str) -> tuple[str, str]:
    """(decimal, group) symbols; a group of a space kind also accepts a plain space."""
    from babel.numbers import get_decimal_symbol, get_group_symbol

    return get_decimal_symbol(lang), get_group_symbol(lang)


@lru_cache(maxsize=64)
def months(lang: str) -> tuple[str, ...]:
    """Month names as dates use them (genitive where the language inflects: "5 декабря")."""
    from babel.dates import get_month_names

    names = get_month_names("wide", locale=lang)
    return tuple(names[i] for i in range(1, 13))


@lru_cache(maxsize=8192)
def unit(lang: str, value: Decimal, name: str) -> str:
    """`5 km` the CLDR way, plural form and word order included ("5 Kilometer", "kilomita
    5"); the number is put back as digits for the caller to say."""
    from babel.units import format_unit

    return _spaced(format_unit(value, name, length="long", locale=lang))


@lru_cache(maxsize=1024)
def currency_name(lang: str, code: str, count: Decimal) -> str:
    from babel.numbers import get_currency_name

    return _spaced(get_currency_name(code, count=count, locale=lang))


@lru_cache(maxsize=8192)
def formatted(lang: str, value: Decimal) -> str:
    """The number as CLDR writes it in this language (to find it in a CLDR pattern's output)."""
    from babel.numbers import format_decimal

    return _spaced(format_decimal(value, locale=lang))


def _spaced(text: str) -> str:
    """CLDR's no-break spaces as plain ones (a voice model reads them as nothing else)."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")
