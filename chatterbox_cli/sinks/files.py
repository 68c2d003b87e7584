"""Where finished audio goes. Files are written atomically (`atomic.atomic_write`), so an
interrupted run never leaves a half-written file under the target name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import BadInput

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

    def check(self) -> AudioFormat:
        fmt, sub = self.format.lower(), self.subtype.upper()
        if fmt not in FORMATS:
            raise BadInput(f"unknown format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if sub not in SUBTYPES:
            raise BadInput(f"unknown subtype {self.subtype!r}; use one of: {', '.join(SUBTYPES)}")
        if fmt == "flac" and sub == "FLOAT":
            raise BadInput("FLAC stores integer samples; use --subtype PCM_16 or --format wav")
        if fmt not in ("wav", "flac") and sub != "PCM_16":
            raise BadInput(f"--subtype applies to WAV only; {fmt} is a compressed format")
        return AudioFormat(fmt, sub)

    @property
    def suffix(self) -> str:
        return f".{self.format}"

    def soundfile_args(self) -> dict:
        container, codec = CONTAINERS[self.format]
        return {"format": container, "subtype": codec or self.subtype}


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse early (before loading a model) what the final rename would refuse later."""
    if path.exists() and path.is_dir():
        raise BadInput(f"{path} is a directory; give a file name or end -o with '/'")
    if path.exists() and not overwrite:
        raise BadInput(f"{path} already exists; pass --overwrite to replace it")
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
    import soundfile as sf

    try:
        with atomic_write(path, overwrite, suffix=fmt.suffix + ".part") as fh:
            with sf.SoundFile(fh, "w", sr, 1, **fmt.soundfile_args()) as out:
                for key, value in (tags or {}).items():
                    setattr(out, key, value)
                out.write(wav)
    except FileExistsError:
        raise BadInput(f"{path} already exists; pass --overwrite to replace it") from None
    return path


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
        self.queue.put(np.ascontiguousarray(samples, dtype=np.float32))
        self.frames += len(samples)

    def close(self, abort: bool = False) -> None:
        """Let queued audio play out (or drop it on `abort`), then release the device."""
        if abort:
            self.stream.abort()
        self.queue.put(None)
        self.thread.join(timeout=None if not abort else 1)
        self.stream.close()
