"""Chatterbox-Flash (`chatterbox_flash.ChatterboxFlashTTS`): Standard's 0.5B Llama T3 made a
block-diffusion decoder (16 speech tokens a block in at most 10 parallel steps, guidance as a
doubled batch), English, meanflow S3Gen (2 steps).

The `chatterbox-flash` package does the work: its T3 and `generate()` loop (driven block by block
in `t3/blocks.py`), its text cleaner, its loader's file layout; upstream S3Gen in meanflow mode,
then our loudness, Perth watermark (the package adds none) and provenance.

Voices: the hub repo ships no `conds.pt`, so the built-in voice is Standard's (`conds.pt` of
ResembleAI/chatterbox, joined in as a companion file): Flash conditions exactly as Standard does
(same voice encoder, 150-token prompt, emotion input, S3Gen reference), so Standard's voice files
condition it too. Exaggeration is applied per request, as for Standard.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from chatterbox_cli.models.base import SPEECH_VOCAB, Family
from chatterbox_cli.models.loading import assign_t3, load_conds, load_s3gen, load_ve, t3_state
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

T3_FILE = "t3_flash.safetensors"
S3GEN_FILE = "s3gen.safetensors"
ENGINES = {
    "flashinfer": (("flashinfer",), "pip install 'chatterbox-cli[flashinfer]' (CUDA)"),
    "mlx": (("mlx", "mlx_lm"), "pip install mlx mlx-lm (Apple silicon)"),
}
"""The package's optional engines (`CHATTERBOX_FLASH_ENGINE`): the modules each needs."""


def t3_skeleton(block_size: int = 16):
    """`ChatterboxFlashT3` built as Standard's T3 is (`standard.t3_skeleton`)."""
    from chatterbox_flash import ChatterboxFlashT3

    from chatterbox_cli.models.standard import t3_skeleton as llama_skeleton

    return llama_skeleton(make=lambda: ChatterboxFlashT3(drf_block_size=block_size))


