"""EPUBs built for tests, with what real books do to readers: a spine in another order than the
manifest, front matter (cover, title page, copyright, the nav page), two chapters in one file,
a nested TOC, footnotes, scripts and a cover image. EPUB 3 (nav) or EPUB 2 (NCX and guide)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

XHTML = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>{title}</title><script>var tracking = "do not read";</script></head>
<body{body_type}>{body}</body></html>"""
STRICT_XHTML = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="en">
<head><title>{title}</title><link rel="stylesheet" type="text/css" href="../book.css"/></head>
<body{body_type}>{body}</body></html>"""
"""What EPUBCheck passes: no script, a stylesheet (kept by a read-along copy)."""

FILES = {
    "cover.xhtml": ("Cover", ' epub:type="cover"', '<img src="../images/cover.jpg" alt="Cover"/>'),
    "title.xhtml": (
        "Title",
        ' epub:type="frontmatter titlepage"',
        "<h1>The Test Book</h1><p>By Ada Voice</p>",
    ),
    "copyright.xhtml": (
        "Copyright",
        ' epub:type="frontmatter copyright-page"',
        "<p>Copyright 2026. All rights.</p>",
    ),
    "ch1.xhtml": (
        "One",
        "",
        '<section epub:type="chapter"><h1 id="c1">The Beginning</h1>'
        '<p>It was a bright cold day in April<a epub:type="noteref" href="#n1">1</a>.</p>'
        "<p>The clocks were striking thirteen.</p>"
        '<aside epub:type="footnote" id="n1"><p>A note nobody should hear.</p></aside>'
        "</section>",
    ),
    "ch23.xhtml": (
        "Two and three",
        "",
        '<h1 id="c2">Second Things</h1><p>The second chapter speaks of rivers.'
        '<sup><a href="#fn2" class="footnote-ref">2</a></sup></p>'
        '<h2 id="c2s">A Section</h2><p>Rivers run to the sea.</p>'
        '<h1 id="c3">Third Things</h1><p>The third chapter speaks of mountains.</p>'
        '<div class="footnotes"><p id="fn2">Another note.</p></div>',
    ),
    "ch4.xhtml": ("Four", "", "<h1>The End</h1><p>And that was all &amp; more.</p>"),
}
SPINE = ["cover.xhtml", "title.xhtml", "nav.xhtml", "copyright.xhtml", "ch1.xhtml", "ch23.xhtml",
         "ch4.xhtml"]  # fmt: skip
MANIFEST_ORDER = ["ch4.xhtml", "ch23.xhtml", "copyright.xhtml", "ch1.xhtml", "title.xhtml",
                  "cover.xhtml", "nav.xhtml"]  # fmt: skip
TOC = [
    ("ch1.xhtml#c1", "Chapter 1: The Beginning", []),
    (
        "ch23.xhtml#c2",
        "Part Two",
        [("ch23.xhtml#c2", "Chapter 2: Rivers", []), ("ch23.xhtml#c3", "Chapter 3: Mountains", [])],
    ),
    ("ch4.xhtml", "Chapter 4: The End", []),
]
TITLES = ["Chapter 1: The Beginning", "Part Two — Chapter 2: Rivers", "Chapter 3: Mountains",
          "Chapter 4: The End"]  # fmt: skip
"""What a correct reader makes of `TOC` (two entries at one place keep both titles)."""


def _nav_list(entries) -> str:
    items = "".join(
        f'<li><a href="{href}">{title}</a>{_nav_list(kids) if kids else ""}</li>'
        for href, title, kids in entries
    )
    return f"<ol>{items}</ol>"


def _ncx_points(entries, counter=None) -> str:
    counter = counter if counter is not None else [0]
    out = []
    for href, title, kids in entries:
        counter[0] += 1
        out.append(
            f'<navPoint id="p{counter[0]}" playOrder="{counter[0]}"><navLabel><text>{title}</text>'
            f'</navLabel><content src="{href}"/>{_ncx_points(kids, counter)}</navPoint>'
        )
    return "".join(out)


def cover_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 128), (180, 40, 40)).save(buf, "JPEG")
    return buf.getvalue()


def build_epub(path: Path, version: int = 3, language: str = "en-GB", strict: bool = False) -> Path:
    """Write the test book; `version` 2 uses an NCX, a guide and `<meta name="cover">`.
    `strict` (EPUB 3) is a book EPUBCheck passes: an identifier, `dcterms:modified`, a
    stylesheet, no script and no NCX."""
    page = STRICT_XHTML if strict else XHTML
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        for name, (title, body_type, body) in FILES.items():
            if version == 2:
                body_type = ""
            zf.writestr(
                f"OEBPS/text/{name}", page.format(title=title, body_type=body_type, body=body)
            )
        zf.writestr("OEBPS/images/cover.jpg", cover_jpeg())
        nav = f'<nav epub:type="toc"><h1>Contents</h1>{_nav_list(_rel(TOC))}</nav>'
        zf.writestr("OEBPS/text/nav.xhtml", page.format(title="Contents", body_type="", body=nav))
        if strict:
            zf.writestr("OEBPS/book.css", "body { font-family: serif; }\nh1 { color: #225; }\n")
        else:
            zf.writestr(
                "OEBPS/toc.ncx",
                '<?xml version="1.0"?><ncx version="2005-1" '
                'xmlns="http://www.daisy.org/z3986/2005/ncx/">'
                f"<navMap>{_ncx_points(_rel(TOC, 'text/'))}</navMap></ncx>",
            )
        zf.writestr("OEBPS/content.opf", _opf(version, language, strict))
    return path


def _rel(entries, prefix=""):
    return [(prefix + h, t, _rel(k, prefix)) for h, t, k in entries]


def _opf(version: int, language: str, strict: bool = False) -> str:
    items = []
    for name in MANIFEST_ORDER:
        props = ' properties="nav"' if name == "nav.xhtml" and version == 3 else ""
        items.append(
            f'<item id="{name[:-6]}" href="text/{name}" media-type="application/xhtml+xml"{props}/>'
        )
    cover_props = ' properties="cover-image"' if version == 3 else ""
    items.append(f'<item id="img" href="images/cover.jpg" media-type="image/jpeg"{cover_props}/>')
    if strict:
        items.append('<item id="css" href="book.css" media-type="text/css"/>')
    else:
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    linear = {"cover.xhtml": ' linear="no"'}
    spine = "".join(f'<itemref idref="{n[:-6]}"{linear.get(n, "")}/>' for n in SPINE)
    meta = '<meta name="cover" content="img"/>' if version == 2 else ""
    guide = ""
    if version == 2:
        guide = (
            '<guide><reference type="title-page" href="text/title.xhtml"/>'
            '<reference type="copyright-page" href="text/copyright.xhtml"/>'
            '<reference type="toc" href="text/nav.xhtml"/></guide>'
        )
    ident, toc = "", ' toc="ncx"'
    if strict:
        ident, toc = ' unique-identifier="id"', ""
        meta += (
            '<dc:identifier id="id">urn:uuid:8a0f2b3c-1d2e-4f50-9a6b-7c8d9e0f1a2b</dc:identifier>'
            '<meta property="dcterms:modified">2026-01-01T00:00:00Z</meta>'
        )
    return (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
        f'version="{version}.0"{ident}>'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Test Book</dc:title>'
        f"<dc:creator>Ada Voice</dc:creator><dc:language>{language}</dc:language>{meta}</metadata>"
        f"<manifest>{''.join(items)}</manifest><spine{toc}>{spine}</spine>{guide}</package>"
    )
