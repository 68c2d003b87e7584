"""Hostile text inputs (#37): zip bombs, DRM-locked books, XML bombs in every XML member, broken
XHTML, sparse giant files, oversize stdin, row and lexicon floods. Each is built here and run
through the real CLI in a child process: a nonzero exit with one line naming the limit, bounded
peak RSS and time, nothing written. No model is loaded (fast tier)."""

from __future__ import annotations

import json

import pytest
from hostile import (
    CHAPTER,
    ENTITY_BOMB,
    OPF,
    base_epub,
    one_line_error,
    rebuild_epub,
    run_measured,
    zip_bomb_chapter,
)

MAX_EXTRA_MB = 250
"""Peak RSS a refusal may add over the same command on a good input (measured: ~0)."""
MAX_S = 30


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    book = base_epub(tmp)
    ran = run_measured(["book", book, "--list-chapters", "--json"])
    assert ran.rc == 0, ran.err
    assert len(json.loads(ran.out)) == 4
    return book, ran.peak_mb


def refused(ran, baseline_mb: float, *words: str) -> str:
    assert ran.rc == 2, (ran.rc, ran.err)
    line = one_line_error(ran.err)
    for word in words:
        assert word in line, line
    assert ran.peak_mb < baseline_mb + MAX_EXTRA_MB, (ran.peak_mb, baseline_mb)
    assert ran.seconds < MAX_S, ran.seconds
    return line


def test_zip_bomb_is_refused_by_its_size_before_inflating(good, tmp_path):
    book, base = good
    bomb = rebuild_epub(book, tmp_path / "bomb.epub", {CHAPTER: zip_bomb_chapter(1500)})
    assert bomb.stat().st_size < 10 * 2**20  # 1.5 GB of text in a few MB
    out = tmp_path / "out.m4b"
    ran = run_measured(["book", bomb, "-o", out])
    refused(ran, base, "ch1.xhtml", "1499.5 MB", "50 MB limit", "CHATTERBOX_MAX_EPUB_MEMBER_MB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.epub"]


def test_zip_bomb_is_refused_by_its_ratio_while_inflating(good, tmp_path):
    book, base = good
    bomb = rebuild_epub(book, tmp_path / "bomb.epub", {CHAPTER: zip_bomb_chapter(200)})
    env = {"CHATTERBOX_MAX_EPUB_MEMBER_MB": "100000"}  # only the ratio stands in the way
    ran = run_measured(["book", bomb, "--list-chapters"], env)
    refused(ran, base, "ch1.xhtml", "inflates more than 100:1", "CHATTERBOX_MAX_INFLATE_RATIO")


def test_a_book_of_many_large_members_is_bounded_in_total(good, tmp_path):
    book, base = good
    env = {"CHATTERBOX_MAX_EPUB_MB": "3", "CHATTERBOX_MAX_INFLATE_RATIO": "100000"}
    bomb = rebuild_epub(book, tmp_path / "big.epub", {CHAPTER: zip_bomb_chapter(4)})
    ran = run_measured(["book", bomb, "--list-chapters"], env)
    refused(ran, base, "the EPUB, inflated,", "CHATTERBOX_MAX_EPUB_MB")


ENCRYPTION = """<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
 xmlns:enc="http://www.w3.org/2001/04/xmlenc#">{}</encryption>"""
ENTRY = """<enc:EncryptedData><enc:EncryptionMethod Algorithm="{}"/>
<enc:CipherData><enc:CipherReference URI="{}"/></enc:CipherData></enc:EncryptedData>"""
AES = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"


def test_drm_locked_book_is_named_not_read(good, tmp_path):
    book, base = good
    entries = "".join(ENTRY.format(AES, f"OEBPS/text/{n}") for n in ("ch1.xhtml", "ch23.xhtml"))
    entries += ENTRY.format(AES, "OEBPS/images/cover.jpg")
    locked = rebuild_epub(
        book,
        tmp_path / "locked.epub",
        {CHAPTER: bytes(range(256)) * 8},  # the chapter's bytes as ciphertext
        {"META-INF/encryption.xml": ENCRYPTION.format(entries)},
    )
    ran = run_measured(["book", locked, "--list-chapters"])
    refused(ran, base, "DRM-protected", "2 of its files", "OEBPS/text/ch1.xhtml", "DRM-free")


