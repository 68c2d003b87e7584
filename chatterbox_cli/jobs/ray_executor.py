"""`batch --executor ray`: the same job on a Ray cluster.

Ray Data does the scheduling, the retries and the data movement: the rows are cut into units
(consecutive items, about four T3 batches of groups each, longest first), one Ray Data row per
unit, and `map_batches` runs them on an actor pool that loads the model once per worker. Each
worker writes its files atomically into the output directory and notes every finished file
in its own journal (manifests.Journal); the driver alone appends the records it gets back to
`manifest.jsonl`. A worker that dies has its unit retried on a restarted worker, a bounded
number of times; outputs are keyed by row, so a retried unit only rewrites the same files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import socket
import warnings
from dataclasses import dataclass
from typing import Any

from chatterbox_cli.jobs import batch
from chatterbox_cli.jobs.batch import StopBatch, item_groups
from chatterbox_cli.runtime.device import dropping_stderr_lines
from chatterbox_cli.runtime.errors import BadInput, ChatterboxError
from chatterbox_cli.sinks import manifest as manifests
from chatterbox_cli.synth.loader import load_engine
from chatterbox_cli.text.languages import spoken_length

EXTRA = "pip install 'chatterbox-cli[ray]'"
UNIT_BATCHES = 4
"""T3 batches per unit at most: enough groups to sort by length and batch well; a small job
gets smaller units (at least one batch), two per worker, so that every worker has work.
Each worker holds one unit at a time, so units are handed to whichever worker is free."""


SESSION_SOCKET_CHARS = 80
"""What Ray appends to its temp folder for its longest socket path, with room to spare:
`/session_2026-12-01_21-36-58_985166_3215/sockets/plasma_store` is 61 characters."""


class WorkerCrashed(ChatterboxError):
    """A unit kept killing its worker past the retries."""


class NoCluster(ChatterboxError):
    """--ray-address names a cluster that isn't there."""


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """None: a fresh embedded cluster on this machine; "auto" or host:port: join one."""
    workers: int | None = None
    """None: one per node."""
    cpus_per_worker: float | None = None
    """None: the smallest node's CPU count."""
    gpus_per_worker: float = 0.0
    retries: int = 2
    """Times a unit is retried after its worker died, before the job fails."""
    verbose: bool = False

    def check(self) -> RayOptions:
        if self.workers is not None and self.workers < 1:
            raise BadInput("--workers must be >= 1")
        if self.cpus_per_worker is not None and self.cpus_per_worker <= 0:
            raise BadInput("--cpus-per-worker must be > 0")
        if self.gpus_per_worker < 0:
            raise BadInput("--gpus-per-worker must be >= 0")
        if importlib.util.find_spec("ray") is None:
            raise BadInput(f"--executor ray needs Ray: {EXTRA}")
        return self


def plan_units(items: list, groups_per_unit: int, groups_of, length_of) -> list[list]:
    """Consecutive items in units of about `groups_per_unit` sentence groups, longest unit first
    (a long unit started last would keep one worker busy while the others idle)."""
    units: list[list] = []
    count = 0
    for item in items:
        if not units or count >= groups_per_unit:
            units.append([])
            count = 0
        units[-1].append(item)
        count += groups_of(item)
    return sorted(units, key=lambda unit: -sum(length_of(item) for item in unit))


def start(opts: RayOptions):
    """Connect to the cluster asked for (never a leftover one by accident) with Ray's own
    chatter off unless --verbose. Returns (ray module, whether we started it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    import ray
    import ray.data

    if not opts.verbose:  # our own progress and one-line errors say what matters
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(
            address=opts.address or "local",
            include_dashboard=False if not opts.address else None,
            _temp_dir=None if opts.address else local_temp_dir(),
            log_to_driver=opts.verbose,
            logging_level="INFO" if opts.verbose else "ERROR",
            configure_logging=True,
        )
    except ConnectionError as exc:
        raise NoCluster(
            f"no Ray cluster found at --ray-address {opts.address} ({first_line(exc)}); start one "
            "with `ray start --head` (same RAY_TMPDIR/TMPDIR for `auto`), give its HOST:PORT, "
            "or drop --ray-address to run on a fresh cluster on this machine"
        ) from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = opts.verbose
    context.print_on_execution_start = opts.verbose
    return ray, True


def local_temp_dir() -> str | None:
    """Where an embedded cluster keeps its session: Ray's default (`$RAY_TMPDIR`, else `$TMPDIR`,
    else /tmp, plus /ray), unless that is too long for the Unix sockets Ray makes in it (107
    bytes at most), as a deep $TMPDIR is; then a short folder of ours under /tmp. Ray creates
    either, so a machine that never ran Ray needs nothing made beforehand."""
    from ray._common.utils import get_default_ray_temp_dir

    default = get_default_ray_temp_dir()
    if len(os.path.abspath(default)) + SESSION_SOCKET_CHARS <= 107:
        return None
    return f"/tmp/chatterbox-ray-{os.getuid()}"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def pool_size(ray, opts: RayOptions) -> tuple[int, float]:
    """(workers, CPUs per worker): by default one worker per node, using all of its CPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = opts.cpus_per_worker
    if cpus is None:
        cpus = max(1.0, min(n["Resources"].get("CPU", 1.0) for n in nodes))
    return opts.workers or len(nodes), cpus


