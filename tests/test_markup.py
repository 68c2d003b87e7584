"""Markup ([pause], [voice]…[/voice], escapes), the lexicon, and how a book is planned into
groups and pauses; `book`'s refusals and `--list-chapters` (no model needed)."""

from __future__ import annotations

import json

import pytest

from chatterbox_cli.jobs import book as job
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.chapters import Book, Chapter
from chatterbox_cli.text.markup import Lexicon, Pause, Span, parse, prepare


def test_pause_voice_and_escapes():
    parts = parse(
        "Hello. [pause:1.5s] Then [voice:bob]I speak.[/voice] Back [laugh] and "
        "\\[pause:2s] literal.[PAUSE:250ms]"
    )
    assert parts == [
        Span("Hello. "),
        Pause(1.5),
        Span(" Then "),
        Span("I speak.", "bob"),
        Span(" Back [laugh] and [pause:2s] literal."),
        Pause(0.25),
    ]


@pytest.mark.parametrize("bad", ["[pause:x]", "[voice:]", "[pause:99s]", "[pause:]"])
def test_bad_markup_is_a_clear_error(bad):
    with pytest.raises(BadInput, match=r"\[(pause|voice)"):
        parse(f"Some text {bad} more.")


def test_lexicon_whole_words_and_case(tmp_path):
    tsv = tmp_path / "lex.tsv"
    tsv.write_text("# comment\nNguyen\tWin\ngif\tjif\nUS\tUnited States\nnew york\tNew Yorrk\n")
    lex = Lexicon.load(tsv)
    said = lex.apply("Nguyen's GIF, gif, gifs; the US and us; New  York and NEW YORK; nguyen")
    assert said == (
        "Win's jif, jif, gifs; the United States and us; New Yorrk and New Yorrk; nguyen"
    )
    parts = prepare("[voice:US]Nguyen[/voice]", lex)
    assert parts == [Span("Win", "US")]  # voice names are never rewritten
    tsv.write_text("no tab here\n")
    with pytest.raises(BadInput, match=r"lex.tsv:1"):
        Lexicon.load(tsv)


def test_plan_names_groups_by_content_and_places_pauses():
    book = Book("T", chapters=[Chapter("One", "First words. [pause:2s] After.\n\nNext."),
                               Chapter("Two", "First words.")])  # fmt: skip
    planned = job.plan(book, [0, 1], {"model": "turbo"}, "en", None, 0.2)
    one = planned[0].pieces
    assert [p.text for p in one] == ["One.", "First words.", "", "After.", "Next."]
    assert one[2].name is None and one[2].after_s == 2.0 and one[1].after_s == 0.0
    assert one[0].after_s == job.PARAGRAPH_S and one[3].after_s == job.PARAGRAPH_S
    assert planned[1].pieces[1].name == one[1].name  # same words, same group, one synthesis
    items = job.items(planned, "t.txt", "en", seed=5)
    assert len(items) == 5 and len({i.seed for i in items}) == 5  # "Two." is new
    other = job.plan(book, [0], {"model": "nano"}, "en", None, 0.2)
    assert other[0].pieces[1].name != one[1].name


def test_title_spoken_unless_the_text_opens_with_it():
    book = Book("T", chapters=[Chapter("Chapter 1: The Beginning", "The Beginning\n\nText.")])
    pieces = job.plan(book, [0], {}, "en", None, 0.2)[0].pieces
    assert [p.text for p in pieces] == ["The Beginning", "Text."]


def test_book_refusals_and_listing(cli, tmp_path):
    md = tmp_path / "b.md"
    md.write_text("# One\n\nHello there. [voice:nobody-by-this-name]Hi.[/voice]\n\n# Two\n\nBye.\n")
    listed = cli("book", md, "--list-chapters", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["title"] for r in rows] == ["One", "Two"] and rows[0]["words"] == 3
    for args, words in [
        (("-o", tmp_path / "x.wav"), "m4b"),
        (("--chapters", "5"), "--chapters"),
        (("--bitrate", "8"), "--bitrate"),
        ((), "nobody-by-this-name"),
    ]:
        result = cli("book", md, *args)
        assert result.exit_code != 0
        assert words in result.output and "Traceback" not in result.output
    french = tmp_path / "fr.md"
    french.write_text("---\nlang: fr\n---\n# Un\n\nBonjour.\n")
    result = cli("book", french)
    assert result.exit_code != 0 and "--model multilingual" in result.output
    assert not (tmp_path / "b.m4b").exists() and not (tmp_path / "b.m4b.work").exists()
