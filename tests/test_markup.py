"""Markup ([pause], [voice]…[/voice], escapes), the lexicon, and how a book is planned into
groups and pauses; `book`'s refusals and `--list-chapters` (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chatterbox_cli.jobs import book as job
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.chapters import Book, Chapter
from chatterbox_cli.text.markup import Lexicon, Pause, Span, parse, prepare, split_marked


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


def test_split_marked_groups_carry_voice_and_pauses():
    """`say`/`batch`/server groups: each voice stretch grouped apart, `[pause]` as the silence
    before the next group (adding up in a row), one at the end as the last group's tail."""
    text = (
        "[pause:0.5s]Mr. Nguyen came. He sat. [pause:1s][pause:500ms]"
        "[voice:ann]Hello there. How are you?[/voice] Fine \\[pause:1s]. [pause:2s]"
    )
    groups = split_marked(text, Lexicon({"Nguyen": "Win"}))
    assert [(g.index, g.text, g.voice, g.lead_s) for g in groups] == [
        (0, "Mr. Win came. He sat.", None, 0.5),
        (1, "Hello there. How are you?", "ann", 1.5),
        (2, "Fine [pause:1s].", None, None),
    ]
    assert [g.tail_s for g in groups] == [0.0, 0.0, 2.0]
    first = split_marked("One is short. Two is here. [voice:ann]Three. Four.[/voice]", None, True)
    assert [(g.text, g.voice) for g in first] == [
        ("One is short.", None), ("Two is here.", None), ("Three. Four.", "ann"),
    ]  # fmt: skip
    assert split_marked("[pause:1s] [pause:2s]") == []


def test_join_places_each_gap():
    from chatterbox_cli.post.audio import joined

    sr = 1000
    ones = [np.ones(100, dtype=np.float32) for _ in range(3)]
    out = joined(ones, sr, gaps=[0.25, 0.0], lead_s=0.5, tail_s=0.1, fade_s=0.01)[0]
    assert len(out) == 500 + 100 + 250 + 200 - 10 + 100
    assert not out[:500].any() and not out[600:850].any() and not out[-100:].any()
    assert out[500] == 0 and out[949] == 1.0  # faded in after the lead; crossfaded: no dip
    assert len(joined(ones, sr, pause_s=0.2)[0]) == 300 + 2 * 200


def test_batch_items_take_markup_and_lexicon_but_book_groups_are_plain():
    from chatterbox_cli.jobs.batch import item_groups
    from chatterbox_cli.jobs.inputs import BatchItem
    from chatterbox_cli.models import TURBO
    from chatterbox_cli.synth.request import SpeechRequest

    base = SpeechRequest(lexicon=Lexicon({"Nguyen": "Win"}))
    row = BatchItem("rows.csv", 2, "Hi Nguyen. [pause:1s] Bye.")
    assert [(g.text, g.lead_s) for g in item_groups(row, base, TURBO)] == [
        ("Hi Win.", None), ("Bye.", 1.0),
    ]  # fmt: skip
    plain = BatchItem("book", 1, "A [pause:1s] literal, Nguyen.", plain=True)
    assert [g.text for g in item_groups(plain, base, TURBO)] == ["A [pause:1s] literal, Nguyen."]


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
