"""Token-level streaming: S3Gen audio every N speech tokens of a group (opt-in, approximate).

Upstream 0.1.7 can't do this as published: the flow's `finalize=False` path trims `h` but not
`h_masks` (shape error), and HiFiGAN restarts its harmonic source (random phase, fresh noise)
on every call. This module drives the upstream modules and fixes both in our code:

- flow: each chunk runs on a window of tokens (left context + new tokens + 3 lookahead tokens),
  with the lookahead frames dropped from `h` *and* `h_masks`, and noise drawn once per group so a
  frame gets the same noise whatever window it lies in;
- HiFiGAN: overlap-save with mel context (16 frames left, 8 right) and one harmonic source per
  group whose phase is carried across chunks, then a short crossfade at each seam.

The flow attends over the whole sequence, so windowed output is not bit-exact; `full_render`
gives the one-pass reference with the same noise, and tests/test_stream.py measures the seams.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from chatterbox_cli.runtime.device import upstream_quiet

SAMPLES_PER_FRAME = 480
FRAMES_PER_TOKEN = 2
LOOKAHEAD_TOKENS = 3
"""The flow encoder's `pre_lookahead_len`: a token's frames need the next 3 tokens."""
LEFT_CONTEXT_TOKENS = 50
MEL_LEFT, MEL_RIGHT = 16, 8
"""HiFiGAN's receptive field is about +-11 mel frames; this much context makes chunks exact."""
CROSSFADE_SAMPLES = 240


class _DropLookahead(torch.nn.Module):
    """Wraps the flow encoder: drop the lookahead frames from `h` and from `h_masks`."""

    def __init__(self, encoder: torch.nn.Module, frames: int):
        super().__init__()
        self.inner = encoder
        self.frames = frames

    def forward(self, *args, **kwargs):
        h, masks = self.inner(*args, **kwargs)
        return h[:, : -self.frames], masks[..., : -self.frames]


@contextlib.contextmanager
def _streaming_encoder(flow):
    """`finalize=False` done right: swap in the trimming wrapper for one call."""
    encoder = flow.encoder
    flow.encoder = _DropLookahead(encoder, LOOKAHEAD_TOKENS * flow.token_mel_ratio)
    try:
        yield
    finally:
        flow.encoder = encoder


def harmonic_source(m_source, f0: torch.Tensor, cycles: torch.Tensor, phase, noise):
    """HiFiGAN's harmonic-plus-noise source (upstream `SourceModuleHnNSF`) for f0 samples
    (1, 1, S), starting at `cycles` (1, H, 1) completed periods; returns the source and the
    running cycle count per sample (to continue from any point).

    Same arithmetic as upstream `SineGen.forward`, with the phase offset and the random draws
    (`phase`, `noise`) passed in so consecutive chunks continue one signal.
    """
    gen = m_source.l_sin_gen
    harmonics = torch.arange(1, gen.harmonic_num + 2, device=f0.device, dtype=f0.dtype)
    per_sample = f0 * harmonics.view(1, -1, 1) / gen.sampling_rate
    total = cycles + torch.cumsum(per_sample, dim=-1)
    theta = 2 * np.pi * (total % 1)
    sine = gen.sine_amp * torch.sin(theta + phase)
    uv = (f0 > gen.voiced_threshold).to(f0.dtype)
    sine = sine * uv + (uv * gen.noise_std + (1 - uv) * gen.sine_amp / 3) * noise
    merged = m_source.l_tanh(m_source.l_linear(sine.transpose(1, 2))).transpose(1, 2)
    return merged, total


@dataclass
class GroupNoise:
    """Every random draw S3Gen makes for one group, drawn once up front."""

    prompt: torch.Tensor
    speech: torch.Tensor
    phase: torch.Tensor
    source: torch.Tensor

    @classmethod
    def draw(cls, s3gen, prompt_frames: int, max_tokens: int, generator: torch.Generator):
        device, dtype = s3gen.device, s3gen.dtype
        frames = FRAMES_PER_TOKEN * (max_tokens + LOOKAHEAD_TOKENS)
        harmonics = s3gen.mel2wav.m_source.l_sin_gen.harmonic_num + 1

        def randn(*shape):
            return torch.randn(*shape, generator=generator, device=device, dtype=dtype)

        prompt, speech = randn(1, 80, prompt_frames), randn(1, 80, frames)
        phase = (torch.rand(1, harmonics, 1, generator=generator, device=device) * 2 - 1) * np.pi
        phase[:, 0] = 0
        return cls(prompt, speech, phase.to(dtype), randn(1, harmonics, frames * SAMPLES_PER_FRAME))


