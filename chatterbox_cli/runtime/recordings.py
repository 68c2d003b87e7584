"""Recordings (voice clips, sources to convert, uploads) read as untrusted input: a header can
lie and a 1 MB file can hold hours of silence, so nothing here trusts a stated length. Audio is
decoded block by block and no further than it is used (`read`: the first seconds; `resampled`:
all of it, a block at a time), so memory never grows with a file's length.

libsndfile (soundfile) reads WAV, FLAC, OGG/Opus, MP3 and AIFF, as `librosa.load` does, and the
samples are librosa's own (same decoder, `to_mono`, soxr HQ resampling; a streamed resample is
equal to the one-shot one); anything else (M4A/AAC, ...) goes through PyAV's bundled FFmpeg.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.runtime.errors import BadInput

Source = str | Path | bytes
BLOCK_FRAMES = 1 << 16
UNKNOWN_FRAMES = 2**62
"""libsndfile's frame count for a stream of unknown length (it says SF_COUNT_MAX)."""


@dataclass(frozen=True)
class Probe:
    """What a recording's header says: its length may be unknown (None) or a lie."""

    duration_s: float | None
    sample_rate: int
    channels: int


class _AvReader:
    """PyAV as a SoundFile-like reader: `read(frames)` -> (frames, channels) float32."""

    def __init__(self, target: Any):
        import av

        self.container = av.open(target)
        stream = self.container.streams.audio[0]
        self.samplerate = stream.codec_context.sample_rate or stream.rate
        self.channels = stream.codec_context.channels or 1
        duration = self.container.duration  # microseconds, from the container
        self.frames = int(duration * self.samplerate / 1e6) if duration else 0
        self.resampler = av.AudioResampler(format="fltp")
        self.decoded = self.container.decode(stream)
        self.held: list[Any] = []
        self.held_n = 0

    def read(self, frames: int):
        import numpy as np

        while self.held_n < frames:
            frame = next(self.decoded, None)
            if frame is None:
                break
            for out in self.resampler.resample(frame):
                block = out.to_ndarray().T.astype(np.float32, copy=False)
                self.held.append(block)
                self.held_n += len(block)
        if not self.held:
            return np.zeros((0, self.channels), dtype=np.float32)
        data = np.concatenate(self.held)
        out, rest = data[:frames], data[frames:]
        self.held, self.held_n = ([rest] if len(rest) else []), len(rest)
        return out

    def close(self) -> None:
        self.container.close()


def _label(source: Source, label: str | None) -> str:
    return label or ("the recording" if isinstance(source, bytes) else str(source))


def _open(source: Source, label: str | None):
    """A reader with `samplerate`, `channels`, `frames` (0 when unknown) and `read(n)`."""
    import soundfile as sf

    what = _label(source, label)
    if isinstance(source, bytes):
        if not source:
            raise BadInput(f"{what} is empty; give a WAV/FLAC/MP3/OGG recording")
    elif not Path(source).is_file():
        raise BadInput(f"{what} does not exist")
    target = (lambda: io.BytesIO(source)) if isinstance(source, bytes) else (lambda: str(source))
    try:
        reader = sf.SoundFile(target())
        if 0 <= reader.frames < UNKNOWN_FRAMES:
            return reader
        reader.close()  # length unknown (a streamed FLAC): libsndfile fails at its end
    except Exception:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _AvReader(target())
    except Exception as exc:
        raise BadInput(
            f"cannot read {what} as audio ({type(exc).__name__}); give a WAV/FLAC/MP3/OGG file"
        ) from None


def _frames(reader, n: int, what: str):
    """Up to `n` frames as (frames, channels) float32; a decoder error is the file's fault."""
    try:
        if hasattr(reader, "mode"):  # soundfile
            return reader.read(frames=n, dtype="float32", always_2d=True)
        return reader.read(n)
    except MemoryError:
        raise
    except Exception as exc:
        raise BadInput(
            f"{what} is damaged ({type(exc).__name__}); give a whole recording"
        ) from None


def probe(source: Source, label: str | None = None) -> Probe:
    """The header's account of a recording (nothing decoded)."""
    reader = _open(source, label)
    try:
        frames = reader.frames if 0 < reader.frames < UNKNOWN_FRAMES else 0
        duration = frames / reader.samplerate if frames else None
        return Probe(duration, int(reader.samplerate), int(reader.channels))
    finally:
        reader.close()


def _mono(block):
    """(frames, channels) -> mono as `librosa.to_mono` makes it (the channels' mean)."""
    import librosa

    return librosa.to_mono(block.T) if block.shape[1] > 1 else block[:, 0]


def read(
    source: Source, seconds: float, sr: int | None = None, label: str | None = None
) -> tuple[Any, int, bool]:
    """(mono float32, its sample rate, whole): at most the first `seconds`, resampled to `sr`
    as `librosa.load` does. `whole` is False when the recording goes on past them; what
    follows is never decoded."""
    import librosa
    import numpy as np

    what = _label(source, label)
    reader = _open(source, label)
    try:
        native = int(reader.samplerate)
        cap = max(1, int(seconds * native))
        data = _frames(reader, cap + 1, what)
    finally:
        reader.close()
    whole = len(data) <= cap
    wav = _mono(data[:cap]).astype(np.float32, copy=False)
    if sr is not None and sr != native and len(wav):
        wav = librosa.resample(wav, orig_sr=native, target_sr=sr, res_type="soxr_hq")
    return wav, sr or native, whole


class TooLong(BadInput):
    """A recording past the length its use allows."""


def resampled(
    source: Source, sr: int, label: str | None = None, max_s: float | None = None, hint: str = ""
) -> Iterator[Any]:
    """The whole recording as mono float32 blocks at `sr`, equal to `librosa.load(source,
    sr=sr)` cut into pieces (soxr's stream is its one-shot resample, and the length is fixed
    as librosa fixes it). Past `max_s` seconds it stops: `TooLong`, whose message ends with
    `hint` (how to raise the limit)."""
    import numpy as np
    import soxr

    what = _label(source, label)
    reader = _open(source, label)
    try:
        native = int(reader.samplerate)
        stream = None if native == sr else soxr.ResampleStream(native, sr, 1, "float32", "HQ")
        cap = math.inf if max_s is None else max_s * native
        read_n = made = 0
        while True:
            block = _frames(reader, BLOCK_FRAMES, what)
            last = len(block) < BLOCK_FRAMES
            read_n += len(block)
            if read_n > cap:
                raise TooLong(f"{what} is longer than {max_s:g} s; cut it into parts{hint}")
            mono = _mono(block).astype(np.float32, copy=False)
            out = mono if stream is None else stream.resample_chunk(mono, last=last)
            if last and stream is not None:  # librosa fixes the length: ceil(n * ratio)
                want = math.ceil(read_n * sr / native) - made
                out = np.pad(out, (0, max(0, want - len(out))))[:want]
            made += len(out)
            if len(out):
                yield out
            if last:
                return
    finally:
        reader.close()


@contextlib.contextmanager
def bounded_clip(path: Path, seconds: float) -> Iterator[Path]:
    """`path` itself when it holds no more than `seconds` of audio (a reader that loads whole
    files, as upstream's `prepare_conditionals`, then reads it unchanged); otherwise a temporary
    float WAV of its first `seconds`, the same samples, so that nothing past them is decoded."""
    import tempfile

    import soundfile as sf

    wav, sr, whole = read(path, seconds)
    if whole:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="chatterbox-clip-") as tmp:
        head = Path(tmp) / "head.wav"
        sf.write(head, wav, sr, subtype="FLOAT")
        yield head
