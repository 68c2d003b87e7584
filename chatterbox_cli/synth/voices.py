"""One voice store for every front-end (the Python API, batch and book rows, the server):
voices prepared once for an engine, keyed by what they were made from (a file's path, size
and modification time, so an edited or re-cached file is prepared again), the least recently
used dropped past a memory bound."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.models import voices
from chatterbox_cli.models.voices import VoiceSpec

MAX_MB = float(os.environ.get("CHATTERBOX_VOICE_CACHE_MB", "256"))
"""Prepared voices kept per engine (a voice is ~1-3 MB of tensors; the bound is for servers
that see many)."""


@dataclass(frozen=True)
class Voice:
    spec: VoiceSpec
    conds: Any
    """What the engine conditions on (upstream `Conditionals`, or S3Gen's reference dict)."""
    id: str
    """Its provenance id (`sinks.provenance.voice_id`)."""
    nbytes: int = 0


def key(value: str | Path | None) -> tuple:
    """What a voice value was made from: the built-in, or a file with its size and mtime (a
    cached voice's name stands for its file)."""
    if not value:
        return ("builtin",)
    text = str(value)
    path = Path(text).expanduser()
    if path.suffix == "" and "/" not in text:
        path = voices.voices_dir() / f"{text}.pt"
    try:
        st = path.stat()
    except OSError:
        return ("missing", text)  # resolve() refuses it, with the message
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def nbytes(obj: Any, depth: int = 0) -> int:
    """Bytes of the tensors inside `obj` (Conditionals, T3Cond, dicts of tensors)."""
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):
        return obj.element_size() * obj.numel()
    if depth > 3:
        return 0
    if isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, list | tuple):
        items = obj
    elif hasattr(obj, "__dict__"):
        items = vars(obj).values()
    else:
        return 0
    return sum(nbytes(v, depth + 1) for v in items)


class VoiceStore:
    """Voices for one engine: `get(value)` resolves and prepares a voice once.

    `prepare(spec)` makes what the engine conditions on; `model` names the family voice files
    must fit; `model_dir` goes into each voice's provenance id."""

    def __init__(
        self,
        model: str,
        prepare: Callable[[VoiceSpec], Any],
        model_dir: Path | None = None,
        max_mb: float = MAX_MB,
    ):
        self.model, self.prepare, self.model_dir = model, prepare, model_dir
        self.max_bytes = int(max_mb * 2**20)
        self.kept: OrderedDict[tuple, Voice] = OrderedDict()
        self.lock = threading.RLock()

    @classmethod
    def of(cls, engine, max_mb: float = MAX_MB) -> VoiceStore:
        """The store of a T3 engine (its voices with their T3 prefix cache built)."""
        from chatterbox_cli.synth.pipeline import conditionals

        return cls(engine.source.kind, lambda s: conditionals(engine, s), engine.model_dir, max_mb)

    def get(self, value: str | Path | None, spec: VoiceSpec | None = None, lock=None) -> Voice:
        """The voice `value` names, prepared (once per version of its file); `spec`: the same
        value already resolved (the CLI's early check), so it is not read twice; `lock`: the
        engine's, when others use it meanwhile (the server's scheduler)."""
        from chatterbox_cli.sinks.provenance import voice_id

        k = key(value)
        hit = self._hit(k)  # a kept voice never waits for the engine (a batch may be running)
        if hit is not None:
            return hit
        with lock or self.lock:
            hit = self._hit(k)  # prepared meanwhile
            if hit is not None:
                return hit
            spec = spec or voices.resolve(None if value is None else str(value), self.model)
            conds = self.prepare(spec)
            voice = Voice(spec, conds, voice_id(spec, self.model_dir), nbytes(conds))
            with self.lock:
                self.kept[k] = voice
                self._bound()
            return voice

    def _hit(self, k) -> Voice | None:
        with self.lock:
            hit = self.kept.get(k)
            if hit is not None:
                self.kept.move_to_end(k)
            return hit

    def _bound(self) -> None:
        total = sum(v.nbytes for v in self.kept.values())
        while total > self.max_bytes and len(self.kept) > 1:
            _, dropped = self.kept.popitem(last=False)
            total -= dropped.nbytes
