"""A content document made ready for a read-along book: each sentence of its text blocks
wrapped in a `<span id>` that a Media Overlay can point at, and the rest of the document (styles,
images, links, ids) left as it was.

A sentence is cut only where the cut falls in running text; a sentence boundary inside an inline
element (`<em>One. Two.</em>`) joins the two sentences into one span, so the markup stays
well-formed and nothing is moved. Notes, footnote markers and scripts stay outside the spoken
text, as `text/xhtml.py` reads them. Markdown and text books get their XHTML from `page()`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from chatterbox_cli.text.languages import Language
from chatterbox_cli.text.segment import sentences
from chatterbox_cli.text.xhtml import BLOCK_TAGS, local_name, silent

XHTML_NS = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
TEXT_BLOCKS = {
    "p", "div", "li", "dd", "dt", "blockquote", "figcaption", "h1", "h2", "h3", "h4", "h5",
    "h6", "td", "th", "caption", "pre", "address",
}  # fmt: skip
"""Blocks whose content may be wrapped in spans (their content is phrasing)."""
NESTING = (BLOCK_TAGS | {"table", "tr", "td", "th", "caption", "nav"}) - {"br", "hr"}
"""An element holding one of these is no leaf block: its own blocks are marked instead."""
ID_PREFIX = "cbx-s"


@dataclass
class Marked:
    """A content document with its sentences wrapped: the new XHTML and (id, text) per span."""

    xhtml: bytes
    spans: list[tuple[str, str]] = field(default_factory=list)


def _attrs(el) -> dict:
    """Attributes by the names `text/xhtml.py` knows ("epub:type", "role", "href", "class")."""
    out = {}
    for key, value in el.attrib.items():
        name = local_name(key)
        out["epub:type" if key == f"{{{EPUB_NS}}}type" else name] = value
    return out


def _quiet(el) -> bool:
    return silent(local_name(el.tag), _attrs(el))


def _text(el) -> str:
    """What is read of an element: its text without notes, markers and scripts."""
    if not isinstance(el.tag, str) or _quiet(el):
        return ""
    return (el.text or "") + "".join(_text(c) + (c.tail or "") for c in el)


def _leaves(root):
    """Leaf text blocks in document order, none inside a silent element."""
    stack = [root]
    while stack:
        el = stack.pop()
        if not isinstance(el.tag, str) or _quiet(el):
            continue
        kids = [c for c in el if isinstance(c.tag, str)]
        nested = any(local_name(d.tag) in NESTING for c in kids for d in c.iter())
        if local_name(el.tag) in TEXT_BLOCKS and not nested:
            yield el
        else:
            stack.extend(reversed(kids))


def _cuts(text: str, found: list[str]) -> list[int] | None:
    """The offset in `text` where each sentence after the first begins; None when the
    sentences don't spell the text (then the block is one span)."""
    marks, pos = [], 0
    for k, sentence in enumerate(found):
        chars = [c for c in sentence if not c.isspace()]
        for n, c in enumerate(chars):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text) or text[pos] != c:
                return None
            if n == 0 and k:
                marks.append(pos)
            pos += 1
    return marks if not text[pos:].strip() else None