class Worker:
    """One model per actor; `__call__` runs one unit and returns its manifest records."""

    def __init__(self, source, device: str, runtime, cfg):
        import ray
        import torch

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if runtime.threads is None and cpus:
            torch.set_num_threads(max(1, int(cpus)))
        self.engine = load_engine(source, device, runtime)
        self.cfg = cfg
        self.node = ray.get_runtime_context().get_node_id()
        self.journal = manifests.Journal(cfg.outdir, f"{socket.gethostname()}-{os.getpid()}")

    def __call__(self, rows: dict) -> dict:

        records: list[dict] = []

        def note(rec: dict) -> None:
            rec.update(node=self.node, host=socket.gethostname(), threads=_threads())
            records.append(rec)

        for blob in rows["unit"]:
            items = pickle.loads(blob)
            batch.run_jobs(self.engine, items, self.cfg, self.journal, note)
        return {"record": [json.dumps(r, ensure_ascii=False) for r in records]}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run(items, cfg, source, device: str, runtime, manifest, on_record, opts: RayOptions) -> None:
    """Synthesize `items` on the cluster; records reach `manifest` and `on_record` as they
    come back. Raises WorkerCrashed when a unit killed its workers past the retries."""
    with contextlib.ExitStack() as stack:
        if not opts.verbose:
            stack.enter_context(dropping_stderr_lines(RAY_NOISE))
        _run(items, cfg, source, device, runtime, manifest, on_record, opts)


RAY_NOISE = (b"has constructor arguments in the object store",)
"""Ray's C++ core logs this error for every actor Ray Data starts with restarts on (its own
default), since Ray Data passes the UDF by reference; the reference lives as long as the job."""


def _run(items, cfg, source, device, runtime, manifest, on_record, opts: RayOptions) -> None:

    ray, started = start(opts)
    try:
        workers, cpus = pool_size(ray, opts)
        groups = {id(item): len(item_groups(item, cfg.request, source.family)) for item in items}
        per_worker = -(-sum(groups.values()) // (2 * workers))
        units = plan_units(
            items,
            max(cfg.batch_size, min(cfg.batch_size * UNIT_BATCHES, per_worker)),
            lambda item: groups[id(item)],
            lambda item: spoken_length(item.text),
        )
        ds = ray.data.from_items(
            [{"unit": pickle.dumps(unit)} for unit in units], override_num_blocks=len(units)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # retry bounds have no named parameter in 2.60
            results = ds.map_batches(
                Worker,
                fn_constructor_args=(source, device, runtime, cfg),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(
                    size=min(workers, len(units)), max_tasks_in_flight_per_actor=1
                ),
                num_cpus=cpus,
                num_gpus=opts.gpus_per_worker or None,
                max_restarts=opts.retries,
                max_task_retries=opts.retries,
            )
        try:
            for row in results.iter_rows():
                rec: dict[str, Any] = json.loads(row["record"])
                manifest.append(rec)
                on_record(rec)
                if cfg.fail_fast and rec["status"] != "ok":
                    raise StopBatch(rec.get("error", "failed"))
        except (StopBatch, KeyboardInterrupt):
            raise
        except Exception as exc:
            ours = _cause(exc, ChatterboxError)
            if ours is not None:  # e.g. a worker could not load the model
                raise ours from None
            if _is_crash(ray, exc):
                raise WorkerCrashed(
                    f"a unit of rows killed its worker {opts.retries + 1} times (out of memory?)"
                    "; finished rows are kept — fix the cause and run the same command again"
                ) from None
            raise
    finally:
        if started:
            ray.shutdown()


def _cause(exc: BaseException | None, kind):
    """The first exception of `kind` in `exc`'s chain (Ray wraps a worker's in RayTaskError)."""
    while exc is not None:
        if isinstance(exc, kind):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


def _is_crash(ray, exc: BaseException) -> bool:
    crash = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
    return _cause(exc, crash) is not None
