"""The one voice store (`synth/voices.py`): a voice is prepared once per version of its file,
again when the file changes, and the least recently used go past the memory bound."""

import os

import soundfile as sf
import torch

from chatterbox_cli.synth.voices import VoiceStore
from chatterbox_cli.testing.checkpoints import reference_clip


def _clip(path, seed):
    sf.write(path, reference_clip(6.5, seed=seed), 24000)
    return path


def test_prepared_once_per_version_and_bounded(tmp_path):
    made = []

    def prepare(spec):
        made.append(spec.path.name)
        return {"t3": torch.zeros(1024, 256)}  # 1 MiB of float32

    store = VoiceStore("turbo", prepare, max_mb=2.5)
    a, b, c = (_clip(tmp_path / f"{n}.wav", i) for i, n in enumerate("abc"))
    first = store.get(str(a))
    assert store.get(a) is first and made == ["a.wav"]  # str or Path, the same file
    assert first.spec.kind == "reference" and first.nbytes == 1024 * 256 * 4
    _clip(a, 9)  # re-recorded: same name, new content and time
    os.utime(a, ns=(1, 1))
    assert store.get(a) is not first and made == ["a.wav", "a.wav"]
    store.get(b)
    store.get(a)  # a is now the most recently used
    store.get(c)  # 3 MiB > 2.5: b, the least recently used, goes
    store.get(a)
    assert made == ["a.wav", "a.wav", "b.wav", "c.wav"]
    store.get(b)
    assert made[-1] == "b.wav"
