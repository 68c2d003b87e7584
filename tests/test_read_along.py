"""Read-along books (`book --read-along`): EPUB 3 with Media Overlays from an EPUB 3 (its own
XHTML kept and marked), and generated for Markdown; checked by EPUBCheck (Debian's, run with
Java), and here: every SMIL `text` reference resolves to an element of its document, every clip
lies within its audio, durations add up to the book's `media:duration`, the spans say the
book's text in order; in headless chromium, playing a page by its SMIL lights its sentences up
in order. A second output from the same work folder synthesizes nothing."""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from lxml import etree

from chatterbox_cli.testing.epubs import build_epub

CAP = ["--max-new-tokens", "10", "--device", "cpu", "--seed", "11"]
EPUBCHECK = Path("/usr/share/java/epubcheck.jar")
SMIL = "{http://www.w3.org/ns/SMIL}"
OPF = "{http://www.idpf.org/2007/opf}"


def epubcheck(path: Path) -> None:
    if not EPUBCHECK.exists() or shutil.which("java") is None:
        pytest.skip("no EPUBCheck here (make test installs Debian's epubcheck where root)")
    done = subprocess.run(
        ["java", "-jar", str(EPUBCHECK), "--quiet", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def seconds(clock: str) -> float:
    if clock.endswith("s"):
        return float(clock[:-1])
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def overlays(path: Path, tmp: Path) -> dict:
    """Check the overlays of the EPUB at `path` against its documents and audio; returns
    {document: [(span text, begin, end, audio)]}."""
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "mimetype" and zf.read("mimetype") == b"application/epub+zip"
        container = etree.fromstring(zf.read("META-INF/container.xml"))
        opf_path = next(e.get("full-path") for e in container.iter() if e.get("full-path"))
        opf = etree.fromstring(zf.read(opf_path))
        base = posixpath.dirname(opf_path)
        items = {i.get("id"): i for i in opf.iter(f"{OPF}item")}
        metas = [m for m in opf.iter(f"{OPF}meta") if m.get("property") == "media:duration"]
        total = next(seconds(m.text) for m in metas if not m.get("refines"))
        each = {m.get("refines")[1:]: seconds(m.text) for m in metas if m.get("refines")}
        assert abs(sum(each.values()) - total) < 0.01
        lengths, found = {}, {}
        for item in items.values():
            if item.get("media-type") == "audio/mpeg":
                name = posixpath.join(base, item.get("href"))
                (tmp / "a.mp3").write_bytes(zf.read(name))
                lengths[name] = sf.info(str(tmp / "a.mp3")).duration
        for item in items.values():
            if not item.get("media-overlay"):
                continue
            doc_path = posixpath.join(base, item.get("href"))
            smil_item = items[item.get("media-overlay")]
            smil_path = posixpath.join(base, smil_item.get("href"))
            doc = etree.fromstring(zf.read(doc_path))
            ids = {e.get("id"): e for e in doc.iter() if e.get("id")}
            smil = etree.fromstring(zf.read(smil_path))
            rows, clips = [], 0.0
            for par in smil.iter(f"{SMIL}par"):
                src = par.find(f"{SMIL}text").get("src")
                target, _, frag = src.partition("#")
                assert posixpath.normpath(posixpath.join(posixpath.dirname(smil_path), target)) == (
                    doc_path
                )
                assert frag in ids, f"{src} resolves to nothing"
                audio = par.find(f"{SMIL}audio")
                clip = posixpath.normpath(
                    posixpath.join(posixpath.dirname(smil_path), audio.get("src"))
                )
                begin, end = seconds(audio.get("clipBegin")), seconds(audio.get("clipEnd"))
                assert 0 <= begin < end <= lengths[clip] + 0.06, (src, begin, end)
                clips += end - begin
                rows.append((" ".join("".join(ids[frag].itertext()).split()), begin, end, clip))
            assert abs(clips - each[item.get("media-overlay")]) < 0.01
            for (_, b1, _, a1), (_, b2, _, a2) in zip(rows, rows[1:], strict=False):
                assert a1 != a2 or b1 <= b2  # in reading order within a chapter's audio
            found[doc_path] = rows
    return found


def test_epub3_read_along_then_m4b_from_the_same_work(cli, checkpoint, tmp_path):
    epub = build_epub(tmp_path / "book.epub", 3, strict=True)
    epubcheck(epub)  # the source passes: every error would be ours
    out = tmp_path / "read.epub"
    result = cli("book", epub, "--read-along", out, "--model-dir", checkpoint, "--json", *CAP)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["read_along"] == str(out) and report["output"] is None
    assert not (tmp_path / "book.m4b").exists()
    epubcheck(out)
    found = overlays(out, tmp_path)
    assert sorted(found) == [
        "OEBPS/text/ch1.xhtml",
        "OEBPS/text/ch23.xhtml",
        "OEBPS/text/ch4.xhtml",
    ]
    said = [row[0] for name in sorted(found) for row in found[name]]
    assert said[:3] == ["The Beginning", "It was a bright cold day in April1.",
                        "The clocks were striking thirteen."]  # fmt: skip
    assert "Third Things" in said and said[-1] == "And that was all & more."
    chapters = {row[3] for row in found["OEBPS/text/ch23.xhtml"]}
    assert len(chapters) == 2  # one document, two chapters: two audio files
    with zipfile.ZipFile(out) as zf, zipfile.ZipFile(epub) as source:
        for name in ("OEBPS/book.css", "OEBPS/images/cover.jpg", "OEBPS/text/title.xhtml"):
            assert zf.read(name) == source.read(name)  # unspoken parts kept as they were
        marked = zf.read("OEBPS/text/ch1.xhtml").decode()
        assert "../book.css" in marked and 'epub:type="noteref"' in marked
        assert re.search(r'<aside epub:type="footnote" id="n1"><p>A note', marked)
        assert "media:active-class" in zf.read("OEBPS/content.opf").decode()

    redo = tmp_path / "read-again.epub"  # a read-along book read again: overlays replaced
    work = ["--work-dir", tmp_path / "book.m4b.work"]
    result = cli("book", out, "--read-along", redo, *work, "--model-dir", checkpoint, *CAP)
    assert result.exit_code == 0, result.output
    epubcheck(redo)
    assert sorted(overlays(redo, tmp_path)) == sorted(found)
    with zipfile.ZipFile(redo) as zf:
        assert zf.read("OEBPS/text/ch1.xhtml").count(b"readalong.css") == 1

    again = cli("book", epub, "--model-dir", checkpoint, "--json", *CAP)
    report = json.loads(again.stdout.strip().splitlines()[-1])
    assert report["synthesized_groups"] == 0 and report["reused_groups"] == report["groups"]
    assert (tmp_path / "book.m4b").exists()


PLAYER = """
const [pars, active] = arguments;
window.seen = [];
const audio = new Audio(pars[0].audio);
audio.muted = true;
audio.ontimeupdate = () => {
  const t = audio.currentTime;
  for (const p of pars) {
    const el = document.getElementById(p.id);
    const on = p.audio === pars[0].audio && p.begin <= t && t < p.end;
    el.classList.toggle(active, on);
    if (on && window.seen[window.seen.length - 1] !== p.id) window.seen.push(p.id);
  }
};
audio.play();
"""
"""A reading system's part, as small as it gets: play the chapter's audio and give the span
whose SMIL clip holds the playing time the package's `media:active-class`."""


def plays_along(browser, out: Path, tmp: Path) -> None:
    """Open the first read page in headless chromium, play it by its SMIL, and check that the
    spans light up in order, styled by the book's own stylesheet; keep a screenshot."""
    import os
    import time

    from selenium.webdriver.common.by import By

    book = tmp / "unzipped"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(book)
    opf = etree.parse(str(book / "OEBPS/content.opf"))
    active = next(
        m.text for m in opf.iter(f"{OPF}meta") if m.get("property") == "media:active-class"
    )
    smil_path = sorted((book / "OEBPS/readalong").glob("*.smil"))[0]
    pars = []
    for par in etree.parse(str(smil_path)).iter(f"{SMIL}par"):
        page, _, frag = par.find(f"{SMIL}text").get("src").partition("#")
        clip = par.find(f"{SMIL}audio")
        pars.append({"id": frag, "audio": (smil_path.parent / clip.get("src")).as_uri(),
                     "begin": seconds(clip.get("clipBegin")),
                     "end": seconds(clip.get("clipEnd"))})  # fmt: skip
    browser.set_window_size(760, 420)
    browser.get((smil_path.parent / page).resolve().as_uri())
    browser.execute_script(PLAYER, pars, active)
    order = [p["id"] for p in pars]
    deadline = time.monotonic() + 60
    while len(browser.execute_script("return window.seen")) < 2:
        assert time.monotonic() < deadline, "the spans never lit up as the audio played"
        time.sleep(0.05)
    seen = browser.execute_script("return window.seen")
    assert seen == sorted(seen, key=order.index) and set(seen) <= set(order)
    lit = browser.find_element(By.CSS_SELECTOR, f".{active}")
    assert lit.value_of_css_property("background-color") == "rgba(255, 224, 102, 1)"
    folder = Path(os.environ.get("CHATTERBOX_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / "read-along.png"))


def test_markdown_and_epub2_read_along_are_generated(cli, checkpoint, browser, tmp_path):
    md = tmp_path / "story.md"
    md.write_text(
        "# Story\n\n## One\n\nIt is 5 p.m. on the 3rd. Then *rain* came.\n\n"
        "## Two\n\nA pause [pause:0.5s] in here. The end.\n"
    )
    out = tmp_path / "story.epub"
    result = cli("book", md, "--read-along", out, "--model-dir", checkpoint, *CAP)
    assert result.exit_code == 0, result.output
    epubcheck(out)
    found = overlays(out, tmp_path)
    said = [row[0] for name in sorted(found) for row in found[name]]
    assert said == ["One", "It is 5 p.m. on the 3rd.", "Then rain came.", "Two",
                    "A pause in here.", "The end."]  # fmt: skip
    plays_along(browser, out, tmp_path)

    epub2 = build_epub(tmp_path / "old.epub", 2)
    out2 = tmp_path / "old-read.epub"
    result = cli("book", epub2, "--read-along", out2, "--model-dir", checkpoint, *CAP)
    assert result.exit_code == 0, result.output
    epubcheck(out2)
    found = overlays(out2, tmp_path)
    assert len(found) == 4  # one generated document per chapter


def test_read_along_refusals(cli, tmp_path):
    epub = build_epub(tmp_path / "book.epub", 3, strict=True)
    bad = cli("book", epub, "--read-along", tmp_path / "x.m4b")
    assert bad.exit_code == 2 and "--read-along" in bad.stderr and ".epub" in bad.stderr
    (tmp_path / "x.epub").write_bytes(b"old")
    taken = cli("book", epub, "--read-along", tmp_path / "x.epub")
    assert taken.exit_code == 2 and "--overwrite" in taken.stderr
