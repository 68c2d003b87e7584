"""A read-along book: an EPUB 3 whose content documents are paired with their audio by Media
Overlays (EPUB 3.3 §9): one SMIL file per spoken document, each `par` pointing at a sentence's
span (`text/overlay.py`) and at its stretch of the chapter's MP3 inside the book.

The package document gains the audio, the SMIL files and a stylesheet in the manifest,
`media-overlay` on each spoken document, `media:duration` per overlay and for the book (their
sum, as EPUBCheck requires), `media:active-class` (the highlight reading systems apply) and a
fresh `dcterms:modified`. Everything else in the source is copied as it was. The file appears
whole or not at all (`runtime/atomic.py`).
"""

from __future__ import annotations

import posixpath
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from chatterbox_cli.runtime.atomic import atomic_write

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
ACTIVE_CLASS = "-epub-media-overlay-active"
CSS = (
    f".{ACTIVE_CLASS} {{ background-color: #ffe066; color: #000; border-radius: 0.2em; }}\n"
    ".-epub-media-overlay-playing { cursor: progress; }\n"
)
FOLDER = "readalong"
"""Where the audio, SMIL files and stylesheet go, beside the package document."""
ID_PREFIX = "cbx-"


@dataclass
class Clip:
    """One `par`: a span in a content document and its stretch of a chapter's audio."""

    span: str
    audio: str
    """The audio's path in the book."""
    begin: float
    end: float


@dataclass
class Overlay:
    document: str
    """The content document's path in the book."""
    clips: list[Clip] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return round(sum(round(c.end - c.begin, 3) for c in self.clips), 3)


def folder(opf: str) -> str:
    return posixpath.join(posixpath.dirname(opf), FOLDER)


