"""Voices: reference clips, cached `.pt` conditionals, and the checkpoint's built-in voice.

A cached voice is upstream's `Conditionals.save` layout (`{"t3": ..., "gen": ...}`) plus a
`meta` record, so upstream's own `Conditionals.load` reads it too. It is always loaded with
`weights_only=True`: a voice file must never be able to run code.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatterbox_cli.models import FAMILIES
from chatterbox_cli.models.loading import torch_load
from chatterbox_cli.runtime import recordings
from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import BadInput, VoiceError
from chatterbox_cli.text.segment import slug

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")
MIN_REFERENCE_S = 5.0
"""Upstream asserts the prompt is longer than 5 s."""
USED_REFERENCE_S = 10.0
"""S3Gen uses the first 10 s (T3 the first 15 s); more only costs time."""
USED_CLIP_S = 60.0
"""What of a clip is ever decoded: upstream's voice encoder reads all of a clip, so clips up to
this long are used whole (exactly upstream); a longer one (an hour of tone, a header that lies)
is cut here instead of decoded into memory."""
VOICE_FORMAT = 1


def voices_dir() -> Path:
    return Path(os.environ.get("CHATTERBOX_VOICES_DIR") or "voices")


@dataclass(frozen=True)
class VoiceSpec:
    """What `--voice` resolved to, validated before any model is loaded."""

    kind: str  # "builtin" | "cached" | "reference"
    label: str
    path: Path | None = None
    conds: Any = None
    """For cached voices: the upstream `Conditionals`, on CPU."""


@dataclass(frozen=True)
class ReferenceInfo:
    path: Path
    duration_s: float
    sample_rate: int
    channels: int
    whole: bool = True
    """False when the clip goes on past `USED_CLIP_S` (its length then is the header's word, or
    unknown): only its start is ever decoded."""


@dataclass
class VoiceMeta:
    name: str
    model: str
    source_file: str
    source_sha256: str
    duration_s: float
    created: str
    format: int = VOICE_FORMAT


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inspect_reference(path: Path) -> ReferenceInfo:
    """Check a reference clip is readable audio of usable length, without loading a model."""
    if not path.is_file():
        raise VoiceError(f"voice file {path} does not exist")
    try:
        head = recordings.probe(path)
        wav, sr, whole = recordings.read(path, USED_CLIP_S)
    except BadInput:
        raise VoiceError(f"cannot read {path} as audio; use a WAV/FLAC/MP3 clip") from None
    measured = len(wav) / sr
    duration = measured if whole else max(head.duration_s or 0.0, measured)
    channels = head.channels
    if duration <= MIN_REFERENCE_S:
        raise VoiceError(
            f"{path} is {duration:.1f} s long; a reference clip must be longer than "
            f"{MIN_REFERENCE_S:.0f} s (5-10 s of clean speech from one speaker)"
        )
    return ReferenceInfo(path, duration, int(sr), int(channels), whole)


def resolve(value: str | None, model: str = "turbo") -> VoiceSpec:
    """`--voice` value -> spec: None (built-in), a `.pt` path, an audio path, or a cached name."""
    model = model.lower()
    if not value:
        return VoiceSpec("builtin", "built-in")
    path = Path(value).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".pt":
        if not path.is_file():
            raise VoiceError(f"voice file {path} does not exist")
        return VoiceSpec("cached", path.stem, path, load_cached(path, model))
    if suffix in AUDIO_SUFFIXES:
        inspect_reference(path)
        return VoiceSpec("reference", path.name, path)
    cached = voices_dir() / f"{value}.pt"
    if "/" not in value and cached.is_file():
        return VoiceSpec("cached", value, cached, load_cached(cached, model))
    raise VoiceError(
        f"no voice named {value!r} in {voices_dir()}; see `chatterbox voice list`, "
        "or pass a .pt or .wav path"
    )


def load_cached(path: Path, model: str = "turbo", map_location: str = "cpu"):
    """A cached voice as upstream `Conditionals`, refusing anything that is not one."""
    import pickle

    import torch
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import Conditionals

    try:
        data = torch_load(path, map_location=map_location)
    except pickle.UnpicklingError:
        raise VoiceError(
            f"{path} is not a chatterbox voice file (it holds pickled Python objects, which are "
            "never loaded); make one with `chatterbox voice cache REF.wav`"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise VoiceError(
            f"{path} is not a chatterbox voice file (unreadable: {type(exc).__name__})"
        ) from None
    if not isinstance(data, dict) or not {"t3", "gen"} <= data.keys():
        raise VoiceError(
            f"{path} is not a chatterbox voice file (expected keys t3 and gen); "
            "make one with `chatterbox voice cache REF.wav`"
        )
    meta = data.get("meta") or {}
    made_for = meta.get("model") if isinstance(meta, dict) else None
    try:
        t3 = T3Cond(**data["t3"])
    except TypeError as exc:
        raise VoiceError(f"{path} is not a chatterbox voice file ({exc})") from None
    gen = data["gen"]
    needed = {"prompt_token", "prompt_feat", "embedding"}
    if not isinstance(gen, dict) or not needed <= gen.keys() or not torch.is_tensor(t3.speaker_emb):
        raise VoiceError(f"{path} is not a chatterbox voice file (incomplete conditionals)")
    prompt = t3.cond_prompt_speech_tokens
    if made_for is None and torch.is_tensor(prompt):
        # no record (upstream's own conds.pt): the prompt length tells Turbo from the Llama
        # families, which share it
        fits = [f.name for f in FAMILIES.values() if f.prompt_tokens == prompt.shape[-1]]
        made_for = model if model in fits else next(iter(fits), None)
    if made_for is not None and not FAMILIES[model].reads_voices_of(made_for):
        raise VoiceError(
            f"{path} was made for the {made_for} model, not {model}; re-create it with "
            f"`chatterbox voice cache REF.wav --model {model}` (keep the reference clip)"
        )
    return Conditionals(t3, gen)


def save_cached(conds, path: Path, meta: VoiceMeta) -> Path:
    """Atomic save of conditionals + metadata (tensors moved to CPU first)."""
    import torch

    cpu = conds.to("cpu")
    t3_fields = {k: v for k, v in cpu.t3.__dict__.items() if k != "cond_prompt_speech_emb"}
    t3_fields["cond_prompt_speech_emb"] = None
    data = io.BytesIO()  # serialized first: torch would hide a full disk's OSError
    torch.save({"t3": t3_fields, "gen": cpu.gen, "meta": asdict(meta)}, data)
    with atomic_write(path, needed=data.getbuffer().nbytes) as fh:
        fh.write(data.getbuffer())
    return path


RESERVED_NAMES = ("default", "builtin")
"""They name the checkpoint's own voice (server `voice: default`), never a cached file."""


