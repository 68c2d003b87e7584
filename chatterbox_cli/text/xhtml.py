"""One XHTML content document as the text a listener hears: whitespace collapsed, paragraphs
split by blank lines, footnote markers, notes and scripts dropped, and each `id`'s offset into
that text (where a TOC entry starts a chapter). lxml's HTML parser (libxml2) reads it: tolerant
of broken markup and linear in time, where the standard library's html.parser went quadratic
on a few kB of unclosed tags; entities from a DTD are left as written, never expanded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NOTE_TYPES = {"noteref", "footnote", "endnote", "rearnote", "footnotes", "endnotes", "note"}
DROPPED_TAGS = {"script", "style", "head", "title", "rt", "rp", "svg", "math", "template"}
BLOCK_TAGS = {
    "p", "div", "section", "article", "aside", "blockquote", "li", "ul", "ol", "dd", "dt",
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "tr", "table", "figure", "figcaption",
    "header", "footer", "pre", "body",
}  # fmt: skip
VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source"}


@dataclass
class Doc:
    """One XHTML content file as text: offsets of its ids, its epub:type tokens, a heading."""

    text: str = ""
    ids: dict[str, int] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    heading: str | None = None


class _Extract:
    """An lxml parser target: the text of a content file from its start/end/data events."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0
        self.doc = Doc()
        self.stack: list[tuple[str, bool]] = []
        self.muted = 0
        self.in_heading: list[str] | None = None
        self.seen_text = False

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def start(self, tag, attrib):
        a = dict(attrib)
        types = element_types(a)
        if tag in ("body", "section", "html") and not self.seen_text:
            self.doc.types |= types
        mute = silent(tag, a, types)
        if tag in BLOCK_TAGS:
            self._emit("\n\n")
        if a.get("id") and not self.muted:
            self.doc.ids.setdefault(a["id"], self.size)
        if tag in ("h1", "h2", "h3") and self.doc.heading is None and not self.muted:
            self.in_heading = []
        if tag not in VOID_TAGS:
            self.stack.append((tag, mute))
            self.muted += mute

    def end(self, tag):
        if not any(t == tag for t, _ in reversed(self.stack)):
            return
        while self.stack:
            t, mute = self.stack.pop()
            self.muted -= mute
            if t == tag:
                break
        if tag in BLOCK_TAGS:
            self._emit("\n\n")
        if tag in ("h1", "h2", "h3") and self.in_heading is not None:
            self.doc.heading = " ".join("".join(self.in_heading).split()) or None
            self.in_heading = None

    def close(self) -> None:
        return None

    def data(self, data):
        if self.muted:
            return
        if data.strip():
            self.seen_text = True
        self._emit(data)
        if self.in_heading is not None:
            self.in_heading.append(data)


def local_name(tag) -> str:
    """An lxml/ElementTree tag without its namespace ("" for comments and entities)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def element_types(a: dict) -> set[str]:
    """epub:type tokens and ARIA roles ("doc-footnote" -> "footnote") of an element."""
    return set((a.get("epub:type") or "").split()) | {
        r.removeprefix("doc-") for r in (a.get("role") or "").split()
    }


def silent(tag: str, a: dict, types: set[str] | None = None) -> bool:
    """Whether an element and all inside it go unread: scripts, notes, footnote markers."""
    types = element_types(a) if types is None else types
    return tag in DROPPED_TAGS or bool(types & NOTE_TYPES) or _is_marker(tag, a)


def _is_marker(tag: str, a: dict) -> bool:
    """A footnote marker without epub:type: a superscript or a link to a note ("1", "*")."""
    href = a.get("href") or ""
    classes = (a.get("class") or "").lower()
    return (
        tag == "a" and "#" in href and re.search(r"foot|note|fn", href + classes) is not None
    ) or ("footnote" in classes or "noteref" in classes)


def parse_doc(markup: str) -> Doc:
    """The text of one content file, whitespace collapsed, paragraphs split by blank lines;
    each id's offset points into that text."""
    from lxml import etree

    p = _Extract()
    parser = etree.HTMLParser(
        target=p, encoding="utf-8", no_network=True, remove_comments=True, remove_pis=True
    )
    parser.feed(markup.encode("utf-8", "replace"))
    parser.close()
    raw = "".join(p.parts)
    marks = sorted(p.doc.ids.items(), key=lambda kv: kv[1])
    out, ids, pos = [], {}, 0
    cursor = 0
    for name, offset in marks + [("", len(raw))]:
        out.append(_tidy(raw[cursor:offset], leading=pos == 0))
        pos += len(out[-1])
        if name:
            ids[name] = pos
        cursor = offset
    p.doc.text, p.doc.ids = "".join(out), ids
    return p.doc


def _tidy(chunk: str, leading: bool) -> str:
    """Collapse spaces, keep paragraph breaks (so ids' offsets survive the tidying)."""
    chunk = re.sub(r"[ \t\r\f\v\u00a0]+", " ", chunk)
    chunk = re.sub(r" *\n[\s]*\n\s*", "\n\n", chunk)
    chunk = re.sub(r"(?<!\n)\n(?!\n)", " ", chunk)
    return chunk.lstrip() if leading else chunk
