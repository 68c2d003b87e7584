"""Hostile inputs built in the test (zip, XML and audio bombs, DRM-locked books, lying headers)
and a subprocess runner that measures what a command cost: its exit code, stderr, wall time and
peak RSS (the child's own, from wait4)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chatterbox_cli.testing.epubs import build_epub

CHAPTER = "OEBPS/text/ch1.xhtml"
OPF = "OEBPS/content.opf"
ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "&lol;" * 10}">' for i in range(9))
    + "]>"
)
"""A billion-laughs prologue: `&lol8;` expands to 10^9 'lol's."""


@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float
    peak_mb: float


def run_measured(
    args: list[str], env: dict | None = None, stdin: bytes | None = None, timeout: float = 600
) -> Ran:
    """`chatterbox ARGS` in a child process, with its own peak RSS (wait4) and wall time."""
    import tempfile

    hwm = tempfile.NamedTemporaryFile(delete=False)
    hwm.close()
    cmd = [sys.executable, "-c", RUN_AND_REPORT, hwm.name, *map(str, args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with tempfile.TemporaryFile() as inp:
            inp.write(stdin or b"")
            inp.seek(0)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                stdin=inp if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "COLUMNS": "200", **(env or {})},
            )
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        peak = Path(hwm.name).read_text().strip()
        os.unlink(hwm.name)
        return Ran(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            int(peak) / 1024 if peak else usage.ru_maxrss / 1024,
        )


RUN_AND_REPORT = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def report():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as fh:
        fh.write(kb)
atexit.register(report)
sys.argv[0] = "chatterbox"
runpy.run_module("chatterbox_cli", run_name="__main__")
"""
"""The child runs the CLI and writes its own VmHWM (peak RSS since its exec) at exit: wait4's
ru_maxrss would count what a forked child shared with a large parent before its exec."""


def one_line_error(err: str) -> str:
    """The error line; fails the test if stderr holds a traceback or more than one error."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def rebuild_epub(base: Path, out: Path, replace: dict | None = None, add: dict | None = None):
    """The test book with members replaced or added (bytes, or a callable writing to a file
    object, for members too large to hold in memory)."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = replace.get(info.filename, None)
            _put(dst, info.filename, src.read(info) if data is None else data, info.compress_type)
        for name, data in add.items():
            _put(dst, name, data, zipfile.ZIP_DEFLATED)
    return out


def _put(zf: zipfile.ZipFile, name: str, data, compress_type: int) -> None:
    if callable(data):
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            data(fh)
    else:
        zf.writestr(name, data, compress_type=compress_type)


def zip_bomb_chapter(megabytes: int):
    """A chapter of `megabytes` MB of text, written block by block (it deflates ~1000:1)."""
    block = ("<p>" + "All work and no play makes Jack a dull boy. " * 22 + "</p>\n").encode()
    block = block * (1024 * 1024 // len(block))

    def write(fh):
        fh.write(b'<?xml version="1.0"?><html><body>')
        for _ in range(megabytes):
            fh.write(block)
        fh.write(b"</body></html>")

    return write


def base_epub(tmp: Path) -> Path:
    return build_epub(tmp / "good.epub")
