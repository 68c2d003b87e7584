"""The models one server holds (`serve --model turbo --model standard`): each behind its own
scheduler and voices, loaded at start, unloaded and loaded again at run time.

A request names its model (`model`; the first is the default). Unloading refuses new requests
to that model (409), waits for its requests in flight, stops its scheduler and drops every
reference to its weights, so the memory goes back to the OS; the other models go on serving
meanwhile (each load or unload runs on its own thread, under that model's own lock).
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from chatterbox_cli.runtime.errors import BadInput, ChatterboxError

ALIASES = ("", "chatterbox")
"""`model` values that mean the default model (OpenAI clients send one; ours may send none)."""
DRAIN_S = 600.0
"""Longest an unload waits for the model's requests in flight."""


class NotLoaded(ChatterboxError):
    """A request to a model that is unloaded or unloading (HTTP 409)."""


def rss_mb() -> float | None:
    """This process's resident memory now (Linux), in MB."""
    try:
        with open("/proc/self/status") as f:
            return int(next(x for x in f if x.startswith("VmRSS")).split()[1]) / 1024
    except (OSError, StopIteration, ValueError):
        return None


def weights_mb(engine) -> float:
    """Bytes of the model's parameters and buffers (T3, S3Gen, voice encoder, tokenizers)."""
    import torch

    seen, total = set(), 0
    for part in vars(engine.tts).values():
        if not isinstance(part, torch.nn.Module):
            continue
        for t in [*part.parameters(), *part.buffers()]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
    return total / 2**20


def runtime_of(engine):
    """The settings an engine was loaded with, to load it again the same way."""
    from chatterbox_cli.runtime.device import Runtime

    return Runtime(None, engine.quantize, engine.dtype, engine.fast_decode, engine.overlap,
                   engine.batch_s3gen)  # fmt: skip


@dataclass(eq=False)
class ModelSlot:
    """One model: its checked source and settings, and while loaded its engine, voices and
    scheduler."""

    id: str
    source: Any
    device: str
    runtime: Any
    default_voice: Any
    start: Any
    """(engine, default_voice) -> (voices, scheduler): how the app wires a loaded engine."""
    engine: Any = None
    voices: Any = None
    scheduler: Any = None
    converter: Any = None
    """`synth.convert.Converter` over this engine's S3Gen, made by the first conversion."""
    state: str = "unloaded"
    load_s: float | None = None
    unload_s: float | None = None
    weights_mb: float | None = None
    rss_at_load_mb: float | None = None
    """RSS after this model's last load minus before it: the memory its loading took."""
    rss_freed_mb: float | None = None
    gate: threading.Lock = field(default_factory=threading.Lock)

    @property
    def loaded(self) -> bool:
        return self.state == "loaded"

    def attach(self, engine) -> None:
        """A loaded engine becomes this model's (at start, or after `load`)."""
        self.engine = engine
        self.voices, self.scheduler = self.start(engine, self.default_voice)
        self.weights_mb = round(weights_mb(engine), 1)
        self.load_s = round(engine.load_s, 2)
        self.state = "loaded"

    def load(self) -> dict:
        from chatterbox_cli.synth import loader

        with self.gate:
            if self.loaded:
                return self.describe()
            self.state = "loading"
            before = rss_mb()
            try:
                engine = loader.load_engine(self.source, self.device, self.runtime, share=True)
            except BaseException:
                self.state = "unloaded"
                raise
            self.attach(engine)
            after = rss_mb()
            if before is not None and after is not None:
                self.rss_at_load_mb = round(after - before, 1)
            return self.describe()

    def unload(self) -> dict:
        """Refuse new requests, wait for those in flight, free the weights."""
        from chatterbox_cli.runtime.device import release_memory
        from chatterbox_cli.synth import loader

        with self.gate:
            if self.state != "loaded":
                return self.describe()
            t0, before = time.perf_counter(), rss_mb()
            self.state = "unloading"
            scheduler, engine = self.scheduler, self.engine
            deadline = time.monotonic() + DRAIN_S
            while scheduler.depth and time.monotonic() < deadline:
                time.sleep(0.05)
            scheduler.close()
            scheduler.thread.join(timeout=60)
            gone = weakref.ref(engine.tts)
            self.engine = self.voices = self.scheduler = self.converter = None
            del scheduler, engine
            loader.unload(self.source)
            deadline = time.monotonic() + 30
            while gone() is not None and time.monotonic() < deadline:
                gc.collect()  # a reply still post-processing holds the engine a moment
                time.sleep(0.05)
            release_memory()
            after = rss_mb()
            self.state = "unloaded"
            self.unload_s = round(time.perf_counter() - t0, 2)
            if before is not None and after is not None:
                self.rss_freed_mb = round(before - after, 1)
            return self.describe()

    def describe(self) -> dict:
        """One entry of `GET /v1/models` (OpenAI's model object, plus what we know)."""
        family = self.source.family
        return {
            "id": self.id,
            "object": "model",
            "created": 0,
            "owned_by": "resemble-ai",
            "family": family.name,
            "languages": list(family.languages),
            "device": self.device,
            "loaded": self.loaded,
            "state": self.state,
            "load_s": self.load_s,
            "unload_s": self.unload_s,
            "weights_mb": self.weights_mb if self.loaded else None,
            "rss_at_load_mb": self.rss_at_load_mb,
            "rss_freed_mb": self.rss_freed_mb,
            "queue": self.scheduler.depth if self.scheduler is not None else 0,
            "asr": _listener_name(self.scheduler),
        }


def _listener_name(scheduler) -> str | None:
    """The recognizer that hears a loaded model's replies (`serve --asr`)."""
    listener = getattr(scheduler, "listener", None)
    return listener.path.name if listener is not None else None


class Models:
    """The server's models by id, in the order given (the first answers `model: chatterbox`)."""

    def __init__(self, served: list[ModelSlot]):
        self.by_id = {m.id: m for m in served}
        self.default = served[0]

    def __iter__(self):
        return iter(self.by_id.values())

    def get(self, name: str | None) -> ModelSlot:
        """The model a request names, refused (400/409) when unknown or not loaded."""
        key = (name or "").strip().lower()
        model = self.default if key in ALIASES else self.by_id.get(key)
        if model is None:
            raise BadInput(
                f"model {name!r} is not loaded here; GET /v1/models lists this server's models "
                f"({', '.join(self.by_id)})"
            )
        if not model.loaded:
            raise NotLoaded(
                f"model {model.id!r} is {model.state}; POST /v1/models/{model.id}/load loads it"
            )
        return model

    def known(self, name: str) -> ModelSlot:
        model = self.by_id.get(name.strip().lower())
        if model is None:
            raise Unknown(f"no model {name!r} here; this server has: {', '.join(self.by_id)}")
        return model

    @property
    def depth(self) -> int:
        return sum(m.scheduler.depth for m in self if m.scheduler is not None)


class Unknown(ChatterboxError):
    """A model id the server does not have (HTTP 404)."""