def test_font_obfuscation_alone_is_fine(good, tmp_path):
    book, _ = good
    font = ENTRY.format("http://www.idpf.org/2008/embedding", "OEBPS/fonts/serif.otf")
    image = ENTRY.format(AES, "OEBPS/images/cover.jpg")  # a locked image is left out
    fine = rebuild_epub(
        book,
        tmp_path / "fonts.epub",
        add={"META-INF/encryption.xml": ENCRYPTION.format(font + image)},
    )
    ran = run_measured(["book", fine, "--list-chapters", "--json"])
    assert ran.rc == 0, ran.err
    assert len(json.loads(ran.out)) == 4


def _bomb(xml: str) -> bytes:
    """`xml` (a document) with the billion-laughs DTD before its root, `&lol8;` inside it."""
    body = xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml
    head, rest = body.split(">", 1)
    return (ENTITY_BOMB + head + ">&lol8;" + rest).encode()


@pytest.mark.parametrize(
    "member,version",
    [
        ("META-INF/container.xml", 3),
        (OPF, 3),
        ("OEBPS/text/nav.xhtml", 3),
        ("OEBPS/toc.ncx", 2),
        (CHAPTER, 3),
    ],
)
def test_xml_entity_bombs_are_never_expanded(good, tmp_path, member, version):
    import zipfile

    from chatterbox_cli.testing.epubs import build_epub

    book = build_epub(tmp_path / "base.epub", version=version)
    with zipfile.ZipFile(book) as zf:
        original = zf.read(member).decode()
    bomb = rebuild_epub(book, tmp_path / "xml.epub", {member: _bomb(original)})
    ran = run_measured(["book", bomb, "--list-chapters", "--json"])
    assert ran.peak_mb < good[1] + MAX_EXTRA_MB and ran.seconds < MAX_S
    if member == CHAPTER:  # tolerant HTML: read, with the entity left as written
        assert ran.rc == 0, ran.err
        assert "lol" * 10 not in ran.out
    else:
        refused(ran, good[1], "entities", "never expanded")


def test_broken_xhtml_is_read_in_linear_time(good, tmp_path):
    """html.parser took 55 s on 240 kB of unclosed `<a ` tags; libxml2 takes milliseconds."""
    book, base = good
    junk = b"<html><body><p>Words before.</p>" + b"<a " * 2_000_000 + b"<![<![" * 1000
    bad = rebuild_epub(book, tmp_path / "junk.epub", {CHAPTER: junk})
    ran = run_measured(["book", bad, "--list-chapters", "--json"])
    assert ran.rc == 0, ran.err
    assert ran.seconds < MAX_S and ran.peak_mb < base + MAX_EXTRA_MB


@pytest.mark.parametrize(
    "case,expect",
    [
        ("pdf", "not an EPUB (not a zip archive)"),
        ("no-opf", "does not contain it"),
        ("traversal", None),
        ("deep-toc", None),
    ],
)
def test_already_fine_cases_stay_fine(good, tmp_path, case, expect):
    book, base = good
    if case == "pdf":
        bad = tmp_path / "paper.epub"
        bad.write_bytes(b"%PDF-1.7\n" + b"0" * 4096)
    elif case == "no-opf":
        container = (
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/missing.opf"/></rootfiles></container>'
        )
        bad = rebuild_epub(book, tmp_path / "b.epub", {"META-INF/container.xml": container})
    elif case == "traversal":
        opf = _read(book, OPF).replace('href="text/ch4.xhtml"', 'href="../../../etc/passwd"')
        bad = rebuild_epub(book, tmp_path / "b.epub", {OPF: opf})
    else:
        nest = "".join(f'<navPoint id="d{i}"><navLabel><text>L{i}</text></navLabel>'
                       '<content src="text/ch1.xhtml"/>' for i in range(3000))  # fmt: skip
        ncx = _read(book, "OEBPS/toc.ncx").replace("<navMap>", "<navMap>" + nest)
        ncx = ncx.replace("</navMap>", "</navPoint>" * 3000 + "</navMap>")
        bad = rebuild_epub(book, tmp_path / "b.epub", {"OEBPS/toc.ncx": ncx})
    ran = run_measured(["book", bad, "--list-chapters", "--json"])
    if expect:
        refused(ran, base, expect)
    else:
        assert ran.rc in (0, 2) and "Traceback" not in ran.err, ran.err
        assert "root:" not in ran.out  # /etc/passwd is never read
        assert ran.seconds < MAX_S and ran.peak_mb < base + MAX_EXTRA_MB


def _read(book, name: str) -> str:
    import zipfile

    with zipfile.ZipFile(book) as zf:
        return zf.read(name).decode()


