"""Speed without a pitch change: FFmpeg's `atempo` filter (WSOLA) through PyAV.

Why atempo: PyAV's wheels already carry FFmpeg for `book` (no system FFmpeg, no new
dependency), FFmpeg maintains it, it keeps pitch, and a filter graph keeps its state between
pushes, so a stream's pieces are stretched as one signal: the same samples as stretching the
whole at once, nothing at the seams. Speed 1 builds no graph and returns the samples as given.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

FRAME = 1024
"""Samples per frame fed to the graph: atempo sends its output a frame at a time, so small
frames keep a stream's output at most 0.2 s of input behind it (measured from 0.25x to 4x)."""
STAGE_MAX = 2.0
"""atempo skips samples instead of blending them past 2x (FFmpeg's documentation advises a
chain of instances instead), and takes no less than 0.5 in one instance."""


def stages(speed: float) -> list[float]:
    """Equal atempo factors within 0.5-2 whose product is `speed`."""
    n = max(1, math.ceil(abs(math.log(speed, STAGE_MAX)) - 1e-9))
    return [speed ** (1 / n)] * n


class Stretcher:
    """One signal's time-stretch, fed in pieces: `push` each piece in order (the last with
    `last=True`, which adds the filter's tail); the outputs, joined, are the stretched whole.
    With `min_out`, output shorter than that waits for the next push (for a consumer with a
    least length, as Perth's watermark has)."""

    def __init__(self, sample_rate: int, speed: float, min_out: int = 0):
        self.sr, self.pts, self.min_out = sample_rate, 0, min_out
        self.graph = self.src = self.sink = None
        self.held = np.zeros(0, dtype=np.float32)
        if speed != 1:
            import av

            graph = av.filter.Graph()
            tb = Fraction(1, sample_rate)
            self.src = graph.add_abuffer(
                format="flt", sample_rate=sample_rate, layout="mono", time_base=tb
            )
            node = self.src
            for factor in stages(speed):
                nxt = graph.add("atempo", f"{factor:.12g}")
                node.link_to(nxt)
                node = nxt
            self.sink = graph.add("abuffersink")
            node.link_to(self.sink)
            graph.configure()
            self.graph = graph

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """The stretched audio this piece completes (the graph holds back up to a window)."""
        if self.graph is None:
            return samples
        import av

        samples = np.asarray(samples, dtype=np.float32)
        for start in range(0, len(samples), FRAME):
            block = np.ascontiguousarray(samples[start : start + FRAME]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate, frame.pts = self.sr, self.pts
            self.pts += block.shape[1]
            self.src.push(frame)
        if last:
            self.src.push(None)
        out = [self.held]
        while True:
            try:
                out.append(self.sink.pull().to_ndarray().reshape(-1))
            except (av.BlockingIOError, av.EOFError):
                break
        ready = np.concatenate(out)
        keep = not last and len(ready) < self.min_out
        self.held = ready if keep else ready[:0]
        return ready[:0] if keep else ready


def stretch(samples: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """A whole signal at `speed` (1: the samples as given)."""
    return Stretcher(sample_rate, speed).push(samples, last=True)
