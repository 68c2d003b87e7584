"""Bad input: one line on stderr naming the fix, the right exit code, no traceback, no file."""

import os
import pickle
import subprocess
import sys

import pytest
import torch
from conftest import interruptible

from chatterbox_cli.testing.checkpoints import reference_clip


def assert_clean_error(result, code, *needles):
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert err.startswith("error:") and "\n" not in err, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err, err
    assert result.stdout == ""


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_files(d):
    return [p.name for p in d.iterdir() if p.is_file()] == []


def test_empty_text(cli, outdir):
    assert_clean_error(cli("say", "  \n\t "), 2, "empty")
    assert_clean_error(cli("say", input=""), 2, "empty")
    assert no_files(outdir)


def test_no_text_at_all_on_a_terminal(monkeypatch):
    import io

    from chatterbox_cli.cli.say import read_text
    from chatterbox_cli.runtime.errors import BadInput

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    with pytest.raises(BadInput, match="no text given"):
        read_text(None, None)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped")))
    assert read_text(None, None) == "piped"


def test_missing_and_non_utf8_text_file(cli, outdir):
    assert_clean_error(cli("say", "-f", "nope.txt"), 2, "nope.txt", "does not exist")
    (outdir / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    assert_clean_error(cli("say", "-f", "latin1.txt"), 2, "UTF-8", "offset 3")
    assert_clean_error(cli("say", "text", "-f", "latin1.txt"), 2, "not both")


def test_existing_output_needs_overwrite(cli, outdir):
    (outdir / "taken.wav").write_bytes(b"precious")
    assert_clean_error(cli("say", "Hi.", "-o", "taken.wav"), 2, "--overwrite")
    assert (outdir / "taken.wav").read_bytes() == b"precious"
    (outdir / "hi.wav").write_bytes(b"precious")
    assert_clean_error(cli("say", "Hi."), 2, "hi.wav", "--overwrite")


def test_bad_formats_and_values(cli, outdir):
    assert_clean_error(cli("say", "Hi.", "-o", "x.aiff"), 2, ".wav, .flac, .mp3, .opus or .ogg")
    assert_clean_error(cli("say", "Hi.", "-o", "x.mp3", "--subtype", "FLOAT"), 2, "WAV only")
    assert_clean_error(cli("say", "Hi.", "-o", "x.flac", "--subtype", "FLOAT"), 2, "PCM_16")
    assert_clean_error(cli("say", "Hi.", "--top-p", "0"), 2, "--top-p")
    assert_clean_error(cli("say", "Hi.", "--temperature", "0"), 2, "--temperature")
    assert_clean_error(cli("say", "Hi.", "--max-new-tokens", "0"), 2, "--max-new-tokens")
    assert_clean_error(cli("say", "Hi.", "--lufs", "3"), 2, "--lufs")
    assert no_files(outdir)


def test_bad_model_and_device(cli, outdir, checkpoint):
    assert_clean_error(cli("say", "Hi.", "--model", "huge"), 2, "unknown model", "turbo")
    assert_clean_error(cli("say", "Hi.", "--model-dir", outdir / "none"), 1, "--model-dir")
    (outdir / "half").mkdir()
    (outdir / "half" / "ve.safetensors").write_bytes(b"")
    assert_clean_error(
        cli("say", "Hi.", "--model-dir", outdir / "half"), 1, "t3_turbo_v1.safetensors"
    )
    r = cli("say", "Hi.", "--model-dir", checkpoint, "--device", "tpu")
    assert_clean_error(r, 2, "unknown device", "cpu")
    if not torch.cuda.is_available():
        r = cli("say", "Hi.", "--model-dir", checkpoint, "--device", "cuda")
        assert_clean_error(r, 2, "--device cpu")


def test_voice_errors_before_model_load(cli, outdir, voices_dir):
    assert_clean_error(cli("say", "Hi.", "--voice", "ghost"), 2, "ghost", "voice list")
    assert_clean_error(cli("say", "Hi.", "--voice", "missing.wav"), 2, "does not exist")
    import soundfile as sf

    sf.write(outdir / "short.wav", reference_clip(3.0), 24000)
    assert_clean_error(cli("say", "Hi.", "--voice", "short.wav"), 2, "3.0 s", "5 s")
    (outdir / "noise.wav").write_bytes(b"RIFF not really audio")
    assert_clean_error(cli("say", "Hi.", "--voice", "noise.wav"), 2, "cannot read")
    assert_clean_error(cli("voice", "cache", "short.wav"), 2, "5 s")
    assert no_files(voices_dir) if voices_dir.exists() else True


def test_voice_names_follow_the_server_rule(cli, reference_wav, voices_dir):
    """`voice cache --name` takes the names `POST /v1/voices` takes, refused before loading."""
    for name, hint in (("Ann", "'ann'"), ("my voice", "'my-voice'"), ("../x", "'x'")):
        assert_clean_error(cli("voice", "cache", reference_wav, "--name", name), 2, hint)
    assert_clean_error(cli("voice", "cache", reference_wav, "--name", "default"), 2, "invalid")
    assert not voices_dir.exists() or not list(voices_dir.iterdir())


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_voice_pt_must_be_a_voice(cli, outdir, checkpoint):
    torch.save({"t3": Evil(), "gen": {}}, outdir / "evil.pt")
    with open(outdir / "pickle.pt", "wb") as fh:
        pickle.dump(Evil(), fh)
    torch.save({"weights": torch.zeros(3)}, outdir / "wrong.pt")
    conds = torch.load(checkpoint / "conds.pt", weights_only=True)
    torch.save({**conds, "meta": {"model": "multilingual"}}, outdir / "other.pt")
    for name, needle in (
        ("evil.pt", "not a chatterbox voice"),
        ("pickle.pt", "not a chatterbox voice"),
        ("wrong.pt", "expected keys t3 and gen"),
        ("other.pt", "multilingual"),
    ):
        r = cli("say", "Hi.", "--model-dir", checkpoint, "--voice", name, "-o", "o.wav")
        assert_clean_error(r, 2, name, needle)
    assert not (outdir / "pwned").exists()
    assert not (outdir / "o.wav").exists()


def test_checkpoint_without_builtin_voice(cli, outdir, checkpoint):
    bare = outdir / "bare"
    bare.mkdir()
    for f in checkpoint.iterdir():
        if f.name != "conds.pt":
            (bare / f.name).symlink_to(f)
    assert_clean_error(cli("say", "Hi.", "--model-dir", bare), 2, "built-in voice", "--voice")
    rows = outdir / "rows.txt"
    rows.write_text("One.\nTwo.\n")
    r = cli("batch", rows, "-d", outdir / "b", "--model-dir", bare)
    assert_clean_error(r, 2, "2 row(s) name no voice", "--voice")
    assert "Loading" not in r.stderr  # refused before the model loads


def test_a_legacy_pickle_voice_gives_one_line_and_no_torch_warning(cli, outdir, checkpoint):
    legacy = outdir / "legacy.pt"
    torch.save({"meta": {}}, legacy, _use_new_zipfile_serialization=False, pickle_protocol=4)
    r = cli("say", "Hi.", "--voice", legacy, "--model-dir", checkpoint, "-o", outdir / "x.wav")
    assert r.exit_code == 2 and "UserWarning" not in r.stderr and "pickle protocol" not in r.stderr


@pytest.mark.parametrize(
    "model,repo",
    [("turbo", "ResembleAI/chatterbox-turbo"), ("standard", "ResembleAI/chatterbox ")],
)
def test_hub_offline_names_the_fixes(tmp_path, model, repo):
    """Told before torch or upstream chatterbox is imported (they take seconds): `-X importtime`
    lists every module the command imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("CHATTERBOX_MODEL_DIR", None)
    cmd = [sys.executable, "-X", "importtime", "-m", "chatterbox_cli", "say", "Hi.", "--model"]
    r = subprocess.run(
        [*cmd, model, "-o", str(tmp_path / "o.wav")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1, r.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")}  # fmt: skip
    assert "chatterbox_cli.cli" in imported
    assert not {"torch", "chatterbox", "transformers", "perth"} & imported
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("import time")]
    assert lines[-1].startswith("error:") and "Traceback" not in r.stderr
    for needle in ("--model-dir", "HF_HOME", "online", repo):
        assert needle in lines[-1]
    assert r.stdout == ""
    assert not (tmp_path / "o.wav").exists()


HEAVY = {
    *("numpy", "torch", "chatterbox", "transformers", "perth", "ray", "av", "soundfile"),
    *("chatterbox_cli.synth.pipeline", "chatterbox_cli.synth.engine", "chatterbox_cli.api"),
}


@pytest.mark.parametrize("args", [["--help"], ["say", "--help"], ["batch", "--help"],
                                  ["book", "--help"], ["serve", "--help"]])  # fmt: skip
def test_help_imports_nothing_heavy(args):
    """`--help` stays instant: no numpy, torch, upstream, Ray or PyAV (`-X importtime` lists
    every module the command imported; the time itself is in docs/performance.md)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "chatterbox_cli", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")}  # fmt: skip
    assert "chatterbox_cli.cli" in imported and "Usage" in r.stdout
    assert not HEAVY & imported, sorted(HEAVY & imported)


def test_ctrl_c_exits_130_and_leaves_nothing(checkpoint, tmp_path):
    import signal
    import time

    out = tmp_path / "long.wav"
    env = {k: v for k, v in os.environ.items() if k != "CHATTERBOX_DEBUG"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatterbox_cli",
            "say",
            "A long text. " * 20,
            "-o",
            str(out),
            "--model-dir",
            str(checkpoint),
            "--max-new-tokens",
            "500",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=interruptible,
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("Preparing voice"):
            break
    time.sleep(3)  # well inside the first group's decode
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    assert time.monotonic() - started < 10  # stops promptly
    assert proc.returncode == 130, "".join(seen) + rest
    assert rest.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []
