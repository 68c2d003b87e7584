"""Where weights come from: a local checkpoint directory, else the Hugging Face Hub (with
one-line errors for offline, gated and missing cases)."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from chatterbox_cli.errors import ModelUnavailable
from chatterbox_cli.families import Family, get


@dataclass(frozen=True)
class ModelSource:
    kind: str = "turbo"
    model_dir: Path | None = None

    @property
    def family(self) -> Family:
        return get(self.kind)

    def describe(self) -> str:
        return str(self.model_dir) if self.model_dir else f"hf://{self.family.hub_repo}"

    def check(self) -> None:
        """Fail fast (before any heavy import) when the weights can't be had: a model dir that
        can't be a checkpoint, or hub weights neither in the cache nor downloadable."""
        family = self.family
        if self.model_dir is None:
            hub_available(self.kind)
            return
        d = self.model_dir
        if not d.is_dir():
            raise ModelUnavailable(f"model dir {d} does not exist; pass --model-dir DIR")
        missing = family.missing_files(d)
        if missing:
            raise ModelUnavailable(
                f"model dir {d} lacks {', '.join(missing)}; "
                f"point --model-dir at a Chatterbox {self.kind} checkpoint"
            )

    @property
    def has_builtin_voice(self) -> bool | None:
        """None when unknown before loading (hub)."""
        return (self.model_dir / "conds.pt").is_file() if self.model_dir else None


def _hub_error(exc: BaseException, source: ModelSource) -> ModelUnavailable:
    repo = source.family.hub_repo
    name = type(exc).__name__
    if "GatedRepo" in name or "RepositoryNotFound" in name:
        return ModelUnavailable(
            f"the Hugging Face Hub refused {repo} ({name}); log in (`hf auth login` or HF_TOKEN) "
            "or pass --model-dir DIR"
        )
    return ModelUnavailable(
        f"model weights for {repo} are not in the Hugging Face cache and the hub can't be "
        f"reached ({name}); go online once to download them, point HF_HOME at a cache that has "
        "them, or pass --model-dir DIR (env CHATTERBOX_MODEL_DIR)"
    )


def hub_cached(kind: str = "turbo") -> bool:
    """Whether the hub weights are already in the local Hugging Face cache (no network)."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(get(kind).hub_repo, local_files_only=True))
    except Exception:
        return False
    return not get(kind).missing_files(path)


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
def hub_available(kind: str) -> None:
    """Raise at once (no torch imported yet) unless the family's hub weights are cached whole or
    the hub answers for them: offline with nothing cached, a newcomer hears so in a second,
    not after the model libraries load. Remembered per process once it passes."""
    from huggingface_hub import constants, model_info

    if hub_cached(kind):
        return
    source = ModelSource(kind)
    if constants.HF_HUB_OFFLINE:
        from huggingface_hub.errors import OfflineModeIsEnabled

        raise _hub_error(OfflineModeIsEnabled("HF_HUB_OFFLINE is set"), source)
    try:
        model_info(source.family.hub_repo, token=os.getenv("HF_TOKEN") or None, timeout=10)
    except hub_errors() as exc:
        raise _hub_error(exc, source) from exc
    except OSError as exc:
        raise _hub_error(exc, source) from exc


def hub_snapshot(source: ModelSource) -> Path:
    """Upstream `from_pretrained`'s download (same files), mapped to one-line errors."""
    from huggingface_hub import snapshot_download

    expected = hub_errors()
    try:
        return Path(
            snapshot_download(
                repo_id=source.family.hub_repo,
                token=os.getenv("HF_TOKEN") or None,
                allow_patterns=source.family.hub_patterns,
            )
        )
    except expected as exc:
        raise _hub_error(exc, source) from exc
    except OSError as exc:
        if "connect" in str(exc).lower() or "offline" in str(exc).lower():
            raise _hub_error(exc, source) from exc
        raise
