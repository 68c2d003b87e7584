"""`GET /metrics`: the server's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
RTF = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16)


class Metrics:
    def __init__(self, depth):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        p = "chatterbox_"
        self.requests = Counter(p + "requests", "Speech requests received", ["route"], registry=r)
        self.success = Counter(
            p + "requests_success", "Requests answered in full", ["route"], registry=r
        )
        self.errors = Counter(
            p + "requests_error", "Requests that ended in an error", ["route", "status"], registry=r
        )
        self.queue_wait = Histogram(
            p + "queue_wait_seconds", "Admission to first decode", buckets=SECONDS, registry=r
        )
        self.ttfa = Histogram(
            p + "time_to_first_audio_seconds",
            "Admission to first audio",
            buckets=SECONDS,
            registry=r,
        )
        self.synthesis = Histogram(
            p + "synthesis_seconds", "Admission to last audio", buckets=SECONDS, registry=r
        )
        self.rtf = Histogram(p + "rtf", "Request seconds per audio second", buckets=RTF, registry=r)
        self.cancelled = Counter(
            p + "requests_cancelled",
            "Requests stopped before their end (client left, cancel, timeout)",
            registry=r,
        )
        self.audio = Counter(p + "audio_seconds", "Audio seconds produced", registry=r)
        Gauge(p + "queue_depth", "Requests admitted and not finished", registry=r).set_function(
            depth
        )

    def done(self, route: str, stats: dict) -> None:
        self.success.labels(route).inc()
        for hist, key in ((self.queue_wait, "queue_wait_s"), (self.ttfa, "ttfa_s"),
                          (self.synthesis, "elapsed_s"), (self.rtf, "rtf")):  # fmt: skip
            if stats.get(key) is not None:
                hist.observe(stats[key])
        self.audio.inc(stats.get("audio_s") or 0)

    def failed(self, route: str, status: int) -> None:
        self.errors.labels(route, str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
