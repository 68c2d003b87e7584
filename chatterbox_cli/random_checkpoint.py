"""Build a random-weight, full-size Chatterbox Turbo checkpoint in the `from_local` layout.

Real weights live on the Hugging Face Hub, which tests, CI and offline benchmarks can't reach.
The architecture is what costs time and memory, not the values, so a checkpoint with random
weights exercises the whole real pipeline (upstream modules, real loading code) at full size.
It speaks noise, rarely emits the stop token, and must never be mistaken for a model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from chatterbox_cli.loading import TEXT_VOCAB as TEXT_VOCAB_SIZE

MARKER = "RANDOM_WEIGHTS.json"

FILES = ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors")


def is_random_checkpoint(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def reference_clip(seconds: float = 6.0, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """A synthetic voiced signal (glottal pulses, vibrato, syllable envelope) as a voice prompt."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = (
        100 + 60 * rng.random() + 15 * np.sin(2 * np.pi * 0.7 * t) + 5 * np.sin(2 * np.pi * 5.5 * t)
    )
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t - np.pi / 2)) ** 1.5
    wav = voiced * envelope + 0.02 * rng.standard_normal(t.size)
    return (0.3 * wav / np.max(np.abs(wav))).astype(np.float32)


def _tokenizer(out: Path) -> None:
    """Byte-level BPE of exactly TEXT_VOCAB_SIZE entries, made offline with `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = list(pre_tokenizers.ByteLevel.alphabet())
    byte_chars.sort()
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    merges: list[tuple[str, str]] = []
    n_merges = TEXT_VOCAB_SIZE - 1 - len(vocab)
    for a in byte_chars:
        for b in byte_chars:
            if len(merges) == n_merges:
                break
            merges.append((a, b))
            vocab[a + b] = len(vocab)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    assert len(fast) == TEXT_VOCAB_SIZE, len(fast)
    fast.save_pretrained(out)


def build(out: Path, seed: int = 0, with_conds: bool = True) -> Path:
    """Write the checkpoint into `out` (created; replaced if incomplete). Returns `out`."""
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from safetensors.torch import save_file

    from chatterbox_cli.loading import turbo_config

    out = Path(out)
    if is_random_checkpoint(out):
        return out
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    torch.manual_seed(seed)

    def dump(module: torch.nn.Module, name: str, extra: dict | None = None) -> None:
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        state.update(extra or {})
        save_file(state, str(tmp / name))

    ve = VoiceEncoder().eval()
    dump(ve, "ve.safetensors")

    t3 = T3(turbo_config()).eval()  # the hyper-parameters from_local sets for Turbo
    dump(t3, "t3_turbo_v1.safetensors")

    s3gen = S3Gen(meanflow=True).eval()
    dump(
        s3gen,
        "s3gen_meanflow.safetensors",
        {
            "tokenizer._mel_filters": s3gen.tokenizer._mel_filters.contiguous(),
            "tokenizer.window": s3gen.tokenizer.window.contiguous(),
        },
    )
    _tokenizer(tmp)

    if with_conds:
        import soundfile as sf

        ref = tmp / "reference.wav"
        sf.write(ref, reference_clip(seed=seed), 24000)
        del t3.tfmr.wte  # as from_local does
        tts = ChatterboxTurboTTS(t3, s3gen, ve, None, "cpu")
        with torch.inference_mode():
            tts.prepare_conditionals(str(ref))
        tts.conds.save(tmp / "conds.pt")
        ref.unlink()

    (tmp / MARKER).write_text(
        json.dumps({"random_weights": True, "seed": seed, "files": list(FILES)}) + "\n"
    )
    tmp.rename(out)
    return out


if __name__ == "__main__":
    import sys

    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/random-turbo")))