def t3_dtype(device: str):
    """The package loads T3 in bf16; we do on CUDA, and keep float32 elsewhere (a CPU's bf16
    matmuls are slower, and the CPU tests compare in float32)."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


class Flash(Family):
    name = "flash"
    hub_repo = "ResembleAI/chatterbox-flash"
    size = "500M"
    summary = "English, parallel: Standard's T3 decoding 16 tokens a block (--steps, --block-size)"
    title = "Chatterbox-Flash"
    weights = ("ve.safetensors", T3_FILE, S3GEN_FILE)
    t3_file = T3_FILE
    tokenizer_files = ("tokenizer.json",)
    hub_patterns = [*weights, "tokenizer.json"]
    """What `ChatterboxFlashTTS.from_pretrained` fetches."""
    companion = ("ResembleAI/chatterbox", ["conds.pt"])
    defaults = SamplingParams(temperature=0.6, cfg_weight=1.0, exaggeration=0.5)
    """`ChatterboxFlashTTS.generate()`'s: temperature 0.6, cfg_scale 1.0, num_steps 10, block 16."""
    knobs = frozenset({"temperature", "cfg_weight", "exaggeration", "steps", "block_size"})
    cfm_steps = 2
    max_cfm_steps = 2
    meanflow = True
    prompt_tokens = 150
    voice_family = "standard"
    rows_per_group = 2
    upstream_t3 = "generate"
    upstream_tokenize = "text_to_tokens"

    def check_runtime(self, runtime, spell: Spell = as_field) -> None:
        """Also no `overlap`, and the engine the package will pick: one it can't import is a
        line now, not an ImportError after loading."""
        super().check_runtime(runtime, spell)
        if runtime.overlap:
            raise BadInput(
                f"{spell('overlap')} is not available for the flash model: its sampling draws "
                "from torch's global RNG, as the package's does, which S3Gen's thread would share"
            )
        chosen = os.environ.get("CHATTERBOX_FLASH_ENGINE", "").strip().lower()
        if chosen in ENGINES:
            modules, how = ENGINES[chosen]
            if any(importlib.util.find_spec(m) is None for m in modules):
                raise BadInput(
                    f"CHATTERBOX_FLASH_ENGINE={chosen} needs {', '.join(modules)}: {how}, "
                    "or unset it (the torch engine runs everywhere)"
                )

    def stream_unit(self, params: SamplingParams) -> int:
        """A piece per block: a block's tokens come at once, and a piece needs the 3 tokens
        after it (S3Gen's lookahead), so each block but the first ends one."""
        return max(4, params.block_size - 3)

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        import gc

        import perth
        from chatterbox.models.tokenizers import EnTokenizer
        from chatterbox_flash import ChatterboxFlashTTS, Conditionals

        ckpt_dir = Path(ckpt_dir)
        # the package loads this S3Gen with strict=False; so do we
        s3gen = load_s3gen(ckpt_dir / S3GEN_FILE, device, meanflow=True, strict=False)
        ve = load_ve(ckpt_dir / "ve.safetensors", device)
        t3 = t3_skeleton()
        assign_t3(t3, t3_state(ckpt_dir / T3_FILE), {"text_head.weight"})
        dtype = t3_dtype(device)
        t3.to(device=device, dtype=dtype)
        gc.collect()
        t3.prime_uncond_block_prior(dtype, device)  # as from_local: out of the first request
        tokenizer = EnTokenizer(str(ckpt_dir / "tokenizer.json"))
        conds = load_conds(ckpt_dir, device, Conditionals)
        tts = ChatterboxFlashTTS(t3, s3gen, ve, tokenizer, device, conds=conds)
        tts.watermarker = perth.PerthImplicitWatermarker()
        return tts

    def text_tokens(self, tts, text: str, language: str = "en"):
        """The package's cleaner (`en_us_cleaner`), EnTokenizer, SOT/EOT: (1, L + 2)."""
        return tts._encode_text(text, normalize_text=True).long()

    def t3_cond(self, conds, params: SamplingParams):
        """Standard's swap of the exaggeration into the prepared voice."""
        from chatterbox_cli.models.standard import STANDARD

        return STANDARD.t3_cond(conds, params)

    def prepare_reference(self, tts, path: Path):
        """The package's `prepare_conditionals`, kept in float32 (it casts to T3's dtype, bf16 on
        CUDA): a voice file then reads anywhere, and each decode casts a copy."""
        import torch

        conds = tts.prepare_conditionals(str(path), exaggeration=self.defaults.exaggeration)
        conds.t3 = conds.t3.to(dtype=torch.float32)
        return conds

    def decode(self, t3, row, run):
        from chatterbox_cli.models.t3.blocks import decode

        return decode(t3, row, run)

    def decode_batch(self, t3, rows, run):
        from chatterbox_cli.models.t3.blocks import decode_batch

        return decode_batch(t3, rows, run)

    def speech_tokens(self, tokens: list[int]) -> list[int]:
        """As the package's `_trim_to_eos`: up to the first stop, then codec ids only."""
        from chatterbox_cli.models.t3.blocks import until_stop

        return [t for t in until_stop(tokens) if t < SPEECH_VOCAB]

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        from chatterbox_cli.models.t3.blocks import flash_cond, upstream_kwargs

        tts.t3.set_block_size(params.block_size)
        tts.conds.t3 = flash_cond(tts.t3, self.t3_cond(tts.conds, params))
        return tts.generate(
            text,
            exaggeration=params.exaggeration,
            n_cfm_timesteps=self.cfm_steps,
            **upstream_kwargs(params, tts.device),
        ).unsqueeze(0)

    def upstream_cap(self, cap: int) -> dict:
        """T3's budget (`generate()` passes `min(max(6 * text tokens, 300), max_speech_tokens)`;
        a cap under 300 tokens, as the bench's, is the budget either way)."""
        return {"total_speech_len": cap}


FLASH = Flash()
