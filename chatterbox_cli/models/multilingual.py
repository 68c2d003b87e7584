"""Multilingual (`ChatterboxMultilingualTTS`): Standard's Llama T3 with a 23-language text
vocabulary and a language tag. Two T3 files in one hub repo, as upstream main has them:

- `multilingual` is V3 (`t3_mtl23ls_v3.safetensors`, Resemble's recommendation; upstream main's
  `t3_model="v3"`): no alignment analyzer (sdpa attention), repetition penalty 1.2, and the audio
  of the last speech token dropped (it comes just before the stop token and decodes to ~40 ms of
  noise). Not in chatterbox-tts 0.1.7: its baseline `generate` is 0.1.7's with the analyzer off
  and that cut.
- `multilingual-v2` is 0.1.7's model as it was: the analyzer on the stop token, penalty 2.0.

What differs from Standard, and why:
- Files are upstream's: `ve.pt` and `s3gen.pt` are torch pickles (read with `weights_only=True`,
  memory-mapped), S3Gen loads strictly.
- The tokenizer is upstream's `MTLTokenizer`, built without its constructor, which downloads a
  pkuseg model and fetches `Cangjie5_TC.json` from the hub (so offline it fails for every
  language). Ours reads the Cangjie table from the model folder and builds pkuseg only when
  Chinese is spoken, from pkuseg's model on disk, or says how to get it.
- V2's T3 runs eager attention in every layer, as upstream's first `generate()` leaves it: the
  analyzer reads attention weights, which sdpa doesn't give (and the two differ numerically).
- Upstream `generate()` leaves its analyzer's hooks behind on every call; `generate` here
  removes them (and the attention-output switch) again.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatterbox_cli.models.base import SAMPLES_PER_TOKEN
from chatterbox_cli.models.loading import assign_t3, load_conds, load_s3gen, load_ve, t3_state
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.standard import Standard, t3_skeleton
from chatterbox_cli.runtime.device import quiet_upstream_logs
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

T3_FILE = "t3_mtl23ls_v3.safetensors"
V2_T3_FILE = "t3_mtl23ls_v2.safetensors"
S3GEN_FILE = "s3gen.pt"
TOKENIZER = "grapheme_mtl_merged_expanded_v1.json"
CANGJIE = "Cangjie5_TC.json"
TEXT_VOCAB = 2454
PKUSEG_MODEL = "spacy_ontonotes"
"""The pkuseg model `pkuseg()` uses by default (a zip in PKUSEG_HOME, ~/.pkuseg)."""


def pkuseg_model() -> Path:
    from spacy_pkuseg.config import config

    return Path(config.pkuseg_home) / f"{PKUSEG_MODEL}.zip"


def check_pkuseg() -> None:
    if not pkuseg_model().is_file():
        raise BadInput(
            f"Chinese needs pkuseg's word segmentation model ({pkuseg_model()}), which is not "
            "on this machine; fetch it once with network: "
            "python -c 'import spacy_pkuseg; spacy_pkuseg.pkuseg()' (PKUSEG_HOME sets the folder)"
        )


def _cangjie(table: Path):
    """Upstream's Chinese converter with its table read from `table` and its segmenter built on
    first use, from disk only."""
    from chatterbox.models.tokenizers.tokenizer import ChineseCangjieConverter

    class OfflineCangjie(ChineseCangjieConverter):
        def __init__(self):
            self.word2cj, self.cj2word, self.segmenter = {}, {}, None
            self.ready = False

        def _load_cangjie_mapping(self, model_dir=None):
            if not table.is_file():
                raise BadInput(f"Chinese needs {CANGJIE} in the model folder ({table.parent})")
            for entry in json.loads(table.read_text(encoding="utf-8")):
                glyph, code = entry.split("\t")[:2]
                self.word2cj[glyph] = code
                self.cj2word.setdefault(code, []).append(glyph)

        def _init_segmenter(self):
            from spacy_pkuseg import pkuseg

            check_pkuseg()
            self.segmenter = pkuseg()

        def __call__(self, text):
            if not self.ready:
                self._load_cangjie_mapping()
                self._init_segmenter()
                self.ready = True
            return super().__call__(text)

    return OfflineCangjie()


def mtl_tokenizer(ckpt_dir: Path):
    """Upstream's `MTLTokenizer`, set up as its `__init__` does, minus the network."""
    from chatterbox.models.tokenizers import MTLTokenizer
    from tokenizers import Tokenizer

    tokenizer = MTLTokenizer.__new__(MTLTokenizer)
    tokenizer.tokenizer = Tokenizer.from_file(str(ckpt_dir / TOKENIZER))
    tokenizer.cangjie_converter = _cangjie(ckpt_dir / CANGJIE)
    tokenizer.check_vocabset_sot_eot()
    return tokenizer


