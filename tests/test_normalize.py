"""The text front-end: what each language says for numbers, money, dates, times, units,
symbols, and what it must leave alone (tables); no digit survives in any language whose
number words we have (a property test); the lexicon wins; linear cost."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatterbox_cli.text.normalize import SPOKEN, normalize

TABLES = {
    "en": {
        "I paid $1,200.50 on 12/05/2026.":
            "I paid one thousand, two hundred dollars, fifty cents on December fifth, "
            "twenty twenty-six.",
        "The 21st of May, 1999.": "The twenty-first of May, nineteen ninety-nine.",
        "It is -5 °C at 3:45 p.m.": "It is minus five degrees Celsius at three forty-five p m.",
        "Henry VIII and Louis XIV.": "Henry the Eighth and Louis the Fourteenth.",
        "Chapter IV": "Chapter four",
        "World War II.": "World War two.",
        "Up 50% in 1990–1995.": "Up fifty percent in nineteen ninety to nineteen ninety-five.",
        "Run 5-10 km.": "Run five to ten kilometers.",
        "A 1 kg bag.": "A one kilogram bag.",
        "Call (555) 123-4567.": "Call five five five, one two three, four five six seven.",
        "Call +44 20 7946 0958.": "Call plus four four, two zero, seven nine four six, "
            "zero nine five eight.",
        "Write to info@example.com.": "Write to info at example dot com.",
        "See https://example.com/docs.": "See example dot com slash docs.",
        "Python 3.10.4 is out.": "Python three dot ten dot four is out.",
        "R&D, 2 + 2 = 4, #1.": "R and D, two plus two equals four, number one.",
        "£5 or ₹50.": "five pounds or fifty rupees.",
        "100 USD and EUR 20.": "one hundred dollars and twenty euros.",
        "$5 million.": "five million dollars.",
        "The 1990s.": "The nineteen nineties.",
        "It's 15:45, not 3:05 a.m.": "It's fifteen forty-five, not three oh five a m.",
        "2026-12-05.": "December fifth, twenty twenty-six.",
        "It is 3.14 and -2.": "It is three point one four and minus two.",
        # left as written: the pronoun, words that look like numerals, code, tags
        "I said Mix.": "I said Mix.",
        "So did I, CIVIL servant.": "So did I, CIVIL servant.",
        "Built for x86_64 with sha256 and mp3.": "Built for x86_64 with sha256 and mp3.",
        "[laugh] Three cats [chuckle].": "[laugh] Three cats [chuckle].",
    },
    "de": {
        "Am 1. Mai um 15:45.": "Am erste Mai um fünfzehn Uhr fünfundvierzig.",
        "Es kostet 1.200,50 €.": "Es kostet eintausendzweihundert Euro und fünfzig Cent.",
        "3,5 kg und 50 %.": "drei Komma fünf Kilogramm und fünfzig Prozent.",
        "Heinrich VIII. und Kapitel IV.": "Heinrich der Achte und Kapitel vier.",
        "Am 05.12.2026.": "Am fünfte Dezember zweitausendsechsundzwanzig.",
        "Von 1990–1995.": "Von neunzehnhundertneunzig bis neunzehnhundertfünfundneunzig.",
        "-5 °C.": "minus fünf Grad Celsius.",
    },
    "fr": {
        "Le 1er mai, 1 200,50 €.": "Le premier mai, mille deux cents euros et cinquante centimes.",
        "21 % à 15:45.": "vingt et un pour cent à quinze heures quarante-cinq.",
        "Louis XIV et Chapitre IV.": "Louis quatorze et Chapitre quatre.",
        "Le 5/12/2026.": "Le cinq décembre deux mille vingt-six.",
        "3,5 km.": "trois virgule cinq kilomètres.",
    },
    "es": {
        "El 5 de mayo, 1.200,50 €.":
            "El cinco de mayo, mil doscientos euros con cincuenta céntimos.",
        "El 2º lugar.": "El segundo lugar.",
        "Capítulo IV.": "Capítulo cuatro.",
        "El 05/12/2026.": "El cinco de diciembre de dos mil veintiséis.",
    },
    "it": {
        "Il 1º maggio, 3,14.": "Il primo maggio, tre virgola quattordici.",
        "1.000 € e 50 %.": "mille euro e cinquanta percento.",
        "Alle 15:45.": "Alle quindici e quarantacinque.",
    },
    "pt": {
        "1º lugar, 50 %.": "primeiro lugar, cinquenta por cento.",
        "Em 05/12/2026.": "Em cinco de dezembro de dois mil e vinte e seis.",
    },
    "nl": {
        "Op 05-12-2026.": "Op vijf december tweeduizendzesentwintig.",
        "€ 1.200,50.": "duizendtweehonderd euro, vijftig cent.",
        "De 3e plaats, 5 km.": "De derde plaats, vijf kilometer.",
    },
    "pl": {
        "5 zł i 50%.": "pięć złotych polskich i pięćdziesiąt procent.",
        "Rozdział IV.": "Rozdział cztery.",
        "Dnia 05.12.2026.": "Dnia piąty grudnia dwa tysiące dwadzieścia sześć.",
    },
    "ru": {
        "1-й раз, 50%.": "первый раз, пятьдесят процентов.",
        "$100.": "сто долларов США.",
    },
    "ja": {
        "2026年12月5日。": "二千二十六年十二月五日。",
        "5 km、50%。": "五 キロメートル、五十 パーセント。",
        "15:45。": "十五時四十五分。",
    },
    "zh": {
        "2026年12月5日。": "二零二六年十二月五日。",
        "50%，¥100。": "百分之五十，一百 人民币。",
        "3.5公里，15:45。": "三点五公里，十五点四十五分。",
    },
    "hi": {  # no number words here: CLDR's unit and money words, the digits as written
        "5 km, 50%.": "5 किलोमीटर, 50 प्रतिशत.",
        "$100.": "100 यूएस डॉलर.",
    },
    "ar": {
        "5 كم و 50%.": "خمسة كم و خمسون بالمئة.",
        "$100.": "مائة دولار أمريكي.",
    },
    "tr": {
        "1. sınıf, 3,5 kg.": "birinci sınıf, üç virgül beş kilogram.",
        "%50.": "yüzde elli.",
        "05.12.2026.": "beş Aralık ikibinyirmialtı.",
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("lang", "written", "said"),
    [(lang, w, s) for lang, table in TABLES.items() for w, s in table.items()],
)
def test_tables(lang, written, said):
    assert normalize(written, lang) == said


NUMBERY = st.one_of(
    st.integers(-(10**6), 10**18).map(str),
    st.decimals(-1000, 10**6, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.integers(1, 10**6).map(lambda n: f"{n:,}"),
    st.integers(0, 10**5).map(lambda n: f"${n}.{n % 100:02d}"),
    st.integers(0, 10**5).map(lambda n: f"{n} €"),
    st.integers(0, 200).map(lambda n: f"{n}%"),
    st.tuples(st.integers(1, 28), st.integers(1, 12), st.integers(1000, 2099)).map(
        lambda t: f"{t[0]:02d}.{t[1]:02d}.{t[2]}"
    ),
    st.tuples(st.integers(1000, 2099), st.integers(1, 12), st.integers(1, 28)).map(
        lambda t: f"{t[0]}-{t[1]:02d}-{t[2]:02d}"
    ),
    st.tuples(st.integers(1, 12), st.integers(1, 28), st.integers(1000, 2099)).map(
        lambda t: f"{t[0]}/{t[1]}/{t[2]}"
    ),
    st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]}:{t[1]:02d}"),
    st.tuples(st.integers(0, 999), st.sampled_from(["km", "kg", "°C", "mph", "GB", "ml"])).map(
        lambda t: f"{t[0]} {t[1]}"
    ),
    st.tuples(st.integers(0, 99), st.integers(100, 999)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 10**4).map(lambda n: f"#{n}"),
    st.just("+1 555-123-4567"),
    st.just("3.10.4"),
)
WORD = st.sampled_from(["the", "Der", "и", "年", "يوم", "avec", "und", "is", "—", ",", "("])


@settings(max_examples=60, deadline=None)
@given(lang=st.sampled_from(sorted(SPOKEN)), parts=st.lists(st.one_of(NUMBERY, WORD), max_size=8))
def test_no_digit_survives_where_the_language_has_number_words(lang, parts):
    said = normalize(" ".join(parts), lang)
    assert not re.search(r"[0-9]", said), said


def test_the_lexicon_wins_and_what_it_said_is_not_read_again():
    from chatterbox_cli.text.markup import Lexicon, split_marked

    words = Lexicon({"Route 66": "Route 66", "5G": "five gee"})
    [group] = split_marked("Route 66 got 5G in 1969 [laugh].", words)
    assert group.text == "Route 66 got five gee in nineteen sixty-nine [laugh]."
    [plain] = split_marked("Route 66 got 5G in 1969.", words, normalize=False)
    assert plain.text == "Route 66 got five gee in 1969."


def test_markup_is_read_before_and_voice_names_are_never_normalized():
    from chatterbox_cli.models import get
    from chatterbox_cli.synth.request import SpeechRequest

    text = "It is 5 km.[pause:1.5s][voice:R2D2]Over 9000![/voice]"
    plan = SpeechRequest(text).plan(get("turbo"))
    assert [(g.text, g.voice, g.lead_s) for g in plan.groups] == [
        ("It is five kilometers.", None, None),
        ("Over nine thousand!", "R2D2", 1.5),
    ]
    kept = SpeechRequest(text, normalize=False).plan(get("turbo"))
    assert [g.text for g in kept.groups] == ["It is 5 km.", "Over 9000!"]


def test_show_text_prints_what_is_spoken_and_loads_nothing(cli, tmp_path):
    import json

    from chatterbox_cli.text.segment import text_hash

    text = "Henry VIII paid $5 on 2026-12-05."
    r = cli("say", text, "--show-text", "--model-dir", tmp_path / "no-model-here")
    assert r.exit_code == 0, r.output
    assert (
        r.stdout == "0\tHenry the Eighth paid five dollars on December fifth, twenty twenty-six.\n"
    )
    r = cli("say", text, "--show-text", "--no-normalize")
    assert r.stdout == f"0\t{text}\n"
    r = cli("say", "Am 1. Mai: 3,5 kg.", "--show-text", "--json", "-m", "multilingual", "-l", "de")
    shown = json.loads(r.stdout)
    assert shown["language"] == "de" and shown["text_sha256"] == text_hash("Am 1. Mai: 3,5 kg.")
    assert shown["groups"] == [
        {"index": 0, "text": "Am erste Mai: drei Komma fünf Kilogramm.", "voice": None}
    ]
    assert shown["spoken_sha256"] == text_hash(shown["groups"][0]["text"])


def test_batch_and_book_show_text(cli, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text\na,It is 5%.\nb,Call 555-123-4567.\n")
    r = cli("batch", rows, "-d", tmp_path / "out", "--show-text")
    assert r.exit_code == 0, r.output
    assert (
        r.stdout == "# a\n0\tIt is five percent.\n"
        "# b\n0\tCall five five five, one two three, four five six seven.\n"
    )
    assert not (tmp_path / "out").exists()
    book = tmp_path / "book.md"
    book.write_text("# One\n\nIt was 1999.\n\n# Two\n\nChapter IV, 3 cats.\n")
    r = cli("book", book, "--show-text")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "# chapter 1: One\n0\tOne.\n1\tIt was nineteen ninety-nine.\n"
        "# chapter 2: Two\n0\tTwo.\n1\tChapter four, three cats.\n"
    )
    assert not book.with_suffix(".m4b").exists()


def test_a_chapter_word_without_a_numeral_is_left_alone():
    assert normalize("Part (a), Book: Act. Chapter I.") == "Part (a), Book: Act. Chapter one."
