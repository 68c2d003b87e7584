"""Sampling knobs of every model family, and which family uses which.

One dataclass holds them all so a batch row or a CLI flag can carry any of them; a family takes
its defaults from upstream's `generate()` and refuses knobs it does not use (upstream silently
ignores them, so a user would think `--top-k` changed a Standard run).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

MAX_STEPS = 64
MAX_BLOCK = 64
"""Flash was trained on blocks of 16 and its card reports 32 too; past 64 a block is most of a
group and the schedule has nothing left to gain."""


@dataclass(frozen=True)
class SamplingParams:
    """Defaults are upstream Turbo's `generate()`; `Family.sampling()` gives each family's."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 1000
    repetition_penalty: float = 1.2
    min_p: float = 0.05
    cfg_weight: float = 0.5
    exaggeration: float = 0.5
    steps: int = 10
    """Flash: denoising steps a block may take (fewer when its tokens are sure sooner)."""
    block_size: int = 16
    """Flash: speech tokens filled in parallel per block."""

    def check(self, spell: Spell = as_field) -> SamplingParams:
        """Refuse values out of range; `spell` names a knob as the caller gave it (a Python
        keyword, batch column or request field by default; the CLI passes its flags)."""
        name = spell
        bounds = (
            ("temperature", self.temperature > 0, "must be > 0"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("top_k", self.top_k >= 0, "must be >= 0 (0 disables it)"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be > 0"),
            ("min_p", 0 <= self.min_p <= 1, "must be in [0, 1] (0 disables it)"),
            ("cfg_weight", 0 <= self.cfg_weight <= 10, "must be in [0, 10] (0 turns guidance off)"),
            ("exaggeration", 0 <= self.exaggeration <= 2, "must be in [0, 2] (0.5 is neutral)"),
            ("steps", 1 <= self.steps <= MAX_STEPS, f"must be between 1 and {MAX_STEPS}"),
            ("block_size", 4 <= self.block_size <= MAX_BLOCK, f"must be between 4 and {MAX_BLOCK}"),
        )
        for knob, ok, rule in bounds:
            if not ok:
                raise BadInput(f"{name(knob)} {rule}")
        return self


KNOBS = tuple(f.name for f in fields(SamplingParams))
