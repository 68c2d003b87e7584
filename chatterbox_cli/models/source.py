"""Where weights come from: a local checkpoint directory, else the Hugging Face Hub (with
one-line errors for offline, gated and missing cases)."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from chatterbox_cli.models import Family, get
from chatterbox_cli.models.loading import cache_dir
from chatterbox_cli.runtime.errors import ModelUnavailable, Spell, as_field

RANDOM_MARKER = "RANDOM_WEIGHTS.json"
"""What a random-weight test checkpoint (`testing/checkpoints.py`) holds: it speaks noise, and
bench reports say so."""


def is_random_checkpoint(path: Path) -> bool:
    return (Path(path) / RANDOM_MARKER).is_file()


@dataclass(frozen=True)
class ModelSource:
    kind: str = "turbo"
    model_dir: Path | None = None

    @property
    def family(self) -> Family:
        return get(self.kind)

    def describe(self) -> str:
        return str(self.model_dir) if self.model_dir else f"hf://{self.family.hub_repo}"

    def check(self, spell: Spell = as_field) -> None:
        """Fail fast (before any heavy import) when the weights can't be had: a model dir that
        can't be a checkpoint, or hub weights neither in the cache nor downloadable."""
        family = self.family
        if self.model_dir is None:
            hub_available(self.kind, spell)
            return
        d, option = self.model_dir, spell("model_dir")
        if not d.is_dir():
            raise ModelUnavailable(f"model dir {d} does not exist; pass {option} DIR")
        lacking = family.lacks(
            d, f"model dir {d}", f"point {option} at a Chatterbox {self.kind} checkpoint", spell
        )
        if lacking:
            raise ModelUnavailable(lacking)

    @property
    def has_builtin_voice(self) -> bool | None:
        """None when unknown before loading (hub)."""
        return (self.model_dir / "conds.pt").is_file() if self.model_dir else None


def _hub_error(exc: BaseException, source: ModelSource, spell: Spell = as_field):
    repo = source.family.hub_repo
    name = type(exc).__name__
    option = spell("model_dir")
    if "GatedRepo" in name or "RepositoryNotFound" in name:
        return ModelUnavailable(
            f"the Hugging Face Hub refused {repo} ({name}); log in (`hf auth login` or HF_TOKEN) "
            f"or pass {option} DIR"
        )
    partial = _partial_cache(source, spell)
    if partial is not None:
        return partial
    return ModelUnavailable(
        f"model weights for {repo} are not in the Hugging Face cache and the hub can't be "
        f"reached ({name}); go online once to download them, point HF_HOME at a cache that has "
        f"them, or pass {option} DIR (env CHATTERBOX_MODEL_DIR)"
    )


def cached_snapshot(kind: str = "turbo") -> Path | None:
    """The local Hugging Face cache's snapshot of the family's hub repo (joined with its
    companion's, if it has one and that is cached), whole or not."""
    from huggingface_hub import snapshot_download

    family = get(kind)
    try:
        path = Path(snapshot_download(family.hub_repo, local_files_only=True))
        if family.companion is None:
            return path
        other = Path(snapshot_download(family.companion[0], local_files_only=True))
    except Exception:
        return None
    return joined_snapshot(family, path, other)


def joined_snapshot(family: Family, own: Path, companion: Path) -> Path:
    """One folder of links, `from_local`'s layout: the companion repo's files, then the
    family's own over them. Named <cache>/joined/<family>/snapshots/<revision>, so provenance
    names the checkpoint `repo@revision` as for any snapshot."""

    folder = cache_dir() / "joined" / family.name / "snapshots" / own.name
    folder.mkdir(parents=True, exist_ok=True)
    files = {p.name: p for p in companion.iterdir() if p.name in family.companion[1]}
    files.update({p.name: p for p in own.iterdir() if not p.name.startswith(".")})
    for name, target in files.items():
        link = folder / name
        if link.is_symlink() and os.readlink(link) == str(target.absolute()):
            continue
        temp = folder / f".{name}.{os.getpid()}"
        temp.unlink(missing_ok=True)
        temp.symlink_to(target.absolute())
        os.replace(temp, link)
    return folder


