"""EPUB 2 and 3 as a listener wants them: chapters in spine (reading) order with their TOC
titles, a file holding several chapters split at its TOC anchors, nested TOCs flattened, front
and back matter (cover, title page, copyright, the TOC itself, `linear="no"`) skipped, footnote
markers, notes and scripts dropped.

Read with zipfile, defusedxml for the package files and `text/xhtml.py` for the content: no
AGPL dependency (ebooklib). A book is untrusted input: members are inflated no further than
`runtime/limits` allows (size and ratio, so a zip bomb is refused, not unpacked), XML never
expands entities, and a DRM-locked book is named as such instead of read as noise.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeTree

from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.chapters import Book, Chapter, short_language
from chatterbox_cli.text.xhtml import Doc, local_name, parse_doc

NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
"""Algorithms that only scramble embedded fonts (the text stays readable)."""
MEDIA_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2", ".jpg", ".jpeg", ".png", ".gif", ".webp",
                  ".mp3", ".mp4", ".m4a", ".aac", ".ogg", ".opus", ".webm")  # fmt: skip
"""Files that hold no text: encrypted, they are skipped (a locked cover is left out)."""
SKIP_TYPES = {
    "cover", "titlepage", "halftitlepage", "title-page", "copyright-page", "copyright", "toc",
    "landmarks", "loi", "lot", "index", "colophon", "imprint", "seriespage", "other-credits",
    "contributors", "acknowledgments", "acknowledgements", "dedication", "errata", "page-list",
}  # fmt: skip
"""epub:type (and EPUB 2 guide) values of matter nobody wants read aloud."""
KEEP_TYPES = {"preface", "foreword", "introduction", "prologue", "epilogue", "afterword"}
"""Front/back matter that is part of the reading (kept inside a frontmatter partition)."""


@dataclass
class _Package:
    zf: zipfile.ZipFile
    opf: str
    root: ElementTree.Element
    items: dict[str, dict]
    """manifest id -> {href (zip path), type, props}"""
    locked: set[str] = field(default_factory=set)
    """Encrypted files that hold no text (images, media): skipped."""
    inflated: int = 0
    """Bytes read so far: the whole book's reading is bounded too (`EPUB_MB`)."""

    def read(self, name: str) -> bytes:
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise BadInput(f"the EPUB names {name} but does not contain it") from None
        data = read_member(self.zf, info)
        self.inflated += len(data)
        if self.inflated > limits.EPUB_MB.value * limits.MB:
            raise limits.too_big("the EPUB, inflated,", self.inflated, limits.EPUB_MB, "")
        return data

    def resolve(self, href: str, base: str) -> tuple[str, str]:
        """(zip path, fragment) of an href relative to the file `base`."""
        path, _, frag = href.partition("#")
        if not path:
            return base, frag
        return posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(path))), frag


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One member, inflated block by block and refused as soon as it passes the size or ratio
    limit (whatever its header claims), or when its data is damaged."""
    cap = int(limits.EPUB_MEMBER_MB.value * limits.MB)
    ratio = limits.INFLATE_RATIO.value
    what = f"the EPUB's {info.filename}, inflated,"
    if info.file_size > cap:
        raise limits.too_big(what, info.file_size, limits.EPUB_MEMBER_MB, "")
    parts, size = [], 0
    try:
        with zf.open(info) as fh:
            while block := fh.read(limits.READ_BLOCK):
                parts.append(block)
                size += len(block)
                if size > cap:
                    raise limits.too_big(what, size, limits.EPUB_MEMBER_MB, "")
                if size > limits.RATIO_FLOOR and size > ratio * max(info.compress_size, 1):
                    raise BadInput(
                        f"the EPUB's {info.filename} inflates more than {ratio:g}:1 (a zip bomb?); "
                        f"{limits.INFLATE_RATIO.hint()}"
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise BadInput(f"the EPUB's {info.filename} is damaged ({exc})") from None
    return b"".join(parts)


def _xml(data: bytes, what: str) -> ElementTree.Element:
    """Parsed without entity expansion: a DTD's entities (billion laughs, external files) are
    refused, not expanded."""
    try:
        return SafeTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise BadInput(f"the EPUB's {what} is not valid XML ({exc})") from None
    except DefusedXmlException:
        raise BadInput(
            f"the EPUB's {what} declares XML entities, which are never expanded (an entity "
            "bomb?); the book must be repaired"
        ) from None


def _open(path: Path) -> _Package:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BadInput(f"{path} is not an EPUB (not a zip archive)") from None
    members = limits.EPUB_FILES.value
    if len(zf.infolist()) > members:
        raise BadInput(
            f"{path} holds {len(zf.infolist())} files, over the {members:g} limit; "
            f"{limits.EPUB_FILES.hint()}"
        )
    names = set(zf.namelist())
    if "META-INF/container.xml" not in names:
        raise BadInput(f"{path} is not an EPUB (no META-INF/container.xml)")
    container = _xml(read_member(zf, zf.getinfo("META-INF/container.xml")), "container.xml")
    locked = _locked(path, zf) if "META-INF/encryption.xml" in names else set()
    rootfile = container.find(".//c:rootfile", NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise BadInput(f"{path}: its container.xml names no package (.opf) file")
    opf = rootfile.get("full-path")
    pkg = _Package(zf, opf, ElementTree.Element("x"), {}, locked)
    pkg.root = _xml(pkg.read(opf), opf)
    for item in pkg.root.iterfind("opf:manifest/opf:item", NS):
        href, _ = pkg.resolve(item.get("href", ""), opf)
        pkg.items[item.get("id", "")] = {
            "href": href,
            "type": item.get("media-type", ""),
            "props": set((item.get("properties") or "").split()),
        }
    return pkg


def _locked(path: Path, zf: zipfile.ZipFile) -> set[str]:
    """The encrypted files that hold no text. A book whose text is encrypted (DRM) can't be
    read: say which files, and that the book must be DRM-free. Fonts scrambled by font
    obfuscation alone are fine."""
    root = _xml(read_member(zf, zf.getinfo("META-INF/encryption.xml")), "encryption.xml")
    locked = []
    for data in root.iter(f"{{{NS['enc']}}}EncryptedData"):
        method = data.find("enc:EncryptionMethod", NS)
        ref = data.find("enc:CipherData/enc:CipherReference", NS)
        algorithm = method.get("Algorithm", "") if method is not None else ""
        if ref is None or algorithm in FONT_OBFUSCATION:
            continue
        locked.append(posixpath.normpath(unquote(ref.get("URI", "")).lstrip("/")))
    text = [name for name in locked if not name.lower().endswith(MEDIA_SUFFIXES)]
    if text:
        locked = text
        shown = ", ".join(locked[:3]) + (f" and {len(locked) - 3} more" if len(locked) > 3 else "")
        raise BadInput(
            f"{path} is DRM-protected: {len(locked)} of its files are encrypted ({shown}); "
            "only DRM-free EPUBs can be read, so use a DRM-free copy of the book"
        )
    return set(locked)


def _toc(pkg: _Package) -> list[tuple[str, str, str]]:
    """The TOC flattened in its order: (zip path, fragment, title)."""
    nav = next((i for i in pkg.items.values() if "nav" in i["props"]), None)
    if nav is not None:
        root = _nav_root(pkg.read(nav["href"]))
        if root is not None:
            return [
                (
                    *pkg.resolve(a.get("href", ""), nav["href"]),
                    " ".join("".join(a.itertext()).split()),
                )
                for a in root.iter()
                if local_name(a.tag) == "a" and a.get("href")
            ]
    spine = pkg.root.find("opf:spine", NS)
    ncx_id = spine.get("toc") if spine is not None else None
    ncx = pkg.items.get(ncx_id or "") or next(
        (i for i in pkg.items.values() if i["type"] == "application/x-dtbncx+xml"), None
    )
    if ncx is None:
        return []
    root = _xml(pkg.read(ncx["href"]), ncx["href"])
    entries = []
    for point in root.iter(f"{{{NS['ncx']}}}navPoint"):
        label = point.find("ncx:navLabel/ncx:text", NS)
        content = point.find("ncx:content", NS)
        if content is not None and content.get("src"):
            title = " ".join((label.text or "").split()) if label is not None else ""
            entries.append((*pkg.resolve(content.get("src"), ncx["href"]), title))
    return entries


def _nav_root(data: bytes):
    """The `<nav epub:type="toc">` element of an EPUB 3 navigation document."""
    try:
        root = SafeTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    except DefusedXmlException:
        raise BadInput(
            "the EPUB's navigation document declares XML entities, which are never "
            "expanded (an entity bomb?); the book must be repaired"
        ) from None
    for el in root.iter():
        if local_name(el.tag) == "nav":
            types = {v for k, v in el.attrib.items() if local_name(k) == "type"}
            if any("toc" in t.split() for t in types):
                return el
    return None


def _landmarks(pkg: _Package) -> dict[str, set[str]]:
    """zip path -> the types EPUB 2's guide gives whole files (cover, title-page, toc...)."""
    marks: dict[str, set[str]] = {}
    for ref in pkg.root.iterfind("opf:guide/opf:reference", NS):
        path, frag = pkg.resolve(ref.get("href", ""), pkg.opf)
        if not frag:
            marks.setdefault(path, set()).add(ref.get("type", "").lower())
    return marks


