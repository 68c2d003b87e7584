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
                env={
                    k: v
                    for k, v in {**os.environ, "COLUMNS": "200", **(env or {})}.items()
                    if v is not None  # None: unset it
                },
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


def tone_then_silence(
    path: Path, seconds: float, sr: int = 16000, tone_s: float = 10.0, **sf_args
) -> Path:
    """`tone_s` of a tone, then silence to `seconds`: hours that compress to almost nothing
    (written a minute at a time)."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(tone_s * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    minute = np.zeros(60 * sr, dtype=np.float32)
    left = int((seconds - tone_s) * sr)
    with sf.SoundFile(path, "w", sr, 1, **sf_args) as f:
        f.write(tone.astype(np.float32))
        while left > 0:
            f.write(minute[: min(left, len(minute))])
            left -= len(minute)
    return path


def flac_of_unknown_length(path: Path, seconds: float) -> Path:
    """A FLAC whose STREAMINFO says its length is unknown (total samples 0): nothing but
    decoding it tells how long it is."""
    tone_then_silence(path, seconds, format="FLAC")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    info = 8  # "fLaC", then the STREAMINFO block's 4-byte header
    data[info + 13] &= 0xF0  # the 36-bit total: the low 4 bits of byte 13 and bytes 14-17
    data[info + 14 : info + 18] = b"\0\0\0\0"
    path.write_bytes(bytes(data))
    return path


def sparse_wav(path: Path, size: int = 2**31, sr: int = 24000) -> Path:
    """A WAV whose header claims the largest sizes a streamed WAV writes (0xFFFFFFFF), ten
    seconds of tone, then a sparse run of zeros to `size` bytes: 12 hours costing no disk."""
    import struct

    import numpy as np

    t = np.arange(10 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sr, 2 * sr, 2, 16)
    header = b"RIFF" + b"\xff\xff\xff\xff" + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    with open(path, "wb") as fh:
        fh.write(header + b"data" + b"\xff\xff\xff\xff" + tone)
        fh.truncate(size)
    return path
