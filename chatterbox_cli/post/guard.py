"""Symptoms of a sentence group gone wrong that need no judgement of the voice: T3 ran to its
cap without stopping (runaway), a speech rate no speaker has (truncated or babbling), long
silence inside the group, or near-silent audio.

Rates are in spoken characters per second of audio (`languages.spoken_length`: a Han
character or Hangul block counts 3, kana 2, so syllable-timed scripts land on the same
scale). Read English runs at 150-180 words a minute, 13-16 characters a second (audiobook
narration); conversational syllable rates across languages are 4-8 a second (Pellegrino,
Coupé & Marsico, Language 87(3), 2011; Yuan, Liberman & Cieri, Interspeech 2006), i.e. about
10-25 characters a second here. The band below is that range with a factor of ~2 of slack
each way, so only clear failures are flagged.
"""

from __future__ import annotations

import numpy as np

from chatterbox_cli.text.languages import spoken_length

RATE_MIN = 5.0
"""Slower than this (spoken characters per second) is run-on or babble."""
RATE_MAX = 40.0
"""Faster than this, speech was cut short (the text can't fit in the audio)."""
SILENCE_S = 1.5
"""A pause longer than this inside a group (20 ms frames 40 dB below the group's loudest)."""
QUIET_DBFS = -50.0
"""A group whose loudest 20 ms frame is below this is near-silent."""
FRAME_S = 0.02


def flags(chunk, user_cap: bool = False) -> list[str]:
    """What is out of line in one synthesized group. With a cap the user chose
    (`--max-new-tokens`), hitting it and the speed it implies are what was asked for."""

    found = []
    if not chunk.stopped and not user_cap:
        found.append("runaway")
    seconds = chunk.duration_s
    spoken = spoken_length(chunk.group.text)
    if seconds <= 0:
        return [*found, "no-audio"]
    rate = spoken / seconds
    if rate > RATE_MAX and not user_cap:
        found.append("too-fast")
    elif rate < RATE_MIN and spoken >= 10:
        found.append("too-slow")
    found.extend(_level_flags(np.asarray(chunk.audio, dtype=np.float32), chunk.sample_rate))
    return found


def _level_flags(audio: np.ndarray, sr: int) -> list[str]:
    n = int(FRAME_S * sr)
    frames = len(audio) // n
    if frames == 0:
        return ["near-silent"]
    rms = np.sqrt(np.mean(audio[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-20)
    db = 20 * np.log10(rms)
    if db.max() < QUIET_DBFS:
        return ["near-silent"]
    quiet = db < db.max() - 40
    inner = np.flatnonzero(~quiet)
    run = longest_run(quiet[inner[0] : inner[-1] + 1]) if len(inner) else 0
    return ["long-silence"] if run * FRAME_S > SILENCE_S else []


def longest_run(mask: np.ndarray) -> int:
    best = current = 0
    for value in mask:
        current = current + 1 if value else 0
        best = max(best, current)
    return best


def score(found: list[str]) -> int:
    """Lower is better: how a retried group's attempts are ranked (the first of equals wins)."""
    return len(found)
