"""Model families, one module each behind `base.Family`; this registry is all the rest sees.

To add a family: a module with a `Family` subclass (files, loading, text tokens, T3 decode,
S3Gen settings, upstream baseline, random checkpoint) and one entry in `FAMILIES`.
"""

from __future__ import annotations

from chatterbox_cli.errors import BadInput
from chatterbox_cli.families.base import SPEECH_VOCAB, Family
from chatterbox_cli.families.multilingual import MULTILINGUAL, MULTILINGUAL_V2
from chatterbox_cli.families.nano import NANO
from chatterbox_cli.families.packs import PACK_FAMILIES
from chatterbox_cli.families.standard import STANDARD
from chatterbox_cli.families.turbo import TURBO

MODELS = tuple(f.name for f in (TURBO, NANO, STANDARD, MULTILINGUAL, MULTILINGUAL_V2))
"""What --model names; the language packs are reached with --pack (or their own names)."""
FAMILIES: dict[str, Family] = {
    f.name: f for f in (TURBO, NANO, STANDARD, MULTILINGUAL, MULTILINGUAL_V2, *PACK_FAMILIES)
}

__all__ = ["FAMILIES", "MODELS", "SPEECH_VOCAB", "Family", "get", "users"]


def get(name: str) -> Family:
    family = FAMILIES.get((name or "").lower())
    if family is None:
        raise BadInput(f"unknown model {name!r}; use one of: {', '.join(MODELS)}")
    return family


def users(knob: str) -> list[str]:
    """The `--model` names whose sampling uses `knob` (the packs sample as V3 does)."""
    return [name for name in MODELS if knob in FAMILIES[name].knobs]