class MultilingualV2(Standard):
    name = "multilingual-v2"
    title = "Multilingual V2"
    size = "500M"
    summary = "23 languages, 2025's T3 with upstream's alignment analyzer"
    t3_file = V2_T3_FILE
    weights = ("ve.pt", V2_T3_FILE, S3GEN_FILE)
    tokenizer_files = (TOKENIZER,)
    hub_patterns = ["ve.pt", V2_T3_FILE, S3GEN_FILE, TOKENIZER, "conds.pt", CANGJIE]
    """Exactly what upstream's `from_pretrained` fetches."""
    vc_s3gen = None
    """Upstream converts with the English repo's S3Gen only (`ChatterboxVC`)."""
    defaults = SamplingParams(temperature=0.8, top_p=1.0, repetition_penalty=2.0, min_p=0.05)
    align = True
    voice_family = "multilingual"
    languages = tuple(
        "ar da de el en es fi fr he hi it ja ko ms nl no pl pt ru sv sw tr zh".split()
    )

    def language(self, code: str | None, spell: Spell = as_field):
        lang = super().language(code, spell)
        if lang.code == "zh":
            check_pkuseg()
        return lang

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        return self.load_files(Path(ckpt_dir), device, self.t3_file, S3GEN_FILE)

    def load_files(self, ckpt_dir: Path, device: str, t3_file: str, s3gen_file: str, strict=True):
        import gc

        from chatterbox.models.t3.modules.t3_config import T3Config
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS, Conditionals

        s3gen = load_s3gen(ckpt_dir / s3gen_file, device, meanflow=False, strict=strict)
        ve = load_ve(ckpt_dir / "ve.pt", device)
        t3 = t3_skeleton(T3Config.multilingual())
        assign_t3(t3, t3_state(ckpt_dir / t3_file), {"text_head.weight"})
        if self.align:  # the analyzer reads attention weights, which only eager gives
            t3.tfmr.config._attn_implementation = "eager"
        t3.to(device)
        gc.collect()
        quiet_upstream_logs()
        tokenizer = mtl_tokenizer(ckpt_dir)
        conds = load_conds(ckpt_dir, device, Conditionals)
        return ChatterboxMultilingualTTS(t3, s3gen, ve, tokenizer, device, conds=conds)

    def text_tokens(self, tts, text: str, language: str = "en"):
        """mtl punc_norm, `MTLTokenizer` with the language tag, SOT/EOT: (1, L + 2)."""
        import torch.nn.functional as F
        from chatterbox.mtl_tts import punc_norm

        hp = tts.t3.hp
        ids = tts.tokenizer.text_to_tokens(punc_norm(text), language_id=language.lower())
        ids = F.pad(F.pad(ids, (1, 0), value=hp.start_text_token), (0, 1), value=hp.stop_text_token)
        return ids.to(tts.device).long()

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        from chatterbox_cli.models.t3.align import removing_new_hooks

        with removing_new_hooks(tts.t3.tfmr):
            return tts.generate(text, language, **self.generate_kwargs(params))


class Multilingual(MultilingualV2):
    name = "multilingual"
    title = "Multilingual V3"
    summary = "23 languages (--language), V3: Resemble's recommended multilingual model"
    t3_file = T3_FILE
    weights = ("ve.pt", T3_FILE, S3GEN_FILE)
    hub_patterns = ["ve.pt", T3_FILE, S3GEN_FILE, TOKENIZER, "conds.pt", CANGJIE]
    """What upstream main's `from_pretrained(t3_model="v3")` fetches."""
    defaults = SamplingParams(temperature=0.8, top_p=1.0, repetition_penalty=1.2, min_p=0.05)
    align = False
    drops_last_token = True
    fallback = "multilingual-v2"

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        """Upstream main's V3 `generate()` from 0.1.7's: no analyzer, the last token's audio
        cut (after the watermark, where upstream cuts before it: the same work)."""
        from chatterbox_cli.models.t3.align import analyzer_off

        with analyzer_off():
            wav = tts.generate(text, language, **self.generate_kwargs(params))
        return wav[..., : self.kept_samples(wav.shape[-1] // SAMPLES_PER_TOKEN)]


MULTILINGUAL = Multilingual()
MULTILINGUAL_V2 = MultilingualV2()