class TokenStreamer:
    """Turns one group's growing token list into audio pieces, `every` tokens at a time."""

    def __init__(
        self,
        s3gen,
        ref: dict,
        noise: GroupNoise,
        every: int,
        cfm_steps: int = 2,
        left_context: int = LEFT_CONTEXT_TOKENS,
        amp=contextlib.nullcontext,
    ):
        if every < 1:
            raise ValueError("every must be >= 1")
        self.s3gen, self.ref, self.noise = s3gen, ref, noise
        self.every, self.cfm_steps, self.left_context = every, cfm_steps, left_context
        self.amp = amp
        self.tokens: list[int] = []
        self.flowed = 0
        """Tokens whose mel frames are final."""
        self.mel = torch.zeros(1, 80, 0, device=s3gen.device, dtype=s3gen.dtype)
        self.vocoded = 0
        """Mel frames whose audio has been emitted (bar the held-back crossfade tail)."""
        self.source = torch.zeros(1, 1, 0, device=s3gen.device, dtype=s3gen.dtype)
        self.cycles = torch.zeros_like(noise.phase)
        self.tail: torch.Tensor | None = None
        self.flow_s = self.vocode_s = 0.0

    @classmethod
    def for_group(
        cls, s3gen, ref, cap, every, cfm_steps, noise_seed=None, amp=contextlib.nullcontext
    ):
        """A streamer whose S3Gen noise comes from its own generator (seeded from --seed and the
        group), so T3 samples the same tokens as without token streaming."""
        if noise_seed is None:
            noise_seed = random.getrandbits(62)
        generator = torch.Generator(device=s3gen.device).manual_seed(noise_seed % 2**63)
        noise = GroupNoise.draw(s3gen, prompt_frames(ref), cap, generator)
        return cls(s3gen, ref, noise, every, cfm_steps, amp=amp)

    @torch.inference_mode()
    def push(self, token: int) -> np.ndarray | None:
        """Add a token; return new audio when `every` new tokens have their lookahead."""
        self.tokens.append(token)
        if len(self.tokens) - LOOKAHEAD_TOKENS - self.flowed < self.every:
            return None
        self._flow(len(self.tokens) - LOOKAHEAD_TOKENS, finalize=False)
        return self._vocode(final=False)

    @torch.inference_mode()
    def finish(self, tail_tokens: list[int]) -> np.ndarray:
        """The group is done: flow the rest (plus `tail_tokens`, upstream's silence) in full."""
        self.tokens.extend(tail_tokens)
        self._flow(len(self.tokens), finalize=True)
        return self._vocode(final=True)

    def _flow(self, end: int, finalize: bool) -> None:
        t0 = time.perf_counter()
        start = max(0, self.flowed - self.left_context)
        window = self.tokens[start : end if finalize else end + LOOKAHEAD_TOKENS]
        mels = flow_window(
            self.s3gen, self.ref, self.noise, window, start, self.cfm_steps, finalize, self.amp
        )
        new = mels[:, :, FRAMES_PER_TOKEN * (self.flowed - start) :]
        self.mel = torch.cat([self.mel, new], dim=2)
        self.flowed = end
        self.flow_s += time.perf_counter() - t0

    def _vocode(self, final: bool) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self._vocode_range(final)
        finally:
            self.vocode_s += time.perf_counter() - t0

    def _vocode_range(self, final: bool) -> np.ndarray:
        hift = self.s3gen.mel2wav
        start, have = self.vocoded, self.mel.shape[2]
        until = have if final else have - MEL_RIGHT
        if until <= start:
            return np.zeros(0, dtype=np.float32)
        left = max(0, start - MEL_LEFT)
        mel = self.mel[:, :, left:have]
        f0 = hift.f0_upsamp(hift.f0_predictor(mel)[:, None])
        known = (start - left) * SAMPLES_PER_FRAME
        s0, s1 = start * SAMPLES_PER_FRAME, have * SAMPLES_PER_FRAME
        noise = self.noise.source[..., s0:s1]
        fresh, cycles = harmonic_source(
            hift.m_source, f0[..., known:], self.cycles, self.noise.phase, noise
        )
        commit = (until - start) * SAMPLES_PER_FRAME
        self.cycles = cycles[..., commit - 1 : commit] % 1
        source = torch.cat([self.source[..., left * SAMPLES_PER_FRAME :], fresh], dim=2)
        wav = hift.decode(x=mel, s=source)
        self.source = torch.cat([self.source, fresh[..., :commit]], dim=2)
        piece = wav[:, known : known + commit]
        if start == 0:
            fade = self.s3gen.trim_fade
            piece[:, : len(fade)] *= fade
        if self.tail is not None:
            n = self.tail.shape[1]
            ramp = torch.linspace(0, 1, n, device=piece.device, dtype=piece.dtype)
            piece[:, :n] = self.tail * (1 - ramp) + piece[:, :n] * ramp
        self.tail = None
        if not final:
            self.tail = wav[:, known + commit : known + commit + CROSSFADE_SAMPLES].clone()
        self.vocoded = until
        return piece.squeeze(0).float().cpu().numpy()


