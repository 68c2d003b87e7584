"""Nano (`ChatterboxTurboTTS.from_local(dir, nano=True)` on upstream main): Turbo on a GPT-2
small T3 (12 layers, 768 wide, 12 heads; ~110M parameters), for CPUs and laptops.

Everything else is Turbo's: tokenizer, voice encoder, meanflow S3Gen, sampling, paralinguistic
tags, our decode loops, the voice prefix cache, int8 and the static-cache decode; a Turbo voice
file conditions Nano as it is. Not in chatterbox-tts 0.1.7: its T3 is built from 0.1.7's modules
with upstream main's `GPT2_small` backbone entry (see `turbo.known_backbone`).
"""

from __future__ import annotations

from chatterbox_cli.models.turbo import S3GEN_FILE, Turbo

T3_FILE = "t3_nano_v1.safetensors"


class Nano(Turbo):
    name = "nano"
    hub_repo = "ResembleAI/chatterbox-nano"
    size = "110M"
    summary = "English, fastest: Turbo on a GPT-2 small T3, for CPUs and laptops"
    t3_file = T3_FILE
    backbone = "GPT2_small"
    weights = ("ve.safetensors", T3_FILE, S3GEN_FILE)
    voice_family = "turbo"


NANO = Nano()