def sparse(path, size: int = 2**30):
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["say", "-f", "{f}.txt", "-o", "{d}/out.wav"],
        ["batch", "{f}.txt", "-d", "{d}/out"],
        ["batch", "{f}.jsonl", "-d", "{d}/out"],
        ["book", "{f}.txt", "-o", "{d}/out.m4b"],
        ["book", "{f}.md", "--list-chapters"],
        ["say", "Hello.", "--lexicon", "{f}.tsv", "-o", "{d}/out.wav"],
    ],
)
def test_a_sparse_gigabyte_is_refused_by_its_size(tmp_path, args):
    for suffix in ("txt", "jsonl", "md", "tsv"):
        sparse(tmp_path / f"huge.{suffix}")
    args = [a.format(f=tmp_path / "huge", d=tmp_path) for a in args]
    ran = run_measured(args)
    assert ran.rc == 2, ran.err
    line = one_line_error(ran.err)
    assert "1024.0 MB, over the 20 MB limit" in line and "CHATTERBOX_MAX_TEXT_MB" in line, line
    assert ran.seconds < MAX_S and ran.peak_mb < 400
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_stdin_is_read_no_further_than_its_limit(tmp_path):
    ran = run_measured(
        ["say", "-o", tmp_path / "out.wav"], {"CHATTERBOX_MAX_TEXT_MB": "1"}, b"Hello. " * 300_000
    )
    assert ran.rc == 2
    assert "standard input is over the 1 MB limit" in one_line_error(ran.err)
    assert not (tmp_path / "out.wav").exists()


def test_row_and_lexicon_floods_are_refused(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("Hi.\n" * 11)
    ran = run_measured(["batch", rows, "-d", tmp_path / "out"], {"CHATTERBOX_MAX_ROWS": "10"})
    assert ran.rc == 2 and "over 10 rows" in one_line_error(ran.err)
    lexicon = tmp_path / "words.tsv"
    lexicon.write_text("".join(f"w{i}\tword {i}\n" for i in range(30)))
    ran = run_measured(
        ["say", "Hi.", "--lexicon", lexicon, "-o", tmp_path / "o.wav"],
        {"CHATTERBOX_MAX_LEXICON": "20"},
    )
    assert ran.rc == 2 and "over 20 entries" in one_line_error(ran.err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.wav").exists()


def test_a_bad_limit_setting_is_one_line(tmp_path):
    (tmp_path / "t.txt").write_text("Hi.")
    ran = run_measured(
        ["say", "-f", tmp_path / "t.txt", "-o", tmp_path / "x.wav"],
        {"CHATTERBOX_MAX_TEXT_MB": "lots"},
    )
    assert ran.rc == 2
    assert "CHATTERBOX_MAX_TEXT_MB='lots': give a positive number" in one_line_error(ran.err)


PATHOLOGICAL = {
    "unclosed comments": "<!--" * 100_000,
    "unpaired emphasis": "*a " * 130_000,
    "unclosed pauses": "[pause:" * 60_000,
    "unclosed links": "[a](" * 100_000,
    "unclosed tags": "<a" * 200_000,
    "abbreviations": "Dr. Mr. e.g. " * 30_000,
    "one long word": "x" * 400_000,
    "brackets": "[" * 400_000,
    "numbers and dashes": "1-" * 200_000,
    "money and times": "€1 2:30 " * 50_000,
}
"""400 kB each: every one took seconds to minutes at this size before (quadratic regexes, a
sentence glued from thousands of abbreviations); linear now, and no group is unbounded."""


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_text_is_read_and_grouped_in_linear_time(tmp_path, case):
    import time

    from chatterbox_cli.text.book import read_book
    from chatterbox_cli.text.markup import split_marked
    from chatterbox_cli.text.segment import MAX_GROUP_CHARS

    path = tmp_path / "book.md"
    path.write_text(f"# Title\n\nWords first.\n\n{PATHOLOGICAL[case]}\n\nWords last.\n")
    t0 = time.monotonic()
    try:
        text = read_book(path).chapters[0].text
    except Exception as exc:  # one refusal is fine; a crash or a hang is not
        assert type(exc).__name__ == "BadInput", exc
        text = PATHOLOGICAL[case]
    groups = split_marked(text)
    assert time.monotonic() - t0 < MAX_S
    assert groups and max(len(g.text) for g in groups) <= 2 * MAX_GROUP_CHARS


def test_every_limit_is_documented_with_its_default():
    from pathlib import Path

    from chatterbox_cli.runtime import limits

    reference = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    for limit in limits.ALL:
        row = next((ln for ln in reference.splitlines() if f"`{limit.env}`" in ln), "")
        assert f"| {limit.default:g} " in row, (limit.env, row)
