"""Reading books: EPUB 2/3 built here (spine vs manifest order, front matter, two chapters in
one file, nested TOC, footnotes, cover), Markdown and plain-text manuscripts."""

from __future__ import annotations

import zipfile

import pytest

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.testing.epubs import TITLES, build_epub, cover_jpeg
from chatterbox_cli.text.book import pick_chapters, read_book
from chatterbox_cli.text.manuscript import read_markdown, read_text


@pytest.mark.parametrize("version", [3, 2])
def test_epub_chapters_in_reading_order_with_toc_titles(tmp_path, version):
    book = read_book(build_epub(tmp_path / "b.epub", version))
    assert [c.title for c in book.chapters] == TITLES
    assert (book.title, book.author, book.language) == ("The Test Book", "Ada Voice", "en")
    assert book.cover == cover_jpeg() and book.cover_type == "image/jpeg"
    one, two, three, four = (c.text for c in book.chapters)
    assert one.startswith("The Beginning") and "striking thirteen" in one
    assert "rivers" in two and "Rivers run to the sea" in two and "mountains" not in two
    assert three.startswith("Third Things") and "mountains" in three
    assert four.endswith("all & more.")
    spoken = "\n".join(c.text for c in book.chapters)
    for unwanted in ("note nobody", "Another note", "tracking", "Copyright", "Contents", "April1"):
        assert unwanted not in spoken
    assert "April." in one


def test_front_matter_kept_on_request(tmp_path):
    book = read_book(build_epub(tmp_path / "b.epub"), include_front_matter=True)
    assert [c.title for c in book.chapters][1:] == TITLES
    assert "Copyright 2026" in book.chapters[0].text


def test_not_an_epub(tmp_path):
    bad = tmp_path / "bad.epub"
    bad.write_text("hello")
    with pytest.raises(BadInput, match="not a zip"):
        read_book(bad)
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
    with pytest.raises(BadInput, match="container.xml"):
        read_book(bad)


def test_markdown_chapters_and_cleanup():
    md = (
        '---\ntitle: "A Manuscript"\nauthor: Jo Writer\nlang: fr-CA\n---\n'
        "Opening words.\n\n# The First Chapter\n\nIt *was* a **dark** night[^1], see "
        "[the link](http://x) ![img](a.png).\n\n```\ncode = 'never read'\n```\n\n"
        "## A Subsection\nEscaped \\*stars\\* and `code`.\n\n[^1]: The footnote.\n\n"
        "# Chapter Two #\nLast words.\n"
    )
    book = read_markdown(md, "stem")
    assert (book.title, book.author, book.language) == ("A Manuscript", "Jo Writer", "fr")
    assert [c.title for c in book.chapters] == ["The First Chapter", "Chapter Two"]
    first = book.chapters[0].text
    assert first.startswith("It was a dark night, see the link.")
    assert "A Subsection." in first and "*stars*" in first
    for unwanted in ("never read", "footnote", "http", "img", "**", "Opening"):
        assert unwanted not in first
    kept = read_markdown(md, "stem", include_front_matter=True)
    assert kept.chapters[0].text == "Opening words."


def test_markdown_title_over_second_level_chapters():
    book = read_markdown("# Book Title\n\nintro\n\n## One\n\ntext one\n\n## Two\n\ntext two\n", "s")
    assert book.title == "Book Title"
    assert [(c.title, c.text) for c in book.chapters] == [("One", "text one"), ("Two", "text two")]


def test_text_chapter_lines():
    text = (
        "ALICE IN A TEST\n\nby Somebody\n\nCHAPTER I.\nDown the Rabbit-Hole\n\n"
        "Alice was tired. Very tired.\n\nSo she thought.\n\nCHAPTER SEVEN\n\n"
        "A Mad Tea-Party, long. Yes.\n\nChapter 12: The End\n\nDone. Really.\n\n"
        "Chapter of accidents is no heading, it has no number at all.\n"
    )
    book = read_text(text, "alice")
    assert book.title == "ALICE IN A TEST"
    assert [c.title for c in book.chapters] == [
        "Chapter I: Down the Rabbit-Hole",
        "Chapter Seven",
        "Chapter 12: The End",
    ]
    assert book.chapters[0].text == "Alice was tired. Very tired.\n\nSo she thought."
    assert book.chapters[2].text.endswith("no number at all.")
    assert "Somebody" not in "".join(c.text for c in book.chapters)


def test_text_without_chapters_is_one_chapter():
    book = read_text("just one paragraph.\n\nand two.", "notes")
    assert [(c.title, c.text) for c in book.chapters] == [
        ("notes", "just one paragraph.\n\nand two.")
    ]


def test_pick_chapters():
    assert pick_chapters(None, 4) == [0, 1, 2, 3]
    assert pick_chapters("3-4,1,4", 4) == [0, 2, 3]
    for bad in ("0", "2-9", "x", "3-1"):
        with pytest.raises(BadInput, match="--chapters"):
            pick_chapters(bad, 4)
