"""The Single Language Pack: six Multilingual V3 finetunes, one language or dialect each, each in
its own hub repo (`ResembleAI/Chatterbox-Multilingual-<pack>`); `--pack pt-br` picks one.

A pack repo holds its T3 (`t3_<pack>.safetensors`), its S3Gen (`s3gen_v3`, safetensors or
pickle) and the tokenizer; the voice encoder, the built-in voice and the Cangjie table come from
`ResembleAI/chatterbox`, as the packs' demo Spaces take them. The hub download joins both in one
folder of links (`source.joined_snapshot`), the `from_local` layout a `--model-dir` holds too;
loading takes what that folder has (the pack's S3Gen, else V3's).

Everything else is V3's: no analyzer, its sampling defaults, the last token's audio dropped.
The pack fixes the language: `--language` may only repeat it.

Read from the packs' model cards and demo Spaces as public copies quote them (the hub can't be
reached from here): the file names of hi, pt-br, es-es, es-mx-latam and pt-pt; zh-cmn's T3
name follows the same pattern unseen, and which language tag the packs were trained with is not
stated anywhere (we pass the pack's language, as for V3).
"""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.models.multilingual import (
    CANGJIE,
    S3GEN_FILE,
    TOKENIZER,
    Multilingual,
)
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

PACKS = {
    "zh-cmn": ("zh", "Mandarin Chinese"),
    "es-mx-latam": ("es", "Latin American Spanish"),
    "pt-br": ("pt", "Brazilian Portuguese"),
    "es-es": ("es", "Spanish of Spain"),
    "pt-pt": ("pt", "European Portuguese"),
    "hi": ("hi", "Hindi"),
}
PACK_S3GEN = ("s3gen_v3.safetensors", "s3gen_v3.pt")
BASE_REPO = "ResembleAI/chatterbox"


class Pack(Multilingual):
    """One pack; an instance per pack (the registry holds six)."""

    listed = False

    fallback = None

    def __init__(self, pack: str):
        code, language = PACKS[pack]
        self.pack, self.spoken = pack, language
        self.name = f"multilingual-{pack}"
        self.title = f"the {pack} pack"
        self.summary = f"{language} only: a V3 finetune (Single Language Pack)"
        self.hub_repo = f"ResembleAI/Chatterbox-Multilingual-{pack}"
        self.t3_file = f"t3_{pack.replace('-', '_')}.safetensors"
        self.weights = ("ve.pt", self.t3_file)
        self.hub_patterns = [self.t3_file, *PACK_S3GEN, TOKENIZER]
        self.companion = (BASE_REPO, ["ve.pt", "conds.pt", CANGJIE, TOKENIZER, S3GEN_FILE])
        self.languages = (code,)
        self.voice_family = None  # its own S3Gen prepares its voices

    def s3gen_file(self, directory: Path) -> str | None:
        return next((f for f in (*PACK_S3GEN, S3GEN_FILE) if (Path(directory) / f).is_file()), None)

    def missing_files(self, directory: Path) -> list[str]:
        missing = super().missing_files(directory)
        return missing if self.s3gen_file(directory) else [*missing, PACK_S3GEN[0]]

    def language(self, code: str | None, spell: Spell = as_field):
        spoken = self.languages[0]
        if code and code.strip().lower() != spoken:
            raise BadInput(
                f"the {self.pack} pack speaks {self.spoken} ({spoken}) only; drop "
                f"{spell('language')} {code}, or use {spell('model')} multilingual for the "
                "other languages"
            )
        return super().language(spoken, spell)

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        """Its S3Gen loads leniently, as the packs' Spaces load it: public reports say the
        `s3gen_v3` files lack the speech tokenizer's two fixed buffers (mel filters, window),
        which S3Gen computes itself."""
        ckpt_dir = Path(ckpt_dir)
        s3gen = self.s3gen_file(ckpt_dir)
        return self.load_files(ckpt_dir, device, self.t3_file, s3gen, strict=s3gen == S3GEN_FILE)


PACK_FAMILIES = tuple(Pack(p) for p in PACKS)


def pack_model(model: str, pack: str | None) -> str:
    """The family name `--model M --pack P` means; a pack fits only the multilingual model."""
    if not pack:
        return model
    key = pack.strip().lower()
    if key not in PACKS:
        raise BadInput(f"unknown pack {pack!r}; use one of: {', '.join(PACKS)}")
    if (model or "").lower() not in ("multilingual", f"multilingual-{key}"):
        raise BadInput(
            f"--pack is a Multilingual V3 finetune; use --model multilingual --pack {key}"
        )
    return f"multilingual-{key}"