def clock(seconds: float) -> str:
    """A SMIL full clock value, h:mm:ss.fff."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def smil(overlay: Overlay, path: str) -> bytes:
    def rel(target: str) -> str:
        return posixpath.relpath(target, posixpath.dirname(path))

    pars = "".join(
        f'<par id="par{k + 1}"><text src={quoteattr(rel(overlay.document) + "#" + c.span)}/>'
        f"<audio src={quoteattr(rel(c.audio))} "
        f'clipBegin="{c.begin:.3f}s" clipEnd="{c.end:.3f}s"/></par>\n'
        for k, c in enumerate(overlay.clips)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" '
        f'version="3.0"><body>\n{pars}</body></smil>\n'
    ).encode()


def _package(opf: bytes, opf_path: str, overlays: list[Overlay], audio: list[str]) -> bytes:
    """The package document with the overlays declared."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(opf, parser)
    meta = root.find(f"{{{OPF_NS}}}metadata")
    manifest = root.find(f"{{{OPF_NS}}}manifest")
    base = posixpath.dirname(opf_path)
    by_href = {
        posixpath.normpath(posixpath.join(base, i.get("href", ""))): i
        for i in manifest.iter(f"{{{OPF_NS}}}item")
    }
    for old in list(meta.iter(f"{{{OPF_NS}}}meta")):
        if old.get("property") in ("dcterms:modified", "media:duration", "media:active-class"):
            meta.remove(old)
    for item in list(manifest.iter(f"{{{OPF_NS}}}item")):
        item.attrib.pop("media-overlay", None)
        if item.get("id", "").startswith(ID_PREFIX):
            manifest.remove(item)  # a read-along book read again: its overlays are replaced

    def add_meta(prop: str, text: str, refines: str | None = None) -> None:
        el = etree.SubElement(meta, f"{{{OPF_NS}}}meta", property=prop)
        if refines:
            el.set("refines", refines)
        el.text = text

    def add_item(ident: str, path: str, media: str) -> None:
        href = posixpath.relpath(path, base) if base else path
        etree.SubElement(manifest, f"{{{OPF_NS}}}item", id=ident, href=href).set(
            "media-type", media
        )

    add_meta("dcterms:modified", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    add_item(
        f"{ID_PREFIX}readalong-css", posixpath.join(folder(opf_path), "readalong.css"), "text/css"
    )
    for k, name in enumerate(audio):
        add_item(f"{ID_PREFIX}audio-{k + 1}", name, "audio/mpeg")
    for k, overlay in enumerate(overlays):
        ident = f"{ID_PREFIX}overlay-{k + 1}"
        add_item(ident, smil_path(opf_path, k), "application/smil+xml")
        by_href[overlay.document].set("media-overlay", ident)
        add_meta("media:duration", clock(overlay.duration), f"#{ident}")
    add_meta("media:duration", clock(sum(o.duration for o in overlays)))
    add_meta("media:active-class", ACTIVE_CLASS)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def smil_path(opf_path: str, k: int) -> str:
    return posixpath.join(folder(opf_path), f"overlay-{k + 1:03d}.smil")


def write_read_along(
    out: Path,
    members: Iterable[tuple[str, bytes]],
    opf_path: str,
    documents: dict[str, bytes],
    overlays: list[Overlay],
    audio: dict[str, Path],
    overwrite: bool = True,
) -> Path:
    """The EPUB at `out`: `members` (the source book's files, `mimetype` first) with the marked
    `documents` in place of theirs, then the audio files (book path -> file here), the SMIL
    files and the stylesheet; the package document declares them all. A source that is itself
    a read-along book has its old overlays, audio and stylesheet replaced."""
    overlays = [o for o in overlays if o.clips]
    with atomic_write(out, overwrite, ".epub.part") as fh, zipfile.ZipFile(fh, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        ours = folder(opf_path) + "/"
        for name, data in members:
            if name == "mimetype" or name.startswith(ours):
                continue
            if name == opf_path:
                data = _package(data, opf_path, overlays, list(audio))
            zf.writestr(name, documents.get(name, data), compress_type=zipfile.ZIP_DEFLATED)
        for name, path in audio.items():
            zf.write(path, name, compress_type=zipfile.ZIP_STORED)
        for k, overlay in enumerate(overlays):
            name = smil_path(opf_path, k)
            zf.writestr(name, smil(overlay, name), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(posixpath.join(folder(opf_path), "readalong.css"), CSS)
    return out


def generated(
    title: str,
    author: str | None,
    language: str,
    pages: list[tuple[str, bytes]],
    cover: tuple[bytes, str] | None = None,
) -> tuple[str, list[tuple[str, bytes]]]:
    """A minimal EPUB 3 around `pages` (title, XHTML), for books that have no EPUB 3 of their
    own (Markdown, text, EPUB 2): (package path, members)."""
    opf = "OEBPS/content.opf"
    ident = uuid.uuid5(uuid.NAMESPACE_URL, "chatterbox:" + title + "".join(t for t, _ in pages))
    items, spine, links, members = [], [], [], []
    for k, (name, page) in enumerate(pages):
        href = f"text/chapter-{k + 1:03d}.xhtml"
        members.append((f"OEBPS/{href}", page))
        items.append(f'<item id="c{k + 1}" href="{href}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="c{k + 1}"/>')
        links.append(f'<li><a href="{href}">{escape(name)}</a></li>')
    if cover is not None:
        data, media = cover
        href = "images/cover." + ("png" if media == "image/png" else "jpg")
        members.append((f"OEBPS/{href}", data))
        items.append(f'<item id="cover" href="{href}" media-type="{media}" '
                     'properties="cover-image"/>')  # fmt: skip
    nav = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f'lang="{language}" xml:lang="{language}"><head><title>{escape(title)}</title></head>'
        f'<body><nav epub:type="toc" id="toc"><h1>{escape(title)}</h1><ol>{"".join(links)}'
        "</ol></nav></body></html>"
    )
    creator = f"<dc:creator>{escape(author)}</dc:creator>" if author else ""
    package = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<package xmlns="{OPF_NS}" version="3.0" unique-identifier="bookid" xml:lang="{language}">'
        f'<metadata xmlns:dc="{DC_NS}"><dc:identifier id="bookid">urn:uuid:{ident}'
        f"</dc:identifier><dc:title>{escape(title)}</dc:title>"
        f"<dc:language>{language}</dc:language>{creator}</metadata><manifest>"
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        f"{''.join(items)}</manifest><spine>{''.join(spine)}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        f'<rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    head = [("META-INF/container.xml", container.encode()), (opf, package.encode())]
    return opf, head + [("OEBPS/nav.xhtml", nav.encode())] + members
