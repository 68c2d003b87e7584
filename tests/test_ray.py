"""`batch --executor ray` on a real Ray cluster on this machine: `ray.cluster_utils.Cluster`
with two nodes (one CPU each; the second declares one GPU), the real pipeline on the
random-weight checkpoint, drivers run as users run them (a subprocess of the CLI)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_cli.sinks.manifest import JOURNALS

LINES = [f"Line {n} of the course, read aloud." for n in range(1, 8)]
TOKENS = ("--max-new-tokens", "5", "--seed", "3")
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


@pytest.fixture(scope="module")
def cluster():
    """One Ray session for the module in the test session's own Ray root (conftest's
    RAY_TMPDIR: short, for socket paths <= 107 bytes; the `ray` folder in it is where Ray also
    notes the cluster's address), no dashboard, small object stores."""
    os.environ.update(RAY_ENV)
    from ray.cluster_utils import Cluster

    node = dict(num_cpus=1, object_store_memory=150 * 2**20, include_dashboard=False)
    temp_dir = str(Path(os.environ["RAY_TMPDIR"]) / "ray")
    c = Cluster(initialize_head=True, head_node_args={**node, "temp_dir": temp_dir})
    gpu_node = c.add_node(**node, num_gpus=1)
    c.wait_for_nodes()
    c.gpu_node_id = gpu_node.node_id
    yield c
    c.shutdown()


def text_file(tmp_path: Path, lines=LINES) -> str:
    path = tmp_path / "course.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def driver(*args, checkpoint, unset=(), **extra_env) -> subprocess.Popen:
    drop = ("CHATTERBOX_DEBUG", "RAY_ADDRESS", *unset)
    env = {k: v for k, v in os.environ.items() if k not in drop} | extra_env
    return subprocess.Popen(
        [sys.executable, "-m", "chatterbox_cli", "batch", *map(str, args)]
        + ["--model-dir", str(checkpoint), *TOKENS],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, **RAY_ENV},
    )


