"""A small load generator for `chatterbox serve` (`make load`): time to first byte, streamed
vs buffered; throughput with 1, 4 and 16 concurrent clients on the same requests; the
server's RSS over a few hundred short requests. Starts its own server on a free loopback port
(`--model-dir`, random weights welcome) or measures one at `--url`. JSON on stdout, a table on
stderr. With random weights the stop token rarely comes, so every request decodes exactly
`--tokens` speech tokens per sentence group: a fixed workload.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

STREAM_TEXT = "Here it comes.\n\nThis is the second part of the reply.\n\nAnd this is the third."
"""Three paragraphs: three groups both buffered and streamed, so both decode the same tokens."""
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()


def requests_for(n: int, tokens: int) -> list[dict]:
    """n distinct one-group requests, seeded, capped at `tokens`."""
    return [
        {
            "input": f"Request {i}: {WORDS[i % len(WORDS)]} and {WORDS[(i * 5) % len(WORDS)]}.",
            "seed": i,
            "max_new_tokens": tokens,
            "response_format": "pcm",
        }  # fmt: skip
        for i in range(n)
    ]


def ttfb(client: httpx.Client, body: dict) -> tuple[float, float]:
    """(seconds to the first body byte, seconds to the last)."""
    t0 = time.perf_counter()
    first = None
    with client.stream("POST", "/v1/audio/speech", json=body) as r:
        r.raise_for_status()
        for piece in r.iter_raw():
            if first is None and piece:
                first = time.perf_counter() - t0
    return first or 0.0, time.perf_counter() - t0


def run_clients(url: str, bodies: list[dict], clients: int, timeout: float = 1800) -> dict:
    """Send every body, `clients` at a time; wall time, audio seconds and statuses."""
    todo = list(enumerate(bodies))
    lock = threading.Lock()
    audio_s, statuses = [0.0], []

    def worker():
        with httpx.Client(base_url=url, timeout=timeout) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    _, body = todo.pop(0)
                r = client.post("/v1/audio/speech", json=body)
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        audio_s[0] += len(r.content) / 2 / 24000

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(bodies), "wall_s": round(wall, 2),
            "requests_per_s": round(len(bodies) / wall, 3), "audio_s": round(audio_s[0], 2),
            "audio_per_wall": round(audio_s[0] / wall, 3),
            "ok": statuses.count(200), "other": len(statuses) - statuses.count(200)}  # fmt: skip


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS")).split()[1]) / 1024


def start_server(model_dir: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "chatterbox_cli", "serve", "--port", str(port),
           "--model-dir", str(model_dir), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise SystemExit(f"chatterbox serve exited with {proc.returncode}")
    raise SystemExit("chatterbox serve did not come up in 600 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=Path(".cache/random-turbo"))
    ap.add_argument("--url", help="Measure this running server instead of starting one.")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=50)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--ttfb-runs", type=int, default=3)
    ap.add_argument("--rss-requests", type=int, default=300)
    ap.add_argument("--serve-arg", action="append", default=[], help="Passed to serve.")
    args = ap.parse_args(argv)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.model_dir, args.serve_arg)
    report: dict = {"url": url, "tokens": args.tokens}
    log = sys.stderr
    try:
        with httpx.Client(base_url=url, timeout=1800) as client:
            stream = {"input": STREAM_TEXT, "seed": 1, "max_new_tokens": args.tokens,
                      "response_format": "pcm"}  # fmt: skip
            ttfb(client, stream)  # warm-up
            runs = []
            for _ in range(args.ttfb_runs):
                buffered = ttfb(client, stream)
                streamed = ttfb(client, {**stream, "stream_format": "audio"})
                runs.append({"buffered_first_s": round(buffered[0], 3),
                             "streamed_first_s": round(streamed[0], 3),
                             "streamed_last_s": round(streamed[1], 3)})  # fmt: skip
                print(f"ttfb: buffered {buffered[0]:.2f} s, streamed {streamed[0]:.2f} s "
                      f"(last byte {streamed[1]:.2f} s)", file=log, flush=True)  # fmt: skip
            report["ttfb"] = runs
        bodies = requests_for(args.requests, args.tokens)
        report["throughput"] = []
        for clients in [int(c) for c in args.clients.split(",") if c.strip()]:
            row = run_clients(url, bodies, clients)
            report["throughput"].append(row)
            line = f"{clients:>3} clients: {row['wall_s']:.1f} s for {row['requests']} requests"
            print(f"{line}, {row['audio_per_wall']:.3f} audio s/s", file=log, flush=True)
        if proc is not None and args.rss_requests:
            small = [{"input": f"Hi {i}.", "max_new_tokens": 4, "response_format": "pcm"}
                     for i in range(args.rss_requests)]  # fmt: skip
            samples = [round(rss_mb(proc.pid), 1)]
            step = max(1, args.rss_requests // 6)
            for start in range(0, args.rss_requests, step):
                run_clients(url, small[start : start + step], 8)
                samples.append(round(rss_mb(proc.pid), 1))
                print(f"rss after {start + step} short requests: {samples[-1]:.0f} MB",
                      file=log, flush=True)  # fmt: skip
            report["rss_mb"] = {"every": step, "samples": samples}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
