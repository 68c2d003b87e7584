"""Build a random-weight, full-size Chatterbox checkpoint (any family) in the `from_local` layout.

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

from chatterbox_cli.models.source import RANDOM_MARKER as MARKER
from chatterbox_cli.models.source import is_random_checkpoint


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


def speech_like(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A source recording: voiced stretches of 0.6-2 s (`reference_clip`) with 0.15-0.5 s
    pauses between them, as speech has (conversion cuts long sources in pauses)."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0.0
    while total < seconds:
        voiced = reference_clip(float(rng.uniform(0.6, 2.0)), sr, seed=int(rng.integers(1 << 30)))
        pause = np.zeros(int(rng.uniform(0.15, 0.5) * sr), dtype=np.float32)
        parts += [voiced, pause]
        total += (len(voiced) + len(pause)) / sr
    return np.concatenate(parts)[: int(seconds * sr)]


def gpt2_tokenizer(out: Path, size: int) -> None:
    """Byte-level BPE of exactly `size` entries, made offline with `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = list(pre_tokenizers.ByteLevel.alphabet())
    byte_chars.sort()
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    merges: list[tuple[str, str]] = []
    n_merges = size - 1 - len(vocab)
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
    assert len(fast) == size, len(fast)
    fast.save_pretrained(out)


def char_tokenizer(
    out: Path,
    size: int,
    start_id: int,
    stop_id: int,
    names: tuple[str, ...] = (),
    ranges: tuple[tuple[int, int], ...] = ((33, 0x3000),),
    file: str = "tokenizer.json",
) -> None:
    """A `tokenizers` file of exactly `size` entries for upstream's `EnTokenizer`/`MTLTokenizer`:
    one id per character of `ranges`, [START]/[STOP] at the ids T3Config expects, [SPACE] and
    [UNK] as upstream's, and `names` (e.g. language tags) as special tokens."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    specials = {stop_id: "[STOP]", start_id: "[START]"}
    names = iter(["[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]", *names])
    chars = iter(
        chr(c)
        for low, high in ranges
        for c in range(low, high)
        if chr(c).isprintable() and not chr(c).isspace()
    )
    vocab = {}
    for i in range(size):
        vocab[specials.get(i) or next(names, None) or next(chars)] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.add_special_tokens([AddedToken(t, special=True) for t in vocab if t.startswith("[")])
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.save(str(out / file))


SCRIPTS = (
    (33, 0x250),  # Latin
    (0x300, 0x370),  # combining marks (NFKD splits accents off)
    (0x370, 0x530),  # Greek, Cyrillic
    (0x590, 0x700),  # Hebrew, Arabic
    (0x900, 0x980),  # Devanagari
    (0x1100, 0x1200),  # Hangul jamo (upstream decomposes Korean into them)
    (0x2010, 0x2060),  # punctuation
    (0x3000, 0x3100),  # CJK punctuation, hiragana, katakana
    (0xFF01, 0xFF5F),  # full-width forms
    (0x4E00, 0xA000),  # Han, as many as fit
)


def mtl_tables(out: Path, tokenizer: str, cangjie: str, size: int, hp, languages) -> None:
    """Multilingual's text files: a character tokenizer with the language tags and Cangjie code
    tokens, and a Cangjie table giving the first Han characters made-up codes."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    tags = tuple(f"[{code}]" for code in languages)
    codes = tuple(f"[cj_{c}]" for c in letters + ".")
    char_tokenizer(
        out, size, hp.start_text_token, hp.stop_text_token, tags + codes, SCRIPTS, tokenizer
    )
    table = [
        f"{chr(0x4E00 + i)}\t{letters[i % 26]}{letters[i // 26 % 26]}{letters[i // 676 % 26]}"
        for i in range(0x5200)
    ]
    (out / cangjie).write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")


def build(out: Path, family: str = "turbo", seed: int = 0) -> Path:
    """Write `family`'s checkpoint into `out` (created; replaced if incomplete). Returns `out`."""
    import torch

    from chatterbox_cli.models import get

    out = Path(out)
    if is_random_checkpoint(out):
        return out
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.manual_seed(seed)
    spec = get(family)
    write_family(spec, tmp, seed)
    (tmp / MARKER).write_text(
        json.dumps({"random_weights": True, "family": family, "seed": seed}) + "\n"
    )
    tmp.rename(out)
    return out


def save_random(module, path: Path, extra: dict | None = None) -> None:
    """A module's (random) weights as safetensors, or as a torch pickle for a `.pt` name, as a
    checkpoint file would hold them."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    state.update(extra or {})
    if path.suffix == ".pt":
        torch.save(state, path)
    else:
        save_file(state, str(path))


def write_modules(
    out: Path, seed: int, t3, t3_file: str, s3gen_file: str, meanflow: bool, tts_class
) -> None:
    """A family's random voice encoder, `t3` and S3Gen in its file names, and its built-in voice
    (`conds.pt`): upstream `prepare_conditionals` of `tts_class` on a synthetic clip."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.voice_encoder import VoiceEncoder

    ve = VoiceEncoder().eval()
    save_random(ve, out / ("ve.pt" if s3gen_file.endswith(".pt") else "ve.safetensors"))
    save_random(t3, out / t3_file)
    s3gen = S3Gen(meanflow=meanflow).eval()
    extra = {
        "tokenizer._mel_filters": s3gen.tokenizer._mel_filters.contiguous(),
        "tokenizer.window": s3gen.tokenizer.window.contiguous(),
    }
    save_random(s3gen, out / s3gen_file, extra)
    ref = out / "reference.wav"
    sf.write(ref, reference_clip(seed=seed), 24000)
    tts = tts_class(t3, s3gen, ve, None, "cpu")
    with torch.inference_mode():
        tts.prepare_conditionals(str(ref))
    tts.conds.save(out / "conds.pt")
    ref.unlink()


VALID_BOOST = 8.0
"""Multilingual and Flash: speech-head rows of S3Gen's tokens scaled up and the others zeroed,
so T3 samples valid speech tokens as a trained one does. Multilingual's upstream `generate()`
hands every id to S3Gen (ids >= 6561 crash it), so only then can it be compared with ours."""


def write_family(family, out: Path, seed: int) -> None:
    """Random-weight modules in `family`'s checkpoint layout (the files its `load` reads)."""
    from chatterbox_cli.models import flash, multilingual, packs, standard, turbo

    if isinstance(family, turbo.Turbo):
        _write_turbo(family, out, seed)
    elif isinstance(family, multilingual.MultilingualV2):
        _write_multilingual(family, out, seed)
    elif isinstance(family, standard.Standard):
        from chatterbox.models.t3 import T3
        from chatterbox.tts import ChatterboxTTS

        t3 = T3().eval()
        write_modules(out, seed, t3, standard.T3_FILE, standard.S3GEN_FILE, False, ChatterboxTTS)
        char_tokenizer(out, standard.TEXT_VOCAB, t3.hp.start_text_token, t3.hp.stop_text_token)
    elif isinstance(family, flash.Flash):
        _write_flash(out, seed)
    else:
        raise ValueError(f"no random checkpoint layout for {family.name}")
    if isinstance(family, packs.Pack) or not isinstance(family, multilingual.Multilingual):
        return
    import torch

    torch.manual_seed(seed + 1)  # V3's hub repo holds V2's T3 beside it (another random one)
    save_random(random_mtl_t3(), out / multilingual.V2_T3_FILE)


def _write_turbo(family, out: Path, seed: int) -> None:
    from chatterbox.models.t3 import T3
    from chatterbox.tts_turbo import ChatterboxTurboTTS

    from chatterbox_cli.models import turbo

    t3 = T3(turbo.turbo_config(family.backbone)).eval()
    write_modules(out, seed, t3, family.t3_file, turbo.S3GEN_FILE, True, ChatterboxTurboTTS)
    gpt2_tokenizer(out, turbo.TEXT_VOCAB)


def _write_flash(out: Path, seed: int) -> None:
    """The package's own classes: its T3 (with the [MASK] row) in `t3_flash.safetensors`, a
    meanflow S3Gen, Standard's tokenizer layout; `conds.pt` stands for the file the hub download
    joins in from ResembleAI/chatterbox (Flash's repo has none)."""
    from chatterbox_flash import ChatterboxFlashT3, ChatterboxFlashTTS

    from chatterbox_cli.models import flash, standard

    t3 = ChatterboxFlashT3().eval()
    boost_valid(t3)
    write_modules(out, seed, t3, flash.T3_FILE, flash.S3GEN_FILE, True, ChatterboxFlashTTS)
    char_tokenizer(out, standard.TEXT_VOCAB, t3.hp.start_text_token, t3.hp.stop_text_token)


def _write_multilingual(family, out: Path, seed: int) -> None:
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS

    from chatterbox_cli.models import multilingual as mtl
    from chatterbox_cli.models import packs

    s3gen = packs.PACK_S3GEN[1] if isinstance(family, packs.Pack) else mtl.S3GEN_FILE
    t3 = random_mtl_t3()
    write_modules(out, seed, t3, family.t3_file, s3gen, False, ChatterboxMultilingualTTS)
    mtl_tables(out, mtl.TOKENIZER, mtl.CANGJIE, mtl.TEXT_VOCAB, t3.hp, family.languages)


def random_mtl_t3():
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config

    return boost_valid(T3(T3Config.multilingual()).eval())


def boost_valid(t3):
    """See VALID_BOOST (Flash: so a block's tokens are S3Gen's, as a trained model's are, and
    streamed pieces come when they would)."""
    import torch

    from chatterbox_cli.models import SPEECH_VOCAB

    with torch.no_grad():
        t3.speech_head.weight[:SPEECH_VOCAB] *= VALID_BOOST
        t3.speech_head.weight[SPEECH_VOCAB:] = 0
    return t3


if __name__ == "__main__":
    import sys

    family = sys.argv[2] if len(sys.argv) > 2 else "turbo"
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else f".cache/random-{family}"), family))
