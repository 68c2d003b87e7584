"""Standard (`ChatterboxTTS`): 0.5B Llama T3 with classifier-free guidance and an emotion
`exaggeration` control, English, plain S3Gen flow (10 Euler steps with CFG).

Our decode loops for it are in `t3/cfg.py`. Exaggeration is part of T3's conditioning only
(`emotion_adv`), so one prepared voice serves every exaggeration: `t3_cond` swaps the value in
the way upstream `generate()` does, without touching the reference clip again.
"""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.models.base import SPEECH_VOCAB, Family
from chatterbox_cli.models.loading import assign_t3, load_conds, load_s3gen, load_ve, t3_state
from chatterbox_cli.models.sampling import SamplingParams

T3_FILE = "t3_cfg.safetensors"
S3GEN_FILE = "s3gen.safetensors"
TEXT_VOCAB = 704


def t3_skeleton(hp=None, make=None):
    """T3 (`hp`: its config, Standard's by default; or what `make()` builds, a T3 subclass) on
    the meta device with Llama's rotary buffers (not in any state dict) rebuilt, and without
    `text_head`, which only training uses."""
    import torch
    from chatterbox.models.t3 import T3
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    with torch.device("meta"):
        t3 = make() if make is not None else T3(hp)
    t3.tfmr.rotary_emb = LlamaRotaryEmbedding(config=t3.tfmr.config)
    del t3.text_head
    return t3


class Standard(Family):
    name = "standard"
    hub_repo = "ResembleAI/chatterbox"
    size = "500M"
    summary = "English, expressive: classifier-free guidance, --exaggeration"
    weights = ("ve.safetensors", T3_FILE, S3GEN_FILE)
    t3_file = T3_FILE
    tokenizer_files = ("tokenizer.json",)
    hub_patterns = [*weights, "tokenizer.json", "conds.pt"]
    """Exactly what `from_pretrained` fetches: the repo also holds Multilingual's files."""
    defaults = SamplingParams(temperature=0.8, top_p=1.0, repetition_penalty=1.2, min_p=0.05)
    knobs = frozenset(
        {"temperature", "top_p", "min_p", "repetition_penalty", "cfg_weight", "exaggeration"}
    )
    cfm_steps = 10
    max_cfm_steps = 10
    vc_s3gen = S3GEN_FILE
    prompt_tokens = 150
    upstream_t3 = "inference"
    upstream_tokenize = "text_to_tokens"
    rows_per_group = 2
    align = False
    """Run upstream's alignment analyzer on the stop token (Multilingual's `generate()` does)."""

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        import gc

        from chatterbox.models.tokenizers import EnTokenizer
        from chatterbox.tts import ChatterboxTTS

        ckpt_dir = Path(ckpt_dir)
        # upstream loads this S3Gen with strict=False; the real files can't be checked here
        s3gen = load_s3gen(ckpt_dir / S3GEN_FILE, device, meanflow=False, strict=False)
        ve = load_ve(ckpt_dir / "ve.safetensors", device)
        t3 = t3_skeleton()
        assign_t3(t3, t3_state(ckpt_dir / self.t3_file), {"text_head.weight"})
        t3.to(device)
        gc.collect()
        tokenizer = EnTokenizer(str(ckpt_dir / "tokenizer.json"))
        conds = load_conds(ckpt_dir, device)
        return ChatterboxTTS(t3, s3gen, ve, tokenizer, device, conds=conds)

    def text_tokens(self, tts, text: str, language: str = "en"):
        """punc_norm, EnTokenizer, then SOT/EOT as `generate()` pads them: (1, L + 2)."""
        import torch.nn.functional as F
        from chatterbox.tts import punc_norm

        hp = tts.t3.hp
        ids = tts.tokenizer.text_to_tokens(punc_norm(text)).to(tts.device)
        ids = F.pad(F.pad(ids, (1, 0), value=hp.start_text_token), (0, 1), value=hp.stop_text_token)
        return ids.long()

    def t3_cond(self, conds, params: SamplingParams):
        import torch
        from chatterbox.models.t3.modules.cond_enc import T3Cond

        cond = conds.t3
        if cond.emotion_adv is not None and float(cond.emotion_adv[0, 0, 0]) == float(
            torch.tensor(params.exaggeration, dtype=cond.emotion_adv.dtype)
        ):
            return cond
        device = cond.speaker_emb.device
        return T3Cond(
            speaker_emb=cond.speaker_emb,
            cond_prompt_speech_tokens=cond.cond_prompt_speech_tokens,
            emotion_adv=params.exaggeration * torch.ones(1, 1, 1),
        ).to(device=device)

    def prepare_reference(self, tts, path: Path):
        tts.prepare_conditionals(str(path), exaggeration=self.defaults.exaggeration)
        return tts.conds

    def decode(self, t3, row, run):
        from chatterbox_cli.models.t3.cfg import decode

        return decode(t3, row, run, self.align)

    def decode_batch(self, t3, rows, run):
        from chatterbox_cli.models.t3.cfg import decode_batch

        return decode_batch(t3, rows, run, self.align)

    def speech_tokens(self, tokens: list[int]) -> list[int]:
        """As `generate()`: `drop_invalid_tokens` starts after a sampled start token, then
        ids >= 6561 go."""
        start = SPEECH_VOCAB
        if start in tokens:
            tokens = tokens[tokens.index(start) + 1 :]
        return [t for t in tokens if t < SPEECH_VOCAB]

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        return tts.generate(text, **self.generate_kwargs(params))

    @staticmethod
    def generate_kwargs(params: SamplingParams) -> dict:
        """Our params as the keyword arguments of the Llama families' `generate()`."""
        return {
            "repetition_penalty": params.repetition_penalty,
            "min_p": params.min_p,
            "top_p": params.top_p,
            "exaggeration": params.exaggeration,
            "cfg_weight": params.cfg_weight,
            "temperature": params.temperature,
        }

    def upstream_cap(self, cap: int) -> dict:
        return {"max_new_tokens": cap}


STANDARD = Standard()