def cached_path(name: str, directory: Path | None = None) -> Path:
    """Where cached voice NAME lives: the one name rule, for `voice cache --name` and server
    uploads alike (lowercase letters, digits and '-', as `--voice NAME` finds it)."""
    if not name or slug(name) != name or name in RESERVED_NAMES:
        fixed = slug(name or "")
        hint = f" such as {fixed!r}" if fixed not in ("speech", *RESERVED_NAMES) else ""
        raise BadInput(f"invalid voice name {name!r}; use lowercase letters, digits and '-'{hint}")
    return (directory or voices_dir()) / f"{name}.pt"


def make_voice(engine, clip: Path, target: Path, meta: VoiceMeta, lock=None) -> VoiceMeta:
    """Upstream conditionals of `clip`, saved atomically as `target` with `meta`: the one path
    that makes a cached voice (`voice cache`, server uploads). `lock` keeps the model to this
    job (the server prepares between batches)."""
    import contextlib

    with lock or contextlib.nullcontext():
        try:
            conds = engine.prepare_reference(clip)
        except VoiceError:
            raise
        except Exception as exc:
            raise VoiceError(
                f"cannot prepare a voice from {meta.source_file} ({type(exc).__name__})"
            ) from None
    save_cached(conds, target, meta)
    return meta


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class VoiceEntry:
    name: str
    path: str
    model: str
    duration_s: float | None
    size_bytes: int
    created: str | None


def list_voices(directory: Path | None = None) -> list[VoiceEntry]:
    """Cached voices with their metadata; read with weights_only so listing is always safe."""

    directory = directory or voices_dir()
    entries: list[VoiceEntry] = []
    for path in sorted(directory.glob("*.pt")) if directory.is_dir() else []:
        try:
            meta = torch_load(path, map_location="cpu").get("meta") or {}
        except Exception:
            meta = {"model": "invalid"}
        entries.append(
            VoiceEntry(
                name=path.stem,
                path=str(path),
                model=str(meta.get("model", "unknown")),
                duration_s=meta.get("duration_s"),
                size_bytes=path.stat().st_size,
                created=meta.get("created"),
            )
        )
    return entries