def hub_cached(kind: str = "turbo") -> bool:
    """Whether the hub weights are already in the local Hugging Face cache (no network)."""
    path = cached_snapshot(kind)
    return path is not None and not get(kind).missing_files(path)


def hub_errors() -> tuple[type[BaseException], ...]:
    """What the hub client raises when the weights can't be had (offline, unreachable, refused)."""
    from huggingface_hub import errors as hf_errors

    expected = (
        hf_errors.LocalEntryNotFoundError,
        hf_errors.OfflineModeIsEnabled,
        hf_errors.HfHubHTTPError,
        ConnectionError,
        TimeoutError,
    )
    with contextlib.suppress(ImportError):
        import httpx

        expected = (*expected, httpx.TransportError)
    return expected


@functools.cache
def hub_available(kind: str, spell: Spell = as_field) -> None:
    """Raise at once (no torch imported yet) unless the family's hub weights are cached whole or
    the hub answers for them: offline with nothing cached, a newcomer hears so in a second,
    not after the model libraries load. Remembered per process once it passes."""
    from huggingface_hub import constants, model_info

    if hub_cached(kind):
        return
    source = ModelSource(kind)
    if constants.HF_HUB_OFFLINE:
        from huggingface_hub.errors import OfflineModeIsEnabled

        raise _hub_error(OfflineModeIsEnabled("HF_HUB_OFFLINE is set"), source, spell)
    try:
        model_info(source.family.hub_repo, token=os.getenv("HF_TOKEN") or None, timeout=10)
    except (*hub_errors(), OSError) as exc:
        raise _hub_error(exc, source, spell) from exc


def _partial_cache(source: ModelSource, spell: Spell = as_field) -> ModelUnavailable | None:
    """Offline with the repo cached but files missing (say, a V2 cache asked for V3): name them."""
    snapshot = cached_snapshot(source.kind)
    if snapshot is None:
        return None
    family = source.family
    line = family.lacks(
        snapshot,
        f"the Hugging Face cache of {family.hub_repo}",
        f"go online once to download it (or pass {spell('model_dir')} DIR)",
        spell,
    )
    return ModelUnavailable(line) if line else None


def hub_snapshot(source: ModelSource) -> Path:
    """Upstream `from_pretrained`'s download (same files), mapped to one-line errors."""
    from huggingface_hub import snapshot_download

    expected = hub_errors()
    family = source.family
    token = os.getenv("HF_TOKEN") or None
    try:
        own = Path(
            snapshot_download(
                repo_id=family.hub_repo, token=token, allow_patterns=family.hub_patterns
            )
        )
        if family.companion is None:
            return own
        repo, files = family.companion
        other = Path(snapshot_download(repo_id=repo, token=token, allow_patterns=files))
        return joined_snapshot(family, own, other)
    except expected as exc:
        raise _hub_error(exc, source) from exc
    except OSError as exc:
        if "connect" in str(exc).lower() or "offline" in str(exc).lower():
            raise _hub_error(exc, source) from exc
        raise


def vc_weights(family: Family, model_dir: Path | None) -> Path:
    """The folder holding `family`'s S3Gen for conversion (and maybe `conds.pt`): `model_dir`,
    or only those two files from the hub, as `ChatterboxVC.from_pretrained` downloads them."""
    name = family.vc_s3gen
    if model_dir is not None:
        if not model_dir.is_dir():
            raise ModelUnavailable(f"model dir {model_dir} does not exist; pass --model-dir DIR")
        if not (model_dir / name).is_file():
            raise ModelUnavailable(
                f"model dir {model_dir} lacks {name}; point --model-dir at a Chatterbox "
                f"{family.name} checkpoint"
            )
        return model_dir
    from huggingface_hub import snapshot_download

    source = ModelSource(family.name)
    token = os.getenv("HF_TOKEN") or None
    patterns = [name, "conds.pt"]
    try:
        folder = Path(snapshot_download(family.hub_repo, allow_patterns=patterns, token=token))
    except (*hub_errors(), OSError) as exc:
        raise _hub_error(exc, source) from exc
    if not (folder / name).is_file():
        raise ModelUnavailable(f"{family.hub_repo} on the hub has no {name}; pass --model-dir DIR")
    return folder
