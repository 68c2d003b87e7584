"""The verdict on one synthesized group, the same for files, batches and books: the guard's
symptoms (`post/guard.py`) and, with a recognizer, whether it says its text (`asr-mismatch`,
`post/asr.py`). Transcription runs on one worker thread from the moment a chunk exists, so
group N is heard while group N+1 is synthesized (CTranslate2 releases the GIL)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from chatterbox_cli.post import guard
from chatterbox_cli.post.asr import DEFAULT_MAX_WER, MISMATCH, Heard
from chatterbox_cli.synth.chunk import Synthesized


class Judge:
    def __init__(self, user_cap: bool = False, listener=None, max_wer: float = DEFAULT_MAX_WER):
        self.user_cap, self.listener, self.max_wer = user_cap, listener, max_wer
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="asr") if listener else None
        self._heard: dict[int, tuple[Synthesized, Future]] = {}

    def listen(self, chunk: Synthesized) -> None:
        """Start hearing `chunk` now (a no-op without a recognizer)."""
        if self.pool is not None and id(chunk) not in self._heard:
            future = self.pool.submit(
                self.listener.hear, chunk.audio, chunk.sample_rate, chunk.group.text,
                chunk.group.language,
            )  # fmt: skip
            self._heard[id(chunk)] = (chunk, future)

    def future(self, chunk: Synthesized) -> Future:
        """The hearing of `chunk` (started now if it was not)."""
        self.listen(chunk)
        return self._heard[id(chunk)][1]

    def heard(self, chunk: Synthesized) -> Heard | None:
        """What the recognizer heard in `chunk` (waits for it); None without a recognizer."""
        return None if self.pool is None else self.future(chunk).result()

    def flags(self, chunk: Synthesized) -> list[str]:
        found = guard.flags(chunk, self.user_cap)
        heard = self.heard(chunk)
        if heard is not None and heard.wer > self.max_wer:
            found.append(MISMATCH)
        return found

    def rank(self, chunk: Synthesized, found: list[str]) -> tuple[int, float]:
        """Lower is better: the guard's symptoms first, then the error rate (the attempt kept
        is the lowest-WER one among those the guard passes)."""
        heard = self.heard(chunk)
        return guard.score([f for f in found if f != MISMATCH]), heard.wer if heard else 0.0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