def flow_window(
    s3gen, ref, noise: GroupNoise, window, start, cfm_steps, finalize, amp=contextlib.nullcontext
):
    """Mel frames for `window` (tokens from index `start` of the group), prompt-conditioned."""
    flow = s3gen.flow
    tokens = torch.tensor([window], device=s3gen.device)
    frames = FRAMES_PER_TOKEN * (len(window) - (0 if finalize else LOOKAHEAD_TOKENS))
    first = FRAMES_PER_TOKEN * start
    z = torch.cat([noise.prompt, noise.speech[:, :, first : first + frames]], dim=2)
    ctx = contextlib.nullcontext() if finalize else _streaming_encoder(flow)
    with ctx, upstream_quiet(), amp():
        mels, _ = flow.inference(
            token=tokens,
            token_len=torch.tensor([tokens.shape[1]], device=s3gen.device),
            finalize=True,
            noised_mels=z,
            n_timesteps=cfm_steps,
            meanflow=s3gen.meanflow,
            **ref,
        )
    if mels.is_cuda:
        torch.cuda.synchronize()
    return mels.to(s3gen.dtype)


@torch.inference_mode()
def full_render(s3gen, ref, noise: GroupNoise, tokens: list[int], cfm_steps: int = 2):
    """One pass over all tokens with the same noise and source: the reference for seams."""
    hift = s3gen.mel2wav
    mels = flow_window(s3gen, ref, noise, tokens, 0, cfm_steps, finalize=True)
    f0 = hift.f0_upsamp(hift.f0_predictor(mels)[:, None])
    source, _ = harmonic_source(
        hift.m_source,
        f0,
        torch.zeros_like(noise.phase),
        noise.phase,
        noise.source[..., : f0.shape[-1]],
    )
    wav = hift.decode(x=mels, s=source)
    wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade
    return wav.squeeze(0).float().cpu().numpy()


def prompt_frames(ref: dict) -> int:
    return int(ref["prompt_feat"].shape[1])


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(len(reference), len(test))
    err = float(np.sum((reference[:n] - test[:n]) ** 2)) + 1e-20
    return 10 * math.log10(float(np.sum(reference[:n] ** 2)) / err)


def seam_error(full: np.ndarray, pieces: list[np.ndarray], window: int = 480):
    """Streamed `pieces` against one full pass: (SNR in dB, worst error within `window`
    samples of a seam as a fraction of the full pass's peak)."""
    streamed = np.concatenate(pieces)
    seams = np.cumsum([len(p) for p in pieces])[:-1]
    worst = max(
        (
            float(np.max(np.abs(full[s - window : s + window] - streamed[s - window : s + window])))
            for s in seams
        ),
        default=0.0,
    )
    return snr_db(full, streamed), worst / float(np.max(np.abs(full)))
