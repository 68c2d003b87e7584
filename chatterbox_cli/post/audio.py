"""Post-processing: join group audio, normalize loudness with a peak guard, watermark last."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.runtime.device import upstream_quiet

PEAK_DBFS = -1.0
MIN_LOUDNESS_S = 0.4
"""pyloudnorm needs one 400 ms gating block to measure anything."""
PERTH_FLOOR = (1024, 32000)
"""Perth's STFT needs more than 1024 samples at its 32 kHz (more than 768 at 24 kHz, measured):
anything shorter raised."""
MIN_MARK_S = 0.05
"""Audio shorter than Perth's floor is padded with silence to this for the mark and cut back;
a stretched stream's pieces wait until they are this long (`post/tempo.py`)."""


@dataclass
class LoudnessInfo:
    measured_lufs: float | None
    target_lufs: float
    gain_db: float
    peak_limited: bool
    loudness_s: float = 0.0
    watermark_s: float = 0.0


def _fade(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)


def joined(
    parts: list[np.ndarray],
    sr: int,
    pause_s: float = 0.2,
    fade_s: float = 0.01,
    gaps: list[float] | None = None,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Concatenate group audio with pauses; edges that meet silence get raised-cosine fades so
    seams never click. Also where each part landed: (first sample, end) in the result, the
    one source of timing for subtitles (an empty part: an empty span where it would be).

    `gaps[i]` is the silence between parts i and i+1 (default: `pause_s` at every seam); at a
    gap of 0 the neighbours crossfade over `fade_s` instead. `lead_s`/`tail_s`: silence before
    the first part and after the last (`[pause]` markup at the ends of a text).
    """
    gaps = [pause_s] * max(0, len(parts) - 1) if gaps is None else gaps
    kept: list[np.ndarray] = []
    owner: list[int] = []
    seams: list[float] = []
    carried = 0.0
    for i, part in enumerate(parts):
        gap = max(carried, gaps[i - 1]) if i else 0.0
        if not len(part):
            carried = gap
            continue
        if kept:
            seams.append(gap)
        carried = 0.0
        kept.append(np.asarray(part, dtype=np.float32))
        owner.append(i)
    if not kept:
        return np.zeros(0, dtype=np.float32), [(0, 0)] * len(parts)
    before, after = [lead_s, *seams], [*seams, tail_s]
    edges = zip(kept, before, after, strict=True)
    shaped = [shape_edges(p, sr, b > 0, a > 0, fade_s) for p, b, a in edges]
    n_fade = max(1, int(fade_s * sr))
    out = [silence(lead_s, sr)]
    at = len(out[0])  # where `current` starts
    current = shaped[0]
    spans = [(at, at + len(current))]
    for gap, part in zip(seams, shaped[1:], strict=True):
        if gap > 0:
            out += [current, silence(gap, sr)]
            at += len(current) + len(out[-1])
            current = part
            spans.append((at, at + len(part)))
            continue
        n = min(n_fade, len(current), len(part))
        ramp = _fade(n)
        head = part.copy()
        head[:n] = current[-n:] * ramp[::-1] + part[:n] * ramp
        start = at + len(current) - n
        current = np.concatenate([current[:-n], head])
        spans.append((start, start + len(part)))
    out += [current, silence(tail_s, sr)]
    return np.concatenate(out), _all_spans(spans, owner, len(parts))


def _all_spans(spans: list, owner: list[int], n: int) -> list[tuple[int, int]]:
    """The kept parts' spans, with an empty span (at the end of the part before) for each
    empty one."""
    by_part = dict(zip(owner, spans, strict=True))
    out, end = [], spans[0][0]
    for i in range(n):
        span = by_part.get(i, (end, end))
        out.append(span)
        end = span[1]
    return out


def silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def shape_edges(
    part: np.ndarray, sr: int, fade_in: bool, fade_out: bool, fade_s: float = 0.01
) -> np.ndarray:
    """Raised-cosine fades on the edges that meet a pause (what `join` does to each part)."""
    part = np.asarray(part, dtype=np.float32).copy()
    n = min(max(1, int(fade_s * sr)), len(part) // 2)
    if fade_in and n:
        part[:n] *= _fade(n)
    if fade_out and n:
        part[-n:] *= _fade(n)[::-1]
    return part


def normalize_loudness(
    wav: np.ndarray, sr: int, target_lufs: float = DEFAULT_LUFS, peak_dbfs: float = PEAK_DBFS
) -> tuple[np.ndarray, LoudnessInfo]:
    """Gain to `target_lufs` (BS.1770 via pyloudnorm), reduced if peaks would pass `peak_dbfs`."""
    import pyloudnorm

    wav = np.asarray(wav, dtype=np.float32)
    measured = None
    gain_db = 0.0
    if len(wav) >= MIN_LOUDNESS_S * sr:
        measured = float(pyloudnorm.Meter(sr).integrated_loudness(wav.astype(np.float64)))
        if np.isfinite(measured):
            gain_db = target_lufs - measured
        else:
            measured = None
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    limited = False
    if peak > 0:
        headroom_db = peak_dbfs - 20 * np.log10(peak)
        if gain_db > headroom_db:
            gain_db, limited = headroom_db, True
    out = wav * np.float32(10 ** (gain_db / 20))
    return out, LoudnessInfo(measured, target_lufs, gain_db, limited)


def watermark(wav: np.ndarray, sr: int, watermarker) -> np.ndarray:
    """Perth implicit watermark; always the last step so nothing after it can weaken it. The
    result is as long as `wav` (where Perth returns less, the rest is kept unmarked).

    Under inference mode: Perth runs with autograd on, and so each call kept ~1.4 MB that was
    never given back (measured over 180 calls; the server's RSS climbed with it). The samples
    are the same either way."""
    import torch

    n = len(wav)
    if not n:
        return np.zeros(0, dtype=np.float32)
    floor, floor_sr = PERTH_FLOOR
    if n * floor_sr <= floor * sr:
        wav = np.pad(np.asarray(wav, dtype=np.float32), (0, int(MIN_MARK_S * sr) - n))
    with upstream_quiet(), torch.inference_mode():
        marked = np.asarray(watermarker.apply_watermark(wav, sample_rate=sr), dtype=np.float32)
    if len(marked) < n:  # Perth drops a last part-frame: keep those samples as they were
        marked = np.concatenate([marked, np.asarray(wav[len(marked) : n], dtype=np.float32)])
    return marked[:n]


def master(
    wav: np.ndarray,
    sr: int,
    watermarker,
    target_lufs: float = DEFAULT_LUFS,
    cuts: list[int] | None = None,
) -> tuple[np.ndarray, LoudnessInfo]:
    """Loudness, then watermark, then a scalar trim back onto the target.

    Perth's watermark moves integrated loudness by up to ~1 LU (measured); a uniform gain
    afterwards changes no content and the detector still finds the mark (tests check both).
    With `cuts` (sample indices) each stretch between them is marked on its own: Perth's memory
    grows with its input (measured: +500 MB for 120 s at once), so long audio goes in pieces.
    """
    t0 = time.perf_counter()
    leveled, info = normalize_loudness(wav, sr, target_lufs)
    t1 = time.perf_counter()
    if cuts:
        parts = np.split(leveled, cuts)
        marked = np.concatenate([watermark(p, sr, watermarker) for p in parts if len(p)])
    else:
        marked = watermark(leveled, sr, watermarker)
    t2 = time.perf_counter()
    info.watermark_s = t2 - t1
    if info.measured_lufs is not None:
        marked, trim = normalize_loudness(marked, sr, target_lufs)
        info.gain_db += trim.gain_db
        info.peak_limited = info.peak_limited or trim.peak_limited
    info.loudness_s = (t1 - t0) + (time.perf_counter() - t2)
    return marked, info
