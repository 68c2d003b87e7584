"""Batched S3Gen: upstream's flow and HiFiGAN over many groups at once, each row equal to what
it gets alone (tests/test_s3gen_batch.py).

Rows may differ in voice (prompt length, speaker embedding) and in length. They are laid out
left-aligned and right-padded:
- Flow: [prompt tokens | speech tokens | pad]. Upstream's encoder and CFM decoder mask padded
  keys and their convolutions are causal, so padding never reaches a valid frame.
- HiFiGAN: its convolutions see both ways, so a pre-hook zeroes every convolution's input past
  the row's end (what the row's own zero padding gives alone). The harmonic source is drawn
  per row, reflected past the row's end as `torch.stft`'s centre padding does alone, and the
  inverse STFT runs per row over the row's own frames.
Noise: a seeded row draws its flow noise from its own generator in upstream's order, and its
harmonic source from the global RNG set to that generator's state for the moment, so it equals
upstream's `flow_inference` + `hift_inference` run after `torch.manual_seed(seed)`. Unseeded
rows draw from the global RNG, as upstream does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from chatterbox_cli.runtime.device import upstream_quiet

MEL_HOP = 2
"""Mel frames per speech token."""


@dataclass
class Row:
    tokens: Any
    """1-D speech tokens (with the family's silence tail) on the model's device."""
    ref: dict
    """Upstream's `ref_dict` for the row's voice (`Conditionals.gen`)."""
    seed: int | None = None


def flow_rows(s3gen, rows: list[Row], n_timesteps: int, amp=contextlib.nullcontext) -> list:
    """Mel spectrograms (80, frames) per row, like `s3gen.flow_inference(..., finalize=True)`.

    Returns the rows' generators too (None for unseeded rows), advanced past the flow's draws,
    for `vocode_rows`."""
    import torch
    import torch.nn.functional as F
    from chatterbox.models.s3gen.utils.mask import make_pad_mask

    flow = s3gen.flow
    device = s3gen.device
    gens = [
        None if r.seed is None else torch.Generator(device=device).manual_seed(r.seed) for r in rows
    ]
    prompts = [r.ref["prompt_token"].reshape(-1).to(device).long() for r in rows]
    feats = [r.ref["prompt_feat"].reshape(-1, flow.output_size).to(device) for r in rows]
    lengths = [len(p) + len(r.tokens) for p, r in zip(prompts, rows, strict=True)]
    token = torch.zeros(len(rows), max(lengths), dtype=torch.long, device=device)
    for i, (p, r) in enumerate(zip(prompts, rows, strict=True)):
        token[i, : lengths[i]] = torch.cat([p, r.tokens.reshape(-1).long()])
    token_len = torch.tensor(lengths, device=device)
    with torch.inference_mode(), amp(), upstream_quiet():
        embedding = torch.cat([r.ref["embedding"].reshape(1, -1) for r in rows]).to(device)
        spks = flow.spk_embed_affine_layer(F.normalize(embedding.to(s3gen.dtype), dim=1))
        mask = (~make_pad_mask(token_len)).unsqueeze(-1).to(spks)
        with _masked_lookahead(flow.encoder, mask):
            h, h_masks = flow.encoder(flow.input_embedding(token) * mask, token_len)
        mu = flow.encoder_proj(h).transpose(1, 2).contiguous()
        frames = h_masks.sum(dim=-1).squeeze(-1).tolist()
        cond = torch.zeros_like(mu)
        z = torch.zeros_like(mu)
        for i, (f, r, g) in enumerate(zip(feats, rows, gens, strict=True)):
            cond[i, :, : len(f)] = f.T
            z[i, :, : frames[i]] = _flow_noise(s3gen, mu, frames[i], len(r.tokens), g)
        mel_mask = h_masks.to(mu)
        decoder = flow.decoder
        t_span = torch.linspace(0, 1, n_timesteps + 1, device=device, dtype=mu.dtype)
        if s3gen.meanflow:
            x = decoder.basic_euler(z, t_span=t_span, mu=mu, mask=mel_mask, spks=spks, cond=cond)
        else:
            if decoder.t_scheduler == "cosine":
                t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
            x = decoder.solve_euler(z, t_span=t_span, mu=mu, mask=mel_mask, spks=spks, cond=cond)
    mels = [x[i, :, len(f) : frames[i]] for i, f in enumerate(feats)]
    return mels, gens


def _flow_noise(s3gen, mu, frames: int, n_tokens: int, generator):
    """One row's starting noise, drawn as upstream draws it for a batch of one: Turbo's
    `noised_mels` for the speech part first, then `randn_like(mu)` over the whole row."""
    import torch

    shape = (1, mu.shape[1], frames)
    noised = None
    if s3gen.meanflow:
        noised = torch.randn(
            (1, mu.shape[1], n_tokens * MEL_HOP),
            generator=generator,
            dtype=s3gen.dtype,
            device=mu.device,
        )
    z = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    if noised is not None:
        z[..., frames - noised.shape[2] :] = noised
    return z[0]


def vocode_rows(s3gen, mels: list, gens: list) -> list:
    """Waveforms (1, samples) per row, like `s3gen.hift_inference` plus upstream's trim fade."""
    import torch

    hift = s3gen.mel2wav
    device = mels[0].device
    n = max(m.shape[-1] for m in mels)
    lengths = torch.tensor([m.shape[-1] for m in mels], device=device)
    mel = torch.zeros(len(mels), mels[0].shape[0], n, dtype=mels[0].dtype, device=device)
    for i, m in enumerate(mels):
        mel[i, :, : m.shape[-1]] = m
    captured = []
    with torch.inference_mode():
        with _masked_convs(hift.f0_predictor, lengths, n):
            f0 = hift.f0_predictor(mel)
        sources = [
            _source(hift, f0[i : i + 1, : m.shape[-1]], g, device)
            for i, (m, g) in enumerate(zip(mels, gens, strict=True))
        ]
        s = torch.zeros(len(mels), 1, sources[0].shape[-1] // mels[0].shape[-1] * n, device=device)
        pad = hift.istft_params["n_fft"] // 2
        for i, src in enumerate(sources):
            end = src.shape[-1]
            s[i, :, :end] = src
            if end < s.shape[-1]:  # the longest row gets torch.stft's own reflection
                s[i, :, end : end + pad] = src[..., end - 1 - pad : end - 1].flip(-1)
        hook = hift.conv_post.register_forward_hook(lambda _m, _a, out: captured.append(out))
        try:
            with _masked_convs(hift, lengths, n):
                hift.decode(x=mel, s=s)
        finally:
            hook.remove()
        return [_finish(s3gen, captured[0][i : i + 1], m.shape[-1], n) for i, m in enumerate(mels)]


def _source(hift, f0, generator, device):
    """The row's harmonic source, upstream's three lines of `HiFTGenerator.inference`, drawn
    from the global RNG or, for a seeded row, from its generator's state (restored after)."""
    import torch

    def draw():
        s = hift.f0_upsamp(f0[:, None]).transpose(1, 2)
        s, _, _ = hift.m_source(s)
        return s.transpose(1, 2)

    if generator is None:
        return draw()
    kind = torch.device(device).type
    devices = [] if kind == "cpu" else [torch.device(device)]
    with torch.random.fork_rng(devices=devices, device_type=kind):
        if kind == "cpu":
            torch.set_rng_state(generator.get_state())
        else:
            torch.manual_seed(generator.initial_seed())
            getattr(torch, kind).set_rng_state(generator.get_state())
        return draw()


def _finish(s3gen, spec, mel_frames: int, batch_frames: int):
    """The row's inverse STFT over its own frames, the clamp, and upstream's trim fade."""
    import torch

    hift = s3gen.mel2wav
    frames = -(-spec.shape[-1] * mel_frames // batch_frames)
    spec = spec[..., :frames]
    half = hift.istft_params["n_fft"] // 2 + 1
    wav = hift._istft(torch.exp(spec[:, :half]), torch.sin(spec[:, half:]))
    wav = torch.clamp(wav, -hift.audio_limit, hift.audio_limit)
    wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade
    return wav


@contextlib.contextmanager
def _masked_lookahead(encoder, mask):
    """Zero the encoder's embedded tokens past each row's end where its pre-lookahead conv reads
    them: alone, it reads its zero padding there; in a batch, the embedding of padding."""
    hook = encoder.pre_lookahead_layer.register_forward_pre_hook(
        lambda _m, args: (args[0] * mask, *args[1:])
    )
    try:
        yield
    finally:
        hook.remove()


@contextlib.contextmanager
def _masked_convs(module, lengths, frames: int):
    """Zero each convolution's input past each row's end while `module` runs. A layer of
    length T = a*frames + b (b in 0..1) holds ceil(T * n / frames) frames of a row of n."""
    import torch

    masks: dict[int, Any] = {}

    def pre(_mod, args):
        x = args[0]
        t = x.shape[-1]
        if t not in masks:
            valid = torch.div(lengths * t + frames - 1, frames, rounding_mode="floor")
            keep = torch.arange(t, device=x.device)[None, :] < valid[:, None]
            masks[t] = keep[:, None, :]
        return (x * masks[t].to(x.dtype), *args[1:])

    convs = (torch.nn.Conv1d, torch.nn.ConvTranspose1d)
    handles = [m.register_forward_pre_hook(pre) for m in module.modules() if isinstance(m, convs)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
