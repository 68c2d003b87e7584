"""Build a tiny random-weight Whisper model in faster-whisper's (CTranslate2) layout.

The speech-recognition check runs faster-whisper, whose real models live on the Hugging Face
Hub, which tests and CI can't reach. A model with Whisper's real token layout (ids, special
tokens, timestamps) but random weights and a few small layers runs the same loading, decoding,
timestamp and word-alignment code in a fraction of a second. It transcribes noise, and must never
be mistaken for a model.
"""

from __future__ import annotations

import itertools
import json
import shutil
import string
import tempfile
from pathlib import Path

from chatterbox_cli.models.source import RANDOM_MARKER as MARKER
from chatterbox_cli.models.source import is_random_checkpoint

LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jw su"
).split()
"""Whisper's 99 language tokens (v1/v2), in its order: the order fixes their ids."""
GPT2_BPE = 50256
"""Byte-level BPE entries before <|endoftext|> in GPT-2 (and English-only Whisper)."""
TIMESTAMPS = 1501
"""<|0.00|> to <|30.00|>, one per 20 ms."""
N_MELS = 80


def special_tokens() -> list[str]:
    """Whisper's tokens after the BPE ones, in id order (`whisper.tokenizer.get_encoding`)."""
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]


def words():
    """'Ġa' to 'Ġz', then 'aa', 'Ġaa', 'ab', ...: lowercase words with and without a leading space
    (Ġ), each one merge away from a shorter one, so noise decodes to words."""
    for n in itertools.count(1):
        for word in map("".join, itertools.product(string.ascii_lowercase, repeat=n)):
            if n > 1:
                yield word
            yield "Ġ" + word


def tokenizer(multilingual: bool = True):
    """A byte-level BPE of GPT-2's size (50256 entries; multilingual Whisper's adds an empty token,
    id 50256, which CTranslate2 takes as the mark of a multilingual model) followed by Whisper's
    special and timestamp tokens, so every id is where faster-whisper and CTranslate2 expect it:
    51865 tokens multilingual (99 languages), 51864 English-only."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    merges = []
    for token in itertools.islice(words(), GPT2_BPE - len(vocab)):
        merges.append((token[:-1], token[-1]))
        vocab[token] = len(vocab)
    if multilingual:
        vocab[""] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t in special_tokens()])
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>") for i in range(TIMESTAMPS)])
    assert tok.token_to_id("<|endoftext|>") == len(vocab)
    assert tok.get_vocab_size() == len(vocab) + len(special_tokens()) + TIMESTAMPS
    return tok


def random_model(tok, layers: int, width: int, heads: int, seed: int):
    """A `WhisperForConditionalGeneration` of `layers` encoder and decoder layers, `width`-wide,
    with full-size positions (30 s of audio, 448 tokens: what faster-whisper feeds it) and the
    generation config the CTranslate2 converter reads (suppressed tokens, languages, alignment
    heads: the decoder's second half, as the converter's default for unknown models)."""
    import torch
    from faster_whisper.tokenizer import Tokenizer as FasterTokenizer
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    begin_suppressed = [tok.token_to_id("Ġ"), eot]
    config = WhisperConfig(
        vocab_size=tok.get_vocab_size(),
        num_mel_bins=N_MELS,
        d_model=width,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        dtype="float32",  # read by the converter; without it, it asks for `torch_dtype` (a warning)
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config).eval()
    tasks = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>")
    suppressed = [*FasterTokenizer(tok, multilingual=False).non_speech_tokens, sot]
    suppressed += [tok.token_to_id(t) for t in tasks]
    multilingual = tok.get_vocab_size() >= 51865
    languages = {f"<|{code}|>": tok.token_to_id(f"<|{code}|>") for code in LANGUAGES}
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        max_length=config.max_target_positions,
        suppress_tokens=sorted(suppressed),
        begin_suppress_tokens=begin_suppressed,
        no_timestamps_token_id=tok.token_to_id("<|notimestamps|>"),
        is_multilingual=multilingual,
        **({"lang_to_id": languages} if multilingual else {}),
        alignment_heads=[[layer, h] for layer in range(layers // 2, layers) for h in range(heads)],
    )
    return model


def convert(model, tok, out: Path, quantization: str) -> None:
    """CTranslate2's Transformers converter, fed the in-memory model and tokenizer (it reads
    only the config from disk)."""
    from ctranslate2.converters import TransformersConverter

    class InMemory(TransformersConverter):
        def load_model(self, *args, **kwargs):
            return model

        def load_tokenizer(self, *args, **kwargs):
            return tok

    with tempfile.TemporaryDirectory() as config_dir:
        model.config.save_pretrained(config_dir)
        InMemory(config_dir).convert(str(out), quantization=quantization, force=True)


def preprocessor_config() -> dict:
    """Whisper's feature extractor settings; faster-whisper reads them from the model folder."""
    return {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": N_MELS,
        "sampling_rate": 16000,
        "hop_length": 160,
        "chunk_length": 30,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
    }


def build(
    out: Path,
    *,
    multilingual: bool = True,
    layers: int = 2,
    width: int = 64,
    heads: int = 2,
    seed: int = 0,
    quantization: str = "int8",
) -> Path:
    """Write the model into `out` (created; kept if complete and built with these settings,
    replaced if not), ready for `faster_whisper.WhisperModel(str(out))` offline: CTranslate2's
    model.bin, config.json and vocabulary, plus the tokenizer.json (without it faster-whisper
    fetches one from the Hub) and preprocessor_config.json it reads beside them. Returns `out`."""
    out = Path(out)
    settings = {"multilingual": multilingual, "layers": layers, "width": width, "heads": heads}
    settings["quantization"] = quantization
    marker = {"random_weights": True, "family": "whisper", "seed": seed, **settings}
    if is_random_checkpoint(out) and json.loads((out / MARKER).read_text()) == marker:
        return out
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = tokenizer(multilingual)
    convert(random_model(tok, layers, width, heads, seed), tok, tmp, quantization)
    tok.save(str(tmp / "tokenizer.json"))
    (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(), indent=2))
    (tmp / MARKER).write_text(json.dumps(marker) + "\n")
    tmp.rename(out)
    return out


if __name__ == "__main__":
    import sys

    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/random-whisper")))