def _skipped(types: set[str]) -> bool:
    if types & SKIP_TYPES:
        return True
    return bool(types & {"frontmatter", "backmatter"}) and not types & KEEP_TYPES


def _meta(pkg: _Package, name: str) -> str | None:
    el = pkg.root.find(f"opf:metadata/dc:{name}", NS)
    return " ".join(el.text.split()) if el is not None and el.text else None


def _cover(pkg: _Package) -> tuple[bytes | None, str | None]:
    item = next((i for i in pkg.items.values() if "cover-image" in i["props"]), None)
    if item is None:
        for meta in pkg.root.iterfind("opf:metadata/opf:meta", NS):
            if meta.get("name") == "cover":
                item = pkg.items.get(meta.get("content", ""))
    if item is None or not item["type"].startswith("image/") or item["href"] in pkg.locked:
        return None, None
    data = pkg.read(item["href"])
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
            warnings.simplefilter("ignore")
            image.verify()  # its structure, not its pixels (which are never decoded)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None, None  # a damaged cover is left out; the book is still read
    return data, item["type"]


def read_epub(path: Path, include_front_matter: bool = False) -> Book:
    pkg = _open(path)
    title = _meta(pkg, "title") or path.stem
    cover, cover_type = _cover(pkg)
    book = Book(
        title, _meta(pkg, "creator"), short_language(_meta(pkg, "language")), cover, cover_type
    )
    toc = _toc(pkg)
    guide = _landmarks(pkg)
    cap, size = int(limits.TEXT_MB.value * limits.MB), 0
    for ref in pkg.root.iterfind("opf:spine/opf:itemref", NS):
        item = pkg.items.get(ref.get("idref", ""))
        if item is None or "html" not in item["type"]:
            continue
        doc = parse_doc(pkg.read(item["href"]).decode("utf-8", "replace"))
        size += len(doc.text)
        if size > cap:
            raise limits.too_big(f"{path}'s text", size, limits.TEXT_MB)
        front = (
            ref.get("linear") == "no"
            or "nav" in item["props"]
            or _skipped(doc.types | guide.get(item["href"], set()))
        )
        if front and not include_front_matter:
            continue
        first, last = len(book.chapters), (book.chapters or [None])[-1]
        before = len(last.text) if last else 0
        _add_chapters(book, doc, [(f, t) for p, f, t in toc if p == item["href"]])
        grown = [last] if last is not None and len(last.text) != before else []
        for chapter in grown + book.chapters[first:]:
            chapter.documents.append(item["href"])
        book.documents.append(item["href"])
    if pkg.root.get("version", "").startswith("3"):
        book.package = pkg.opf
    else:
        book.documents = []
    return book