def _wrap(block, lang: Language, next_id) -> list[tuple[str, str]]:
    """Wrap the block's sentences in spans; (id, sentence) for each span made."""
    pieces: list[object] = [block.text or ""]
    for child in block:
        pieces += [child, child.tail or ""]
    texts = [p if isinstance(p, str) else _text(p) for p in pieces]
    whole = "".join(texts)
    if not whole.strip():
        return []
    found = [s for s in sentences(" ".join(whole.split()), lang) if s.strip()] or [whole]
    cuts = _cuts(whole, found) or []
    runs: list[list[object]] = [[]]
    start = 0
    for piece, text in zip(pieces, texts, strict=True):
        end = start + len(text)
        inside = [c for c in cuts if start < c < end]
        if start in cuts and runs[-1] and start != 0:
            runs.append([])
        if isinstance(piece, str) and inside:
            edges = [start, *inside, end]
            for a, b in zip(edges, edges[1:], strict=False):
                if a != start:
                    runs.append([])
                runs[-1].append(piece[a - start : b - start])
        else:
            runs[-1].append(piece)
        start = end
    lead = runs[0][0] if isinstance(runs[0][0], str) else ""
    if lead and not lead.strip():
        runs[0] = runs[0][1:]
    for child in list(block):
        block.remove(child)
    block.text = lead if lead and not lead.strip() else None
    made = []
    for run in runs:
        said = "".join(p if isinstance(p, str) else _text(p) for p in run)
        span = block.makeelement(f"{{{XHTML_NS}}}span", {"id": next_id()})
        block.append(span)
        last = None
        for piece in run:
            if isinstance(piece, str):
                if last is None:
                    span.text = (span.text or "") + piece
                else:
                    last.tail = (last.tail or "") + piece
            else:
                piece.tail = None
                span.append(piece)
                last = piece
        _space_after(span, last)
        if said.strip():
            made.append((span.get("id"), " ".join(said.split())))
    return made


def _space_after(span, last) -> None:
    """Moves the span's trailing space after it, so a highlight ends with the sentence."""
    owner, attr = (span, "text") if last is None else (last, "tail")
    value = getattr(owner, attr) or ""
    kept = value.rstrip()
    if kept != value:
        setattr(owner, attr, kept or None)
        span.tail = value[len(kept) :]


def mark(xhtml: bytes, lang: Language, css: str | None = None) -> Marked | None:
    """The document with its sentences wrapped (and a link to the stylesheet `css`, which
    shows the sentence being read), or None when it is not well-formed XML (a reading system
    could not show it either) or declares entities: then it is kept as it was, without an
    overlay."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(xhtml, parser)
    except etree.XMLSyntaxError:
        return None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        return None  # entity declarations: never expanded, so never written back half-resolved
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    counter = [0]

    def next_id() -> str:
        while True:
            counter[0] += 1
            name = f"{ID_PREFIX}{counter[0]}"
            if name not in taken:
                return name

    body = next((el for el in root.iter() if local_name(el.tag) == "body"), None)
    head = next((el for el in root.iter() if local_name(el.tag) == "head"), None)
    linked = {el.get("href") for el in root.iter() if local_name(el.tag) == "link"}
    if css and head is not None and css not in linked:
        attrs = {"rel": "stylesheet", "type": "text/css", "href": css}
        head.append(head.makeelement(f"{{{XHTML_NS}}}link", attrs))
    spans = []
    for block in list(_leaves(body)) if body is not None else []:
        spans += _wrap(block, lang, next_id)
    doctype = root.getroottree().docinfo.doctype or "<!DOCTYPE html>"
    out = etree.tostring(root, encoding="utf-8", xml_declaration=True, doctype=doctype)
    return Marked(out, spans)


def page(title: str, text: str, language: str, css: str | None = None) -> bytes:
    """An EPUB 3 content document for a chapter of a Markdown or text book: its title as a
    heading, then its paragraphs (markup tags like `[pause]` left out)."""
    text = re.sub(r"\[/?(?:pause|voice)[^\][]*\]", " ", text)
    paras = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    if paras and paras[0].lower().rstrip(".") in title.lower():
        paras = paras[1:]
    body = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paras)
    link = f'<link rel="stylesheet" type="text/css" href="{css}"/>' if css else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="{XHTML_NS}" xmlns:epub="{EPUB_NS}" xml:lang="{language}" '
        f'lang="{language}"><head><title>{html.escape(title)}</title>{link}</head>'
        f'<body><section epub:type="chapter"><h1>{html.escape(title)}</h1>{body}</section>'
        "</body></html>"
    ).encode()
