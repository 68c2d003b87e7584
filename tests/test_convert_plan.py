"""Conversion's cut plan and stitching (`synth/convert.py`), fast tier: where long sources are
cut, and that pieces placed at their source time and crossfaded rebuild the whole."""

from __future__ import annotations

import numpy as np
import pytest

from chatterbox_cli.synth.convert import (
    OUT_SR,
    SOURCE_SR,
    plan_pieces,
    read_source,
    segments,
    stitch,
)
from chatterbox_cli.testing.checkpoints import speech_like


def upsample(stretch: np.ndarray) -> np.ndarray:
    """A stand-in S3Gen for the arithmetic: the stretch itself, at 24 kHz."""
    n = round(len(stretch) * OUT_SR / SOURCE_SR)
    return np.interp(np.arange(n) * SOURCE_SR / OUT_SR, np.arange(len(stretch)), stretch).astype(
        np.float32
    )


def test_short_sources_are_one_piece_and_long_ones_cut_in_pauses():
    wav = speech_like(75.0, SOURCE_SR, seed=3)
    assert plan_pieces(wav[: 19 * SOURCE_SR], 20.0) == [0, 19 * SOURCE_SR]
    cuts = plan_pieces(wav, 20.0)
    assert cuts[0] == 0 and cuts[-1] == len(wav) and len(cuts) >= 5
    for a, b in zip(cuts, cuts[1:], strict=False):
        assert b - a <= 20 * SOURCE_SR
    for c in cuts[1:-1]:
        assert np.abs(wav[c - 800 : c + 800]).max() < 0.01  # in a pause, not in speech


def test_stitched_pieces_rebuild_the_whole_in_order():
    wav = speech_like(50.0, SOURCE_SR, seed=4)
    cuts = plan_pieces(wav, 12.0)
    parts = list(stitch(segments([wav], cuts), len(wav), upsample))
    assert len(parts) == len(cuts) - 1
    assert [done for _, done in parts] == [c / SOURCE_SR for c in cuts[1:]]
    joined = np.concatenate([audio for audio, _ in parts])
    whole = upsample(wav)
    assert len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=1e-5)


@pytest.mark.parametrize("content", [b"", b"not audio at all"])
def test_unreadable_sources_are_one_line_errors(content):
    from chatterbox_cli.runtime.errors import BadInput

    with pytest.raises(BadInput, match="standard input"):
        read_source(content, "standard input")
