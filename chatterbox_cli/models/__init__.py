"""Model families, one module each behind `base.Family`; this registry is all the rest sees.

To add a family: a module with a `Family` subclass (files, loading, text tokens, T3 decode,
S3Gen settings, upstream baseline) and one entry in `register(...)`; a random-weight
checkpoint of its layout in `testing/checkpoints.py`.
"""

from __future__ import annotations

from chatterbox_cli.models.base import FAMILIES, SPEECH_VOCAB, Family, listed, register, users
from chatterbox_cli.models.flash import FLASH
from chatterbox_cli.models.multilingual import MULTILINGUAL, MULTILINGUAL_V2
from chatterbox_cli.models.nano import NANO
from chatterbox_cli.models.packs import PACK_FAMILIES
from chatterbox_cli.models.standard import STANDARD
from chatterbox_cli.models.turbo import TURBO
from chatterbox_cli.runtime.errors import BadInput

register(TURBO, NANO, STANDARD, MULTILINGUAL, MULTILINGUAL_V2, FLASH, *PACK_FAMILIES)
MODELS = listed()
"""What --model names; the language packs are reached with --pack (or their own names)."""

__all__ = ["FAMILIES", "MODELS", "SPEECH_VOCAB", "Family", "get", "register", "users"]


def get(name: str) -> Family:
    family = FAMILIES.get((name or "").lower())
    if family is None:
        raise BadInput(f"unknown model {name!r}; use one of: {', '.join(MODELS)}")
    return family
