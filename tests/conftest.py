"""Shared fixtures: one random-weight, full-size checkpoint per machine, one engine per session."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatterbox_cli.testing.checkpoints import build, reference_clip

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = Path(os.environ.get("CHATTERBOX_TEST_CHECKPOINT", REPO / ".cache" / "random-turbo"))
NANO_CHECKPOINT = REPO / ".cache" / "random-nano"
STANDARD_CHECKPOINT = REPO / ".cache" / "random-standard"
MULTILINGUAL_CHECKPOINT = REPO / ".cache" / "random-multilingual"
PACK_CHECKPOINT = REPO / ".cache" / "random-multilingual-pt-br"
FLASH_CHECKPOINT = REPO / ".cache" / "random-flash"
LAST = (
    "test_request.py",
    "test_nano.py",
    "test_standard.py",
    "test_multilingual_v2.py",
    "test_multilingual.py",
    "test_packs.py",
    "test_flash.py",
)
"""Modules of another family run after the Turbo ones, in this order: each family is loaded
once, in turn (test_request.py's probe family is Turbo's checkpoint under another name)."""


def interruptible() -> None:
    """`preexec_fn` for a subprocess the test will Ctrl-C: a shell's background job (`make test
    &`) ignores SIGINT, children inherit that, and Python then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pytest_configure(config):
    """Ray's temp root for this test session (RAY_TMPDIR; short, for its socket paths),
    inherited by every Ray the tests start, in process or not. Ray notes a cluster's address in
    <root>/ray, so that folder is made here: no test relies on a /tmp/ray left by another run."""
    root = Path(tempfile.mkdtemp(prefix="cbx-ray-", dir="/tmp"))
    (root / "ray").mkdir()
    os.environ["RAY_TMPDIR"] = config.ray_root = str(root)


def pytest_unconfigure(config):
    if getattr(config, "ray_root", None):
        shutil.rmtree(config.ray_root, ignore_errors=True)


CHECKPOINTS = {
    "checkpoint",
    "nano_checkpoint",
    "standard_checkpoint",
    "multilingual_checkpoint",
    "pack_checkpoint",
    "flash_checkpoint",
}
"""A test that uses one of these (directly or through another fixture) is marked `checkpoint`;
`make test-fast` runs the others."""


def pytest_collection_modifyitems(items):
    for item in items:
        if CHECKPOINTS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.checkpoint)
    items.sort(key=lambda item: LAST.index(item.path.name) + 1 if item.path.name in LAST else 0)


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    """Built once (~30 s, ~3 GB) and reused by later sessions; see `testing/checkpoints.py`."""
    return build(CHECKPOINT)


@pytest.fixture(scope="session")
def nano_checkpoint() -> Path:
    """Nano's checkpoint (~1.8 GB: Turbo's files with a GPT-2 small T3), likewise built once."""
    return build(NANO_CHECKPOINT, "nano")


@pytest.fixture(scope="session")
def standard_checkpoint() -> Path:
    """Standard's checkpoint (~3.2 GB, ~45 s to build), likewise built once."""
    return build(STANDARD_CHECKPOINT, "standard")


@pytest.fixture(scope="session")
def multilingual_checkpoint() -> Path:
    """Multilingual's checkpoint (~5.3 GB with V2's and V3's T3, ~45 s to build), likewise."""
    return build(MULTILINGUAL_CHECKPOINT, "multilingual")


@pytest.fixture(scope="session")
def pack_checkpoint() -> Path:
    """The pt-br language pack's checkpoint (~3.2 GB, ~40 s to build), likewise."""
    return build(PACK_CHECKPOINT, "multilingual-pt-br")


@pytest.fixture(scope="session")
def flash_checkpoint() -> Path:
    """Chatterbox-Flash's checkpoint (~3.2 GB: the package's T3, a meanflow S3Gen), likewise."""
    return build(FLASH_CHECKPOINT, "flash")


def fake_hub_cache(hf_home: Path, repo: str, files: list[Path], revision: str = "0123abc") -> Path:
    """`files` linked into a hub cache laid out as huggingface_hub keeps one (refs/main ->
    snapshots/REV), so an offline process finds `repo` cached. Returns the snapshot."""
    folder = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for f in files:
        (snapshot / f.name).symlink_to(f)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    return snapshot


def assert_ray_matches_local(cli, tmp_path: Path, lines: list[str], model: str, *flags) -> None:
    """`batch` through the Ray executor (a fresh embedded cluster, one worker, the driver a
    subprocess as users run it) against the local executor: the same speech tokens and audio,
    provenance naming `model`."""
    import json
    import subprocess
    import sys

    import numpy as np
    import soundfile as sf

    from chatterbox_cli.sinks import provenance

    src = tmp_path / "course.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = ("--model", model, *flags)
    local = cli("batch", src, "-d", tmp_path / "local", *common)
    assert local.exit_code == 0, local.output
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CHATTERBOX_DEBUG")}
    env |= {"RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "chatterbox_cli", "batch", str(src), "-d", str(tmp_path / "ray")]
    cmd += [*map(str, common), "--executor", "ray", "--workers", "1"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]

    def records(folder):
        lines = (tmp_path / folder / "manifest.jsonl").read_text().splitlines()
        return sorted((json.loads(line) for line in lines), key=lambda rec: rec["name"])

    for a, b in zip(records("local"), records("ray"), strict=True):
        assert a["status"] == b["status"] == "ok" and a["speech_tokens"] == b["speech_tokens"]
        wav_a, _ = sf.read(a["output"])
        wav_b, _ = sf.read(b["output"])
        np.testing.assert_allclose(wav_a, wav_b, atol=2 / 32768)
        assert provenance.read(Path(b["output"]))["model"] == model


@pytest.fixture(scope="session")
def engine(checkpoint):
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    return load_engine(ModelSource("turbo", checkpoint), "cpu")


@pytest.fixture(scope="session")
def reference_wav(tmp_path_factory) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("ref") / "speaker.wav"
    sf.write(path, reference_clip(6.5, seed=1), 24000)
    return path


@pytest.fixture
def voices_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "voices"
    monkeypatch.setenv("CHATTERBOX_VOICES_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def whisper_model() -> Path:
    """A tiny random-weight faster-whisper model (`testing/whisper.py`): ~5 s to build, kept in
    .cache for later sessions. It hears noise; its code path and cost are a real model's."""
    from chatterbox_cli.testing import whisper

    return whisper.build(REPO / ".cache" / "random-whisper")


@pytest.fixture(scope="session")
def detector():
    """Perth's detector, to prove an output is watermarked (`get_watermark` > 0.5)."""
    import perth

    return perth.PerthImplicitWatermarker()


@pytest.fixture
def cli(monkeypatch, voices_dir):
    """Invoke the real Typer app in-process (the loaded engine is reused across calls)."""
    from chatterbox_cli.cli import app

    monkeypatch.delenv("CHATTERBOX_MODEL_DIR", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def plain_mode(folder: Path) -> int:
    """The permission bits a plain write gives a new file in `folder` (0666 less the umask):
    what every finished output must have."""
    probe = folder / ".plain-write-probe"
    probe.write_bytes(b"")
    mode = probe.stat().st_mode & 0o777
    probe.unlink()
    return mode


@contextlib.contextmanager
def serving(engine, **options):
    """A real uvicorn server on a free loopback port around `engine`; yields its base URL
    and stops it (lifespan included) on exit."""
    with served_app(engine, **options) as (url, _app):
        yield url


@contextlib.contextmanager
def served_app(engine, **options):
    """`serving`, yielding the app too (`app.state.served`: its engine, scheduler, metrics)."""
    import socket
    import threading
    import time

    import uvicorn

    from chatterbox_cli.server import transport
    from chatterbox_cli.server.app import ServeOptions, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(engine, ServeOptions(**options))
    srv = uvicorn.Server(transport.config(app, "127.0.0.1", port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def browser():
    """Debian's chromium, headless, driven by Selenium (the web page and read-along tests)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (binary and driver_path):
        if os.geteuid() != 0:  # no root, so `make browser` could not install them: say so, once
            pytest.skip("no chromium/chromedriver (and no root to apt-get install them)")
        pytest.fail("needs Debian's chromium and chromium-driver (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    flags = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio"]
    flags += ["--autoplay-policy=no-user-gesture-required", "--window-size=900,1000"]
    for arg in flags:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
