"""Where finished audio goes. Files are written atomically (`atomic.atomic_write`), so an
interrupted run never leaves a half-written file under the target name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

if TYPE_CHECKING:
    import numpy as np

FORMATS = ("wav", "flac", "mp3", "opus", "ogg")
SUBTYPES = ("PCM_16", "FLOAT")
CONTAINERS = {
    "wav": ("WAV", None),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
    "ogg": ("OGG", "OPUS"),
}
"""Our format name -> libsndfile's container and codec (WAV keeps --subtype). `ogg` is Ogg/Opus
too: libsndfile 1.2.2 in the soundfile wheel encodes both at their default bitrates."""


@dataclass(frozen=True)
class AudioFormat:
    format: str = "wav"
    subtype: str = "PCM_16"

    def check(self, spell: Spell = as_field) -> AudioFormat:
        fmt, sub = self.format.lower(), self.subtype.upper()
        if fmt not in FORMATS:
            raise BadInput(f"unknown format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if sub not in SUBTYPES:
            raise BadInput(f"unknown subtype {self.subtype!r}; use one of: {', '.join(SUBTYPES)}")
        if fmt == "flac" and sub == "FLOAT":
            raise BadInput(
                f"FLAC stores integer samples; use {spell('subtype')} PCM_16 or "
                f"{spell('format')} wav"
            )
        if fmt not in ("wav", "flac") and sub != "PCM_16":
            raise BadInput(f"{spell('subtype')} applies to WAV only; {fmt} is a compressed format")
        return AudioFormat(fmt, sub)

    @property
    def suffix(self) -> str:
        return f".{self.format}"

    def size(self, frames: int, sr: int) -> int:
        """About how many bytes `frames` samples take in this format (for a full disk's
        message): exact for WAV, an upper bound for FLAC, the codec's rate otherwise."""
        if self.format in ("wav", "flac"):
            return 4096 + frames * (4 if self.subtype == "FLOAT" else 2)
        return 4096 + frames * 16000 // sr  # ~128 kbit/s

    def soundfile_args(self) -> dict:
        container, codec = CONTAINERS[self.format]
        return {"format": container, "subtype": codec or self.subtype}


def check_writable(path: Path, overwrite: bool, spell: Spell = as_field) -> None:
    """Refuse early (before loading a model) what the final rename would refuse later."""
    if path.exists() and path.is_dir():
        raise BadInput(f"{path} is a directory; give a file name or end -o with '/'")
    if path.exists() and not overwrite:
        raise BadInput(f"{path} already exists; pass {spell('overwrite')} to replace it")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"cannot write {path}: {parent} is not a directory")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write to {probe}: permission denied; choose another -o")


def write_file(
    path: Path,
    wav: np.ndarray,
    sr: int,
    fmt: AudioFormat,
    overwrite: bool = False,
    tags: dict | None = None,
) -> Path:
    """Write atomically. Without `overwrite` an existing target is never replaced. `tags` go
    into the file (WAV INFO, FLAC/Vorbis comments, ID3) as `software` and `comment` text."""
    with open_writer(path, sr, fmt, overwrite, tags, fmt.size(len(wav), sr)) as write:
        write(wav)
    return path


@contextlib.contextmanager
def open_writer(
    path: Path,
    sr: int,
    fmt: AudioFormat,
    overwrite: bool = False,
    tags: dict | None = None,
    needed: int | None = None,
) -> Iterator[Callable[[np.ndarray], None]]:
    """`write(samples)` as often as needed, into a file that appears whole at the end (or not
    at all); a full disk is `DiskFull` naming the file and `needed` bytes."""
    import soundfile as sf

    try:
        with atomic_write(path, overwrite, fmt.suffix + ".part", needed) as fh:
            guarded = _Guarded(fh)
            try:
                with sf.SoundFile(guarded, "w", sr, 1, **fmt.soundfile_args()) as out:
                    for key, value in (tags or {}).items():
                        if value:  # libsndfile refuses an empty string ("bad string")
                            setattr(out, key, value)
                    yield out.write
            except Exception as exc:
                raise guarded.error or exc from None
            if guarded.error:
                raise guarded.error
    except FileExistsError:
        raise BadInput(
            f"{path} already exists; to replace it pass overwrite=True (--overwrite in the CLI)"
        ) from None


class _Guarded:
    """The file libsndfile writes through (its virtual I/O): an OSError is kept for the caller
    instead of raised inside the C callback, where it printed a traceback and libsndfile's
    Ogg and MP3 encoders ignored it (a silently short file)."""

    def __init__(self, fh):
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data) -> int:
        if self.error is None:
            try:
                return self.fh.write(data)
            except OSError as exc:
                self.error = exc
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self.fh.seek(offset, whence)
        except OSError as exc:
            self.error = self.error or exc
            return -1

    def tell(self) -> int:
        return self.fh.tell()

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)


def sounddevice():
    """sounddevice is an optional extra (`pip install 'chatterbox-cli[play]'`); it needs
    the PortAudio library, which its Linux wheels don't bundle."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise BadInput(
            f"--play needs sounddevice and PortAudio ({type(exc).__name__}: {exc}); "
            "run `pip install 'chatterbox-cli[play]'` (and install libportaudio2), or use -o -"
        ) from None
    return sd


class Playback:
    """The default output device, fed from a thread so synthesis never waits on the speaker."""

    def __init__(self, sr: int):
        import queue
        import threading

        sd = sounddevice()
        try:
            self.stream = sd.OutputStream(samplerate=sr, channels=1, dtype="float32")
            self.stream.start()
        except Exception as exc:
            raise BadInput(
                f"--play: no usable audio output device ({exc}); use -o FILE or -o - | aplay"
            ) from None
        self.sr, self.frames = sr, 0
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while (samples := self.queue.get()) is not None:
            try:
                self.stream.write(samples.reshape(-1, 1))
            except Exception:  # aborted (Ctrl-C) or the device went away: stop feeding
                return

    def write(self, samples: np.ndarray) -> None:
        import numpy as np

        self.queue.put(np.ascontiguousarray(samples, dtype=np.float32))
        self.frames += len(samples)

    def close(self, abort: bool = False) -> None:
        """Let queued audio play out (or drop it on `abort`), then release the device."""
        if abort:
            self.stream.abort()
        self.queue.put(None)
        self.thread.join(timeout=None if not abort else 1)
        self.stream.close()
