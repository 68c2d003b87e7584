"""Audiobooks as M4B: AAC in MP4 with chapter marks, title/author/album tags, the cover attached
and our provenance in the comment. PyAV bundles FFmpeg (its AAC encoder and MP4 muxer), so no
system ffmpeg is needed. The file is written beside its target and renamed when complete.

Chapters are written one at a time (`chapter()` then `write()` pieces), so a book of any length
is encoded without holding more than a piece in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from chatterbox_cli.runtime.atomic import TEMP_PREFIX, plain_mode

BITRATE = 64_000
"""AAC bit rate, mono: Perth's mark read back at 1.0 from 32 to 128 kbps (tests/test_book.py
checks it at this rate on every run)."""
FRAME = 1024
"""Samples per AAC frame."""


@dataclass
class ChapterMark:
    title: str
    start: int
    end: int


class M4bWriter:
    def __init__(
        self,
        path: Path,
        sample_rate: int,
        title: str,
        author: str | None = None,
        cover: bytes | None = None,
        cover_type: str | None = None,
        comment: str | None = None,
        bitrate: int = BITRATE,
    ):
        import av

        self.path, self.sr = Path(path), sample_rate
        self.tmp = self.path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{self.path.name}.part")
        self.out = av.open(str(self.tmp), "w", format="mp4")
        tags = {"title": title, "album": title, "genre": "Audiobook", "media_type": "2"}
        if author:
            tags.update(artist=author, album_artist=author)
        if comment:
            tags["comment"] = comment
        self.out.metadata.update(tags)
        self.stream = self.out.add_stream("aac", rate=sample_rate, layout="mono")
        self.stream.bit_rate = bitrate
        self.cover = self._cover_stream(cover, cover_type) if cover else None
        self.cover_bytes = cover
        self.marks: list[ChapterMark] = []
        self.samples = 0
        self.pending = np.zeros(0, dtype=np.float32)

    def _cover_stream(self, cover: bytes, cover_type: str | None):
        import io

        import av
        from PIL import Image

        image = Image.open(io.BytesIO(cover))
        codec = "png" if (cover_type or "").endswith("png") else "mjpeg"
        stream = self.out.add_stream(codec)
        stream.width, stream.height = image.size
        stream.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
        stream.disposition = av.stream.Disposition.attached_pic
        return stream

    def chapter(self, title: str) -> None:
        """Start a chapter at the current end of the audio."""
        self._close_mark()
        self.marks.append(ChapterMark(title, self.samples + len(self.pending), -1))

    def _close_mark(self) -> None:
        if self.marks:
            self.marks[-1].end = self.samples + len(self.pending)

    def write(self, audio: np.ndarray) -> None:
        import av

        data = np.concatenate([self.pending, np.asarray(audio, dtype=np.float32)])
        whole = len(data) - len(data) % FRAME
        for i in range(0, whole, FRAME):
            frame = av.AudioFrame.from_ndarray(
                data[None, i : i + FRAME], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = self.sr, self.samples
            self.samples += FRAME
            for packet in self.stream.encode(frame):
                self.out.mux(packet)
        self.pending = data[whole:]

    def close(self) -> Path:
        """Flush, write the chapters and the cover, and rename into place."""
        import av

        try:
            self._close_mark()
            if len(self.pending):
                self.write(np.zeros(FRAME - len(self.pending), dtype=np.float32))
            for packet in self.stream.encode(None):
                self.out.mux(packet)
            if self.cover is not None:
                packet = av.Packet(self.cover_bytes)
                packet.stream, packet.pts, packet.dts = self.cover, 0, 0
                self.out.mux(packet)
            base = Fraction(1, self.sr)
            self.out.set_chapters(
                [
                    {"id": i + 1, "start": m.start, "end": m.end, "time_base": base,
                     "metadata": {"title": m.title}}
                    for i, m in enumerate(self.marks)
                ]
            )  # fmt: skip
            self.out.close()
        except BaseException:
            self.abort()
            raise
        os.chmod(self.tmp, plain_mode())
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.out.close()
        self.tmp.unlink(missing_ok=True)


def decode(path: Path, keep_s: float | None = None) -> tuple[Iterator[np.ndarray], int, dict]:
    """(mono float32 pieces, sample rate, container tags) of an MP4/M4B; decoding stops after
    `keep_s` seconds when given."""
    import av

    f = av.open(str(path))
    stream = f.streams.audio[0]
    sr, tags = stream.codec_context.sample_rate, dict(f.metadata)
    limit = None if keep_s is None else int(keep_s * sr)

    def pieces() -> Iterator[np.ndarray]:
        seen = 0
        try:
            for frame in f.decode(stream):
                ch = len(frame.layout.channels)
                x = frame.to_ndarray().astype(np.float32)
                planar = frame.format.is_planar
                x = x.reshape(ch, -1).mean(axis=0) if planar else x.reshape(-1, ch).mean(axis=1)
                yield x
                seen += len(x)
                if limit is not None and seen >= limit:
                    return
        finally:
            f.close()

    return pieces(), sr, tags


def provenance_of(tags: dict) -> dict | None:
    from chatterbox_cli.sinks.provenance import KEY

    try:
        data = json.loads(tags.get("comment", ""))
    except ValueError:
        return None
    return data.get(KEY) if isinstance(data, dict) else None
