"""Sentence grouping on tricky text: abbreviations, numbers, URLs, paragraphs, long sentences."""

import pytest

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.segment import (
    MAX_GROUP_CHARS,
    decode_bytes,
    ends_with_abbreviation,
    normalize,
    slug,
    split_groups,
)

TRICKY = [
    "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 3rd. They talked for an hour.",
    "The U.S. economy grew 3.5% in Q2. Analysts, e.g. those at No. 10, were surprised.",
    "Visit https://example.com/a.b?c=d.e for details. Or mail jane.doe@example.org today.",
    "Prices rose from $1,234.56 to $2,000.00 overnight. That is a 62.1% jump, i.e. a lot.",
    "We need milk, eggs, bread, etc. and then we go home. St. Louis is nice in Sept. too.",
    "Meet me at 10 a.m. Bring the No. 2 pencils. Prof. Lee will be there at 3 p.m. sharp.",
]


def all_words(text):
    return normalize(text).split()


@pytest.mark.parametrize("text", TRICKY)
def test_groups_keep_every_word_in_order(text):
    groups = split_groups(text)
    assert " ".join(g.text for g in groups).split() == all_words(text)


@pytest.mark.parametrize("text", TRICKY)
def test_no_group_ends_after_an_abbreviation(text):
    groups = split_groups(text, max_chars=60, per_group=1)
    assert len(groups) > 1
    for g in groups[:-1]:
        assert not ends_with_abbreviation(g.text), g.text


@pytest.mark.parametrize(
    "token", ["3.5%", "$1,234.56", "https://example.com/a.b?c=d.e", "jane.doe@example.org"]
)
def test_numbers_urls_and_emails_are_never_split(token):
    text = " ".join(TRICKY)
    for max_chars in (40, 80, 250):
        groups = split_groups(text, max_chars=max_chars, per_group=1)
        assert any(token in g.text.split() or token in g.text for g in groups)
        for g in groups:
            for word in g.text.split():
                assert word in text.split(), word


def test_sentences_grouped_two_or_three_with_short_tail_merged():
    sentences = [f"This is sentence number {n} of the test." for n in range(1, 8)]
    groups = split_groups(" ".join(sentences))
    counts = [g.text.count("This is sentence") for g in groups]
    assert counts == [3, 3, 1] or counts == [3, 4]
    tail = split_groups(" ".join(sentences[:3]) + " Short end.")
    assert len(tail) == 1 and tail[0].text.endswith("Short end.")


def test_paragraph_breaks_end_groups():
    text = "First paragraph one. Short.\n\n  \nSecond paragraph here. And more."
    groups = split_groups(text)
    assert [g.paragraph for g in groups] == [0, 1]
    assert groups[0].text == "First paragraph one. Short."


def test_long_sentence_split_at_clauses_then_words():
    clause = "the quick brown fox jumps over the lazy dog"
    sentence = ", ".join([clause] * 12) + "."
    groups = split_groups(sentence, max_chars=100)
    assert all(len(g.text) <= 100 for g in groups)
    assert all(g.text.endswith((",", ".")) for g in groups)
    words = "word " * 200
    groups = split_groups(words.strip() + ".", max_chars=50)
    assert all(len(g.text) <= 50 for g in groups)
    assert " ".join(g.text for g in groups).split() == words.split()[:-1] + ["word."]


def test_word_split_never_ends_on_abbreviation():
    text = "aaaa " * 8 + "Dr. " + "bbbb " * 8
    for limit in range(20, 60):
        groups = split_groups(text, max_chars=limit)
        for g in groups[:-1]:
            assert not ends_with_abbreviation(g.text), (limit, g.text)


def test_default_bound_holds_on_real_prose():
    prose = open("examples/long.txt", encoding="utf-8").read()
    groups = split_groups(prose)
    assert len(groups) > 3
    assert all(len(g.text) <= MAX_GROUP_CHARS for g in groups)
    assert " ".join(g.text for g in groups).split() == all_words(prose)


def test_normalize_strips_controls_and_whitespace():
    assert normalize("  Hi\x00 there\t\tyou.\r\n\r\n\r\nNext.  ") == "Hi there you.\n\nNext."
    assert split_groups(" \n\t ") == []


@pytest.mark.parametrize(
    "abbr", ["Dr.", "Mr.", "U.S.", "e.g.", "i.e.", "etc.", "St.", "a.m.", "p.m.", "Jan.", "No."]
)
def test_no_common_abbreviation_ends_a_sentence(abbr):
    """Each one mid-sentence, followed by a capitalised word as a new sentence would be."""
    from chatterbox_cli.text.segment import sentences

    text = f"We met {abbr} Walker and the others there. Then we left."
    assert sentences(text) == [f"We met {abbr} Walker and the others there.", "Then we left."]


def test_decode_reports_byte_offset():
    assert decode_bytes("hé".encode("utf-8-sig"), "x") == "hé"
    with pytest.raises(BadInput, match="offset 3"):
        decode_bytes(b"abc\xff", "file.txt")


def test_slug():
    assert slug("Hello there, World! It's 2026.") == "hello-there-world-it-s-2026"
    assert slug("¡¿!?") == "speech"
    assert len(slug("word " * 50)) <= 40


@pytest.mark.parametrize(
    "text,first",
    [
        (
            "We bought 5 kg. of flour. After that we all went home for the night.",
            "We bought 5 kg. of flour.",
        ),
        (
            "A 7 lb. crate arrived. After that we all went home for the night.",
            "A 7 lb. crate arrived.",
        ),
        (
            "See you on Fri. Oct. 3 at noon. After that we all went home for the night.",
            "See you on Fri. Oct. 3 at noon.",
        ),
        (
            "He said hi. and then he left. After that we all went home for the night.",
            "He said hi. and then he left.",
        ),
        (
            "The talk ran long, i.e. past noon. After that we all went home for the night.",
            "The talk ran long, i.e. past noon.",
        ),
    ],
)
def test_units_calendar_and_lower_case_continuations_stay_in_one_group(text, first):
    assert split_groups(text, per_group=1)[0].text == first
    assert split_groups(text, per_group=1, short_first=True)[0].text == first


def test_a_clause_that_starts_with_an_abbreviation_is_not_cut_off():
    long = "The talk ran long, i.e. past noon, and then it went on and on for what felt like hours."
    first = split_groups(long, short_first=True)[0].text
    assert first.startswith("The talk ran long, i.e. past noon")


def test_segmentation_is_windowed_so_time_is_linear(monkeypatch):
    """pysbd is quadratic in the length it sees: it must never see more than a window, and
    the windows must add up to about the text's length (each sentence segmented ~once)."""
    import chatterbox_cli.text.segment as text_mod

    seen: list[int] = []
    real = text_mod._segmenter()

    class Counting:
        def segment(self, chunk):
            seen.append(len(chunk))
            return real.segment(chunk)

    monkeypatch.setattr(text_mod, "_segmenter", lambda language="en": Counting())
    line = "The quick brown fox jumps over the lazy dog near the river bank today. " * 3
    book = "\n".join([line] * 400)  # one paragraph per line, no blank lines: ~90 KB
    groups = split_groups(book)
    assert " ".join(g.text for g in groups).split() == book.split()
    assert max(seen) <= text_mod.WINDOW_CHARS
    assert sum(seen) <= 1.1 * len(book)
