"""Audio as bytes sent while it is made: the one WAV stream header and the one PCM16 encoder
(`PcmStream`, the stdout stream of `say -o -`, and the server's replies both use them), and
`StreamEncoder` for every response format."""

from __future__ import annotations

import io
import struct

import numpy as np

from chatterbox_cli.sinks.files import AudioFormat

UNKNOWN = 0xFFFFFFFF


def wav_stream_header(sr: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "unknown length" (0xFFFFFFFF, as sox, ffmpeg
    and OpenAI's streams write), so readers take data until EOF and a cut stream stays valid."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
    unknown = struct.pack("<I", UNKNOWN)
    return b"RIFF" + unknown + b"WAVE" + b"fmt " + fmt + b"data" + unknown


def pcm16(samples: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM of float samples in [-1, 1], the integers libsndfile writes
    into our WAV files (scaled by 32768, rounded down, clipped: measured against libsndfile
    1.2 on 480k samples), so a stream and a file of the same audio hold the same samples."""
    pcm = np.clip(np.floor(np.asarray(samples, dtype=np.float32) * 32768), -32768, 32767)
    return pcm.astype("<i2").tobytes()


def encode(audio, sr: int, fmt: str, tags: dict | None = None) -> bytes:
    """A whole response body in `fmt`, with `tags` inside (not in raw `pcm`), as `say` writes."""
    enc = StreamEncoder(fmt, sr, streaming=False, tags=tags)
    return enc.feed(audio) + enc.close()


class StreamEncoder:
    """Bytes of a response, piece by piece: each `feed` returns what may be sent now.

    A WAV stream is `wav_stream_header` + PCM16, `pcm` is PCM16 alone; MP3, Ogg/Opus, FLAC and
    a whole WAV come from libsndfile writing into memory, sending what it appends (the header
    fields it patches at the end, such as FLAC's total length, stay "unknown" in a stream,
    which decoders accept)."""

    def __init__(self, fmt: str, sr: int, streaming: bool = True, tags: dict | None = None):
        self.fmt, self.sr, self.streaming = fmt, sr, streaming
        self.raw = fmt == "pcm" or (fmt == "wav" and streaming)
        self.pending = wav_stream_header(sr) if fmt == "wav" and streaming else b""
        self.file = None
        if not self.raw:
            import soundfile as sf

            self.buf, self.sent = io.BytesIO(), 0
            args = AudioFormat(fmt).check().soundfile_args()
            self.file = sf.SoundFile(self.buf, "w", sr, 1, **args)
            for key, value in (tags or {}).items():
                setattr(self.file, key, value)

    def feed(self, audio: np.ndarray) -> bytes:
        if self.raw:
            self.pending += pcm16(audio)
            return self._take() if self.streaming else b""
        self.file.write(np.asarray(audio, dtype=np.float32))
        return self._new() if self.streaming else b""

    def close(self) -> bytes:
        if self.raw:
            return self._take()
        self.file.close()
        return self._new() if self.streaming else self.buf.getvalue()

    def _take(self) -> bytes:
        out, self.pending = self.pending, b""
        return out

    def _new(self) -> bytes:
        end = len(self.buf.getbuffer())
        out = bytes(self.buf.getbuffer()[self.sent : end])
        self.sent = end
        return out


class PcmStream:
    """16-bit mono PCM to a pipe, flushed per piece: WAV with an open-ended header, or raw.

    The header's sizes are 0xFFFFFFFF ("unknown length", as sox and ffmpeg write when
    streaming), so readers such as aplay, ffplay, sox and soundfile take data until EOF; the
    stream is well-formed after every piece, even if the run is interrupted.
    """

    def __init__(self, fh, sr: int, raw: bool = False):
        self.fh, self.sr, self.raw = fh, sr, raw
        self.frames = 0
        if not raw:
            fh.write(wav_stream_header(sr))
            fh.flush()

    def write(self, samples: np.ndarray) -> None:
        data = pcm16(samples)
        self.fh.write(data)
        self.fh.flush()
        self.frames += len(data) // 2