def finish(proc: subprocess.Popen, timeout=400) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def manifest(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def assert_complete(outdir: Path, n: int) -> list[dict]:
    """Every row `ok` exactly once, every WAV valid, nothing temporary left."""
    recs = manifest(outdir)
    assert [r["status"] for r in recs] == ["ok"] * n
    assert len({r["name"] for r in recs}) == n
    for rec in recs:
        info = sf.info(rec["output"])
        assert info.frames > 0 and info.samplerate == 24000
    left = [p.name for p in outdir.iterdir() if p.name.startswith(".")]
    assert left == [], left
    return recs


def wait_for(predicate, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_joining_a_cluster_that_is_not_there_is_one_line(checkpoint, tmp_path):
    """First in the module: `auto` also joins any Ray running on this machine (Ray looks for
    its processes), so this runs before the module's cluster starts."""
    empty = tmp_path / "ray-root"  # a machine where Ray never ran: no ray_current_cluster
    args = (text_file(tmp_path, LINES[:1]), "-d", tmp_path / "out", "--executor", "ray")
    proc = driver(*args, "--ray-address", "auto", checkpoint=checkpoint, RAY_TMPDIR=str(empty))
    code, _, err = finish(proc, timeout=120)
    assert code == 1, err
    assert "no Ray cluster found at --ray-address auto" in err and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_ray_and_local_give_the_same_files_and_records(cli, checkpoint, cluster, tmp_path):
    src = text_file(tmp_path)
    local = cli("batch", src, "-d", tmp_path / "local", "--model-dir", checkpoint, *TOKENS)
    assert local.exit_code == 0, local.output
    proc = driver(
        src, "-d", tmp_path / "ray", "--executor", "ray", "--ray-address", cluster.address,
        "--workers", 2, "--batch-size", 1, "--json", checkpoint=checkpoint,
    )  # fmt: skip
    code, out, err = finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    stdout = [json.loads(line) for line in out.splitlines()]  # only our records on stdout
    ray_recs = assert_complete(tmp_path / "ray", len(LINES))
    assert stdout == ray_recs
    local_recs = assert_complete(tmp_path / "local", len(LINES))
    keys = ("id", "name", "text", "seed", "speech_tokens", "status")
    assert sorted(tuple(r[k] for k in keys) for r in ray_recs) == sorted(
        tuple(r[k] for k in keys) for r in local_recs
    )
    for rec in ray_recs:
        a, _ = sf.read(tmp_path / "local" / Path(rec["output"]).name)
        b, _ = sf.read(rec["output"])
        np.testing.assert_allclose(a, b, atol=2 / 32768)
    assert len({r["node"] for r in ray_recs}) == 2  # both nodes made files
    assert {r["threads"] for r in ray_recs} == {1}  # a worker uses the CPUs it was given


def test_a_book_on_ray_makes_the_groups_a_local_run_makes(cli, checkpoint, cluster, tmp_path):
    """`book --executor ray`: the same work files (names and audio) as a local run, then the
    M4B; markup and the lexicon reach the workers."""
    book = tmp_path / "tale.md"
    book.write_text(
        "# One\n\nAda met Nguyen. [pause:0.5s] They spoke.\n\n# Two\n\nThe end came soon.\n"
    )
    words = tmp_path / "words.tsv"
    words.write_text("Nguyen\tWin\n")
    args = ["--lexicon", words, "--model-dir", checkpoint, *TOKENS]
    local = cli("book", book, "-o", tmp_path / "local.m4b", *args)
    assert local.exit_code == 0, local.output
    out = str(tmp_path / "ray.m4b")
    cmd = [sys.executable, "-m", "chatterbox_cli", "book", str(book), "-o", out,
           "--executor", "ray", "--ray-address", cluster.address, "--workers", "2",
           "--batch-size", "1", "--json", *map(str, args)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CHATTERBOX_DEBUG")}
    done = subprocess.run(cmd, capture_output=True, text=True, env={**env, **RAY_ENV}, timeout=400)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c["title"] for c in report["chapters"]] == ["One", "Two"]
    work = {p.name: p for p in (tmp_path / "local.m4b.work").glob("*.flac")}
    remote = {p.name: p for p in (tmp_path / "ray.m4b.work").glob("*.flac")}
    assert sorted(work) == sorted(remote) and len(work) == report["groups"] == 5  # titles spoken
    said = {r["text"] for r in manifest(tmp_path / "ray.m4b.work")}
    assert "Ada met Win." in said
    for name, path in work.items():
        np.testing.assert_allclose(sf.read(path)[0], sf.read(remote[name])[0], atol=2 / 32768)
    assert (tmp_path / "ray.m4b").stat().st_size > 0


def test_gpus_per_worker_places_workers_on_the_gpu_node(checkpoint, cluster, tmp_path):
    proc = driver(
        text_file(tmp_path, LINES[:2]), "-d", tmp_path / "out", "--executor", "ray",
        "--ray-address", cluster.address, "--gpus-per-worker", 1, checkpoint=checkpoint,
    )  # fmt: skip
    code, _, err = finish(proc)
    assert code == 0, err
    recs = assert_complete(tmp_path / "out", 2)
    assert {r["node"] for r in recs} == {cluster.gpu_node_id}


def test_a_worker_killed_mid_job_is_retried(checkpoint, cluster, tmp_path):
    outdir = tmp_path / "out"
    proc = driver(
        text_file(tmp_path), "-d", outdir, "--executor", "ray", "--ray-address",
        cluster.address, "--workers", 1, "--batch-size", 1, checkpoint=checkpoint,
    )  # fmt: skip
    journals = outdir / JOURNALS

    def first_journal_with_a_record():
        for j in journals.glob("*.jsonl") if journals.is_dir() else []:
            if j.read_text().strip():
                return j

    journal = wait_for(first_journal_with_a_record)
    os.kill(int(journal.stem.rsplit("-", 1)[1]), signal.SIGKILL)
    code, _, err = finish(proc)
    assert code == 0, err
    assert_complete(outdir, len(LINES))


def test_driver_killed_then_rerun_locally_loses_and_repeats_nothing(
    cli, checkpoint, cluster, tmp_path
):
    """The rerun (another executor) recovers files whose records died with the driver."""
    outdir = tmp_path / "out"
    src = text_file(tmp_path)
    proc = driver(
        src, "-d", outdir, "--executor", "ray", "--ray-address", cluster.address,
        "--workers", 1, "--batch-size", 1, checkpoint=checkpoint,
    )  # fmt: skip
    wait_for(lambda: (outdir / "manifest.jsonl").is_file() and manifest(outdir))
    proc.kill()
    proc.wait()
    time.sleep(3)  # the job's actors die with their owner
    r = cli("batch", src, "-d", outdir, "--model-dir", checkpoint, *TOKENS)
    assert r.exit_code == 0, r.output
    assert "already done" in r.stderr
    assert_complete(outdir, len(LINES))


def test_embedded_cluster_finishes_a_job_started_locally(cli, checkpoint, tmp_path):
    outdir = tmp_path / "out"
    first = cli("batch", text_file(tmp_path, LINES[:2]), "-d", outdir, "--model-dir", checkpoint,
                *TOKENS)  # fmt: skip
    assert first.exit_code == 0, first.output
    deep = tmp_path / "a-temporary-folder-as-deep-as-some-systems-make-them"
    deep.mkdir()
    # Ray's default root is then $TMPDIR/ray, too deep for its sockets: the executor must
    # pick a folder that works, on a machine where Ray never ran.
    proc = driver(text_file(tmp_path), "-d", outdir, "--executor", "ray", checkpoint=checkpoint,
                  unset=("RAY_TMPDIR",), TMPDIR=str(deep))  # fmt: skip
    code, _, err = finish(proc)
    assert code == 0, err
    assert f"2 of {len(LINES)} item(s) already done" in err
    assert_complete(outdir, len(LINES))


def test_ray_flags_without_the_ray_executor_are_refused(cli, tmp_path):
    r = cli("batch", text_file(tmp_path), "-d", tmp_path / "o", "--workers", "2")
    assert r.exit_code == 2 and "--workers need --executor ray" in r.stderr


def test_a_unit_that_keeps_killing_its_worker_fails_the_job(checkpoint, cluster, tmp_path):
    """Every worker dies as soon as it is up: bounded retries, then one clear line, exit 1."""
    outdir = tmp_path / "out"
    proc = driver(
        text_file(tmp_path, LINES[:2]), "-d", outdir, "--executor", "ray",
        "--ray-address", cluster.address, "--workers", 1, checkpoint=checkpoint,
    )  # fmt: skip
    killed: set[int] = set()
    deadline = time.monotonic() + 400
    while proc.poll() is None and time.monotonic() < deadline:
        for journal in (outdir / JOURNALS).glob("*.jsonl"):
            pid = int(journal.stem.rsplit("-", 1)[1])
            if pid not in killed:
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    code, _, err = finish(proc)
    assert code == 1, err
    assert "killed its worker 3 times" in err and "Traceback" not in err, err
    assert len(killed) == 3
    assert not (outdir / "manifest.jsonl").read_text()


def test_journals_recover_only_finished_files_missing_from_the_manifest(tmp_path):
    from chatterbox_cli.sinks.manifest import Journal, Manifest, clear_journals, recover_journals

    def rec(name, status="ok"):
        return {"name": name, "output": str(tmp_path / f"{name}.wav"), "status": status}

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.wav").write_bytes(b"RIFF")
    manifest_file = Manifest(tmp_path)
    manifest_file.append(rec("a"))
    manifest_file.close()
    journal = Journal(tmp_path, "host-123")
    for r in (rec("a"), rec("b"), rec("c", "failed"), rec("gone")):
        journal.append(r)
    journal._fh.write('{"torn": ')
    journal.close()
    assert recover_journals(tmp_path) == [rec("b")]  # a: in the manifest; gone: no file
    clear_journals(tmp_path)
    assert not (tmp_path / JOURNALS).exists()


def test_without_ray_installed_the_error_says_how_to_get_it(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    r = cli("batch", text_file(tmp_path), "-d", tmp_path / "o", "--executor", "ray")
    assert r.exit_code == 2
    assert "pip install 'chatterbox-cli[ray]'" in r.stderr and "Traceback" not in r.output
