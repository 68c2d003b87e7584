"""Memory and time of loading and unloading served models (docs/serving.md): each family is
loaded as `chatterbox serve` loads it (`server/models.py`), made to speak one short group (so
its memory-mapped weights are resident), then unloaded; RSS is read at each step. Prints one
JSON line per step.

    python -m chatterbox_cli.testing.served_memory turbo standard   # random checkpoints
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chatterbox_cli.synth.request import RenderOptions


def main(families: list[str]) -> None:
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.runtime.device import Runtime
    from chatterbox_cli.server.models import ModelSlot, rss_mb
    from chatterbox_cli.server.scheduler import Scheduler
    from chatterbox_cli.server.session import Voices
    from chatterbox_cli.text.segment import split_groups

    def wire(engine, voice):
        return Voices(engine, voice), Scheduler(engine)

    def report(step: str, **fields) -> None:
        print(json.dumps({"step": step, "rss_mb": round(rss_mb() or 0), **fields}), flush=True)

    report("start")
    slots = []
    for name in families:
        source = ModelSource(name, Path(f".cache/random-{name}"))
        slot = ModelSlot(name, source, "cpu", Runtime().check("cpu"), None, wire)
        slot.load()
        report("loaded", model=name, load_s=slot.load_s, weights_mb=slot.weights_mb)
        conds, _ = slot.voices.get(None, slot.scheduler.lock)
        with slot.scheduler.lock:
            list(
                slot.engine.synthesize(
                    split_groups("One short line."), conds, RenderOptions(max_new_tokens=10)
                )
            )
        report("spoke", model=name)
        slots.append(slot)
    for slot in slots:
        done = slot.unload()
        report("unloaded", model=slot.id, unload_s=done["unload_s"], freed_mb=done["rss_freed_mb"])


if __name__ == "__main__":
    main(sys.argv[1:] or ["turbo", "standard"])