def members(path: Path):
    """Every file in the EPUB, in its order, read within the same limits as `read_epub`."""
    pkg = _open(path)
    for info in pkg.zf.infolist():
        if not info.is_dir():
            yield info.filename, pkg.read(info.filename)


def _add_chapters(book: Book, doc: Doc, entries: list[tuple[str, str]]) -> None:
    """Cut `doc` at its TOC entries; text before the first belongs to the chapter before (a
    chapter split over files), or opens a chapter titled by its heading. Entries at one place
    ("Part One" and its first chapter) make one chapter with both titles."""
    cuts: list[tuple[int, str]] = []
    for frag, title in entries:
        if frag and frag not in doc.ids:
            continue
        offset = doc.ids[frag] if frag else 0
        same = next((k for k, (o, _) in enumerate(cuts) if o == offset), None)
        if same is None:
            cuts.append((offset, title))
        elif title:
            cuts[same] = (offset, " — ".join(t for t in (cuts[same][1], title) if t))
    cuts.sort(key=lambda c: c[0])
    lead = doc.text[: cuts[0][0] if cuts else len(doc.text)].strip()
    if lead and book.chapters:
        book.chapters[-1].text += "\n\n" + lead
    elif lead:
        book.chapters.append(Chapter(doc.heading or f"Chapter {len(book.chapters) + 1}", lead))
    for k, (offset, title) in enumerate(cuts):
        end = cuts[k + 1][0] if k + 1 < len(cuts) else len(doc.text)
        title = title or doc.heading or f"Chapter {len(book.chapters) + 1}"
        book.chapters.append(Chapter(title, doc.text[offset:end].strip()))
