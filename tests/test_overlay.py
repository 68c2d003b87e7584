"""The text side of read-along books, without a model: sentences wrapped in a content document
(`text/overlay.mark`), generated chapter pages, each EPUB 3 chapter's documents, and written
sentences timed per document (`text/align.document_times`)."""

from __future__ import annotations

from lxml import etree

from chatterbox_cli.testing.epubs import build_epub
from chatterbox_cli.text.align import document_times
from chatterbox_cli.text.cues import Segment
from chatterbox_cli.text.epub import read_epub
from chatterbox_cli.text.languages import LANGUAGES
from chatterbox_cli.text.overlay import mark, page

EN = LANGUAGES["en"]
X = "{http://www.w3.org/1999/xhtml}"


def doc(body: str, head: str = "<title>t</title>") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head>{head}</head><body>{body}</body></html>"
    ).encode()


def text_of(marked, span_id: str) -> str:
    root = etree.fromstring(marked.xhtml)
    el = next(e for e in root.iter() if e.get("id") == span_id)
    return "".join(el.itertext())


def test_sentences_are_wrapped_where_the_cut_is_in_running_text():
    body = (
        '<p id="cbx-s1">Mr. Hale came at five. <em>He</em> sat down. Then he <b>left. Gone.</b>'
        ' The end.</p><aside epub:type="footnote"><p>Not read.</p></aside>'
    )
    marked = mark(doc(body), EN, "../readalong/readalong.css")
    said = [text for _, text in marked.spans]
    assert said == ["Mr. Hale came at five.", "He sat down.", "Then he left. Gone.", "The end."]
    ids = [i for i, _ in marked.spans]
    assert "cbx-s1" not in ids and len(set(ids)) == len(ids)  # the page's own id is kept
    assert text_of(marked, ids[1]) == "He sat down."  # trailing space outside the highlight
    root = etree.fromstring(marked.xhtml)
    assert "".join(root.find(f"{X}body").itertext()) == "".join(
        etree.fromstring(doc(body)).find(f"{X}body").itertext()
    )  # not a character moved or lost
    links = [e.get("href") for e in root.iter(f"{X}link")]
    assert links == ["../readalong/readalong.css"]
    assert marked.xhtml.startswith(b"<?xml") and b"<!DOCTYPE html>" in marked.xhtml


def test_nested_blocks_are_marked_at_their_leaves_and_silent_parts_are_left():
    body = (
        "<blockquote><p>First one. Second one.</p><p>Third.</p></blockquote>"
        "<ul><li>An item.</li></ul><table><tr><td>A cell.</td></tr></table>"
        '<p>Note<a epub:type="noteref" href="#n">1</a> here.</p><script>var x = 1;</script>'
    )
    marked = mark(doc(body), EN)
    assert [t for _, t in marked.spans] == [
        "First one.", "Second one.", "Third.", "An item.", "A cell.", "Note here.",
    ]  # fmt: skip
    assert b"var x = 1;" in marked.xhtml


def test_broken_or_hostile_documents_are_left_alone():
    assert mark(b"<html><body><p>Unclosed</body></html>", EN) is None
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Say &c; now.</p></body></html>'
    )
    assert mark(bomb, EN) is None  # never expanded, and never written back half-resolved
    assert mark(bomb.replace(b"&c;", b"c"), EN) is None


def test_a_generated_page_says_the_chapter_without_markup():
    xhtml = page("One", "One\n\nIt is [pause:1s] late & <dark>.\n\n[voice:bob]Hi.[/voice]", "en")
    marked = mark(xhtml, EN)
    assert [t for _, t in marked.spans] == ["One", "It is late & <dark>.", "Hi."]


def test_each_epub3_chapter_knows_its_documents(tmp_path):
    book = read_epub(build_epub(tmp_path / "b.epub", 3, strict=True))
    assert [c.documents for c in book.chapters] == [
        ["OEBPS/text/ch1.xhtml"], ["OEBPS/text/ch23.xhtml"], ["OEBPS/text/ch23.xhtml"],
        ["OEBPS/text/ch4.xhtml"],
    ]  # fmt: skip
    assert book.package == "OEBPS/content.opf"
    assert book.documents == ["OEBPS/text/ch1.xhtml", "OEBPS/text/ch23.xhtml",
                              "OEBPS/text/ch4.xhtml"]  # fmt: skip
    assert read_epub(build_epub(tmp_path / "old.epub", 2)).package is None


def test_each_document_is_timed_against_the_speech_after_the_last():
    said = [Segment(0, "The Beginning.", 0.0, 1.0), Segment(1, "Rain fell all day.", 1.5, 3.5),
            Segment(2, "Chapter two. The sun came out.", 4.0, 6.0)]  # fmt: skip
    documents = [
        ["The Beginning", "Rain fell all day."],
        ["A preface nobody read aloud, in a document of its own."],
        ["Chapter two.", "The sun came out."],
    ]
    times = document_times(documents, said, "en")
    assert times[1] is None
    (a, b), (c, d) = times[0]
    assert a == 0.0 and b <= 1.0 + 1e-9 and 1.5 <= c < d <= 3.5 + 1e-9
    (e, f), (g, h) = times[2]
    assert 4.0 <= e < f <= g < h <= 6.0 + 1e-9
