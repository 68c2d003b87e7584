"""Chatterbox-Flash on a random-weight checkpoint built from the `chatterbox-flash` package's own
classes: exact against the package's `generate()` (torch engine), where a stop ends it, batched
rows against rows alone, block streaming, and every command.

conftest.py runs this module last, so this family is loaded once, after the others."""

import copy
import io
import json
import os
import threading
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_ray_matches_local, fake_hub_cache, serving
from safetensors import safe_open
from upstream_parity import NoWatermark

from chatterbox_cli.models import get
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.text.segment import TextGroup

FLASH = get("flash")
QUICK = replace(FLASH.defaults, steps=2, block_size=4)
"""Blocks of 4 tokens in at most 2 steps: several blocks in a few seconds."""
FAST = ("--max-new-tokens", "8", "--steps", "2", "--block-size", "4", "--seed", "5")
STOP = 6562


@pytest.fixture(scope="module")
def flash(flash_checkpoint):
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    return load_engine(ModelSource("flash", flash_checkpoint), "cpu")


def package_generate(engine, monkeypatch, text, params, cap, seed, clip=None):
    """The package's own `ChatterboxFlashTTS.generate()` on the torch engine, from the built-in
    voice (or `clip`, prepared by the package at `params.exaggeration`), T3 capped at `cap`:
    (T3's tokens as it trims them, T3's raw length, its waveform)."""
    tts = engine.tts
    captured = {}
    generate = tts.t3.generate

    def capture(*args, **kwargs):
        captured["tokens"] = generate(*args, **kwargs)
        return captured["tokens"]

    monkeypatch.setattr(tts.t3, "generate", capture)
    monkeypatch.setattr(tts, "conds", copy.copy(engine.builtin_voice))
    tts.t3.set_block_size(params.block_size)
    torch.manual_seed(seed)
    wav = tts.generate(
        text,
        audio_prompt_path=clip,
        exaggeration=params.exaggeration,
        num_steps=params.steps,
        temperature=params.temperature,
        cfg_scale=params.cfg_weight,
        backend="torch",
        max_speech_tokens=cap,
    )
    raw = captured["tokens"][0]
    return tts._trim_to_eos(raw).tolist(), raw.numel(), wav.numpy()


def ours(engine, text, params, cap, seed, voice=None):
    (chunk,) = engine.synthesize(
        [TextGroup(0, text, 0)], voice or engine.builtin_voice, RenderOptions(params, cap, seed)
    )
    return chunk


def test_the_t3_is_the_packages_and_every_tensor_is_loaded(flash, flash_checkpoint):
    from chatterbox_flash import ChatterboxFlashT3, ChatterboxFlashTTS

    assert isinstance(flash.tts, ChatterboxFlashTTS)
    t3 = flash.tts.t3
    assert isinstance(t3, ChatterboxFlashT3) and t3.mask_token_id == 8194
    assert t3.speech_emb.weight.shape[0] == 8195  # the [MASK] row
    state = t3.state_dict()
    with safe_open(flash_checkpoint / "t3_flash.safetensors", "pt") as f:
        assert set(state) == set(f.keys()) - {"text_head.weight"}
        for key in state:
            assert torch.equal(state[key], f.get_tensor(key)), key
    assert not any(t.is_meta for t in (*t3.parameters(), *t3.buffers()))
    assert flash.tts.s3gen.meanflow and flash.watermarker is not None
    from chatterbox_cli.models.t3.blocks import flash_cond

    voice = flash.builtin_voice.t3
    assert flash_cond(t3, voice) is voice  # float32 both
    half = copy.copy(voice).to(dtype=torch.bfloat16)  # as a bf16 T3 (CUDA) would hold it
    cast = flash_cond(t3, half)
    assert cast.speaker_emb.dtype == cast.emotion_adv.dtype == torch.float32
    assert half.speaker_emb.dtype == torch.bfloat16  # the voice itself is left as it was
    assert cast.cond_prompt_speech_tokens.dtype == torch.long


@pytest.mark.parametrize("knobs", ["defaults", "other-knobs-and-a-clip"])
def test_tokens_and_samples_equal_the_packages_generate(flash, monkeypatch, reference_wav, knobs):
    """Two blocks of 16 at its defaults; five of 4 with other knobs, a clip prepared by the
    package at another exaggeration, ours from the same clip with the exaggeration swapped in."""
    monkeypatch.setattr(flash.tts, "watermarker", NoWatermark())
    text = "Hello there: 3 quick checks, with “quotes”."
    if knobs == "defaults":
        params, cap, clip, voice = FLASH.defaults, 20, None, None
    else:
        params = replace(
            FLASH.defaults, temperature=0.9, cfg_weight=0.5, exaggeration=0.8, steps=3, block_size=4
        )
        cap, clip, voice = 18, reference_wav, flash.prepare_reference(reference_wav)
    tokens, raw, wav = package_generate(flash, monkeypatch, text, params, cap, 11, clip)
    chunk = ours(flash, text, params, cap, 11, voice)
    assert raw == cap and len(tokens) > cap // 2  # no stop: every block ran
    assert chunk.speech_tokens == tokens and not chunk.stopped
    np.testing.assert_array_equal(chunk.audio, wav)


def test_a_stop_raised_by_a_hook_stops_both_at_the_same_block(flash, monkeypatch):
    """From its third call on, the speech head favours the stop token: a later block samples it,
    and the package's loop and ours end at that block with the same tokens."""
    calls = [0]

    def raise_stop(module, args, logits):
        calls[0] += 1
        if calls[0] < 3:
            return logits
        logits = logits.clone()
        logits[..., STOP] += 100.0
        return logits

    handle = flash.tts.t3.speech_head.register_forward_hook(raise_stop)
    try:
        tokens, raw, _ = package_generate(flash, monkeypatch, "Stop soon.", QUICK, 40, 3)
        calls[0] = 0
        chunk = ours(flash, "Stop soon.", QUICK, 40, 3)
    finally:
        handle.remove()
    assert chunk.stopped and chunk.speech_tokens == tokens
    assert QUICK.block_size <= len(tokens) <= raw < 40  # past the first block, before the cap


def test_batched_rows_equal_the_same_rows_alone(flash, monkeypatch):
    """Rows of other texts, caps, voices and knobs (decoded in a second call) beside a row do
    not change it: every row samples from its own seed's RNG. On the package's own torch engine
    they do (its ragged cache hides a shorter row's earlier blocks): `ragged.py` fixes that."""
    from chatterbox_cli.models.t3 import blocks, ragged
    from chatterbox_cli.models.t3.blocks import decode, decode_batch

    t3, cond = flash.tts.t3, flash.builtin_voice.t3

    def row(text, seed, cap=12, params=QUICK):
        gen = torch.Generator().manual_seed(seed)
        return Row(FLASH.t3_cond(flash.builtin_voice, params), flash.text_tokens(text), params,
                   cap, gen)  # fmt: skip

    other = replace(QUICK, steps=1, temperature=1.0)
    together = decode_batch(
        t3,
        [
            row("A longer sentence beside the first.", 6, 10),
            row("Short one.", 5),
            row("Other knobs.", 7, 8, other),
        ],  # fmt: skip
    )
    assert decode_batch(t3, [row("Short one.", 5)]) == [together[1]]
    alone = decode_batch(t3, [row("A longer sentence beside the first.", 6, 10)])
    assert alone == [together[0]]  # a budget of 10 in blocks of 4: its last block padded
    alone = [int(t) for t in decode(t3, row("Short one.", 5))]
    assert FLASH.speech_tokens(alone) == FLASH.speech_tokens(together[1])
    assert [len(t) for t in together] == [10, 12, 8] and together[0] != together[1]
    assert cond is flash.builtin_voice.t3
    monkeypatch.setattr(ragged, "install", lambda *a: None)
    monkeypatch.setattr(t3, "_cached_engine", None)
    upstream = blocks.decode_batch(
        t3, [row("A longer sentence beside the first.", 6, 10), row("Short one.", 5)]
    )
    assert upstream[1][:4] == together[1][:4] and upstream[1] != together[1]


def test_tokens_come_block_by_block_and_closing_ends_the_worker(flash):
    """The first block's tokens are out after its own forwards, long before the last block's;
    a consumer that stops listening ends upstream's loop (no thread left behind)."""
    from chatterbox_cli.models.t3.blocks import decode

    t3 = flash.tts.t3
    t3.prime_uncond_block_prior(torch.float32, "cpu", QUICK.block_size)  # not counted below
    calls = [0]
    handle = t3.speech_head.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        row = Row(flash.builtin_voice.t3, flash.text_tokens("Block by block."), QUICK, 24)
        tokens = decode(t3, row, Decoding())
        first = [next(tokens) for _ in range(4)]
        assert calls[0] <= QUICK.steps and len(first) == 4
        rest = list(tokens)
        assert len(first) + len(rest) == 24 and calls[0] > 4
        stats = Decoding()
        partial = decode(t3, row, stats)
        next(partial)
        partial.close()
    finally:
        handle.remove()
    assert not [t for t in threading.enumerate() if t.name == "flash-t3"]
    cancelled = threading.Event()
    cancelled.set()
    assert list(decode(t3, row, Decoding(cancel=cancelled))) == []
    one_block = replace(row, max_new_tokens=QUICK.block_size)
    assert list(decode(t3, one_block, Decoding(cancel=cancelled))) == []
    assert len(list(decode(t3, one_block, stats))) == QUICK.block_size
    assert stats.stats.blocks >= 1 and stats.stats.steps >= 1


def test_a_stream_sends_a_piece_per_block(flash):
    """Streaming with no `stream_tokens`: Flash's unit is its block (less S3Gen's lookahead),
    so a group of several blocks comes in several pieces, leveled and watermarked each."""
    from chatterbox_cli import Synthesizer
    from chatterbox_cli.synth.request import SpeechRequest

    plan = SpeechRequest("Hi.", streaming=True).plan(FLASH)
    assert plan.options.stream_tokens == FLASH.defaults.block_size - 3
    tts = Synthesizer.of(flash)
    knobs = dict(steps=2, block_size=7, max_new_tokens=28, seed=2)
    pieces = list(tts.stream("One group only.", **knobs))
    assert len(pieces) >= 3 and all(len(p.samples) for p in pieces)
    assert sum(p.samples.size for p in pieces) >= 26 * 960  # 28 tokens, S3Gen's (boosted)


def test_lockstep_runs_the_worker_only_while_asked_and_always_ends_it():
    """The thread under Flash's streaming: it makes the next item only when asked; closing ends
    it; Ctrl-C while it works sets `halt`, which it polls (as the block hook does)."""
    import signal
    import time

    from chatterbox_cli.models.t3.blocks import Ended, lockstep

    made = []

    def work(emit, halt):
        for i in range(4):
            made.append(i)
            emit(i)
        return "last"

    items = lockstep(work)
    assert next(items) == 0 and next(items) == 1 and made == [0, 1]
    items.close()
    assert made == [0, 1]
    whole = lockstep(work)
    assert [next(whole) for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(StopIteration) as end:
        next(whole)
    assert end.value.value == "last"

    halted = []

    def busy(emit, halt):
        emit(0)
        deadline = time.monotonic() + 20  # never a hung test, whatever happens to the signal
        while not halt.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        halted.append(halt.is_set())
        raise Ended

    # Python's own Ctrl-C handler, whatever an earlier test (Ray, a server) left installed
    kept = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        items = lockstep(busy)
        next(items)
        main = threading.main_thread().ident
        threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start()  # as Ctrl-C
        with pytest.raises(KeyboardInterrupt):
            next(items)
    finally:
        signal.signal(signal.SIGINT, kept)
    assert halted == [True]
    assert not [t for t in threading.enumerate() if t.name == "flash-t3"]


def test_foreign_knobs_are_refused_before_loading(cli, tmp_path):
    lacking = tmp_path / "empty"
    lacking.mkdir()
    for args, said in (
        (("--model", "flash", "--top-k", "5"), "--top-k is not used by the flash model"),
        (("--model", "flash", "--min-p", "0.1"), "--min-p is not used by the flash model"),
        (("--model", "turbo", "--steps", "4"), "--steps is not used by the turbo model"),
        (("--model", "standard", "--block-size", "8"), "models that use it: flash"),
        (("--model", "flash", "--block-size", "2"), "--block-size must be between 4 and 64"),
        (("--model", "flash", "--steps", "0"), "--steps must be between 1 and 64"),
        (("--model", "flash", "--overlap"), "--overlap is not available for the flash model"),
    ):
        r = cli("say", "Hi.", *args, "--model-dir", lacking, "-o", tmp_path / "x.wav")
        assert r.exit_code == 2 and said in r.stderr, r.stderr
    r = cli("say", "Hi.", "--model", "flash", "--model-dir", lacking, "-o", tmp_path / "x.wav")
    assert r.exit_code != 0 and "lacks ve.safetensors, t3_flash.safetensors" in r.stderr


def test_an_engine_that_is_not_installed_is_one_line(cli, monkeypatch, flash_checkpoint, tmp_path):
    """The package's own switch (`CHATTERBOX_FLASH_ENGINE`) naming an engine not installed here
    (FlashInfer is CUDA-only): refused before loading. The CUDA settings follow the device."""
    from chatterbox_cli.models.flash import t3_dtype
    from chatterbox_cli.models.t3.blocks import upstream_kwargs

    monkeypatch.setenv("CHATTERBOX_FLASH_ENGINE", "flashinfer")
    r = cli("say", "Hi.", "--model", "flash", "--model-dir", flash_checkpoint, "-o",
            tmp_path / "x.wav")  # fmt: skip
    assert r.exit_code == 2 and "needs flashinfer" in r.stderr and "Traceback" not in r.output
    assert upstream_kwargs(QUICK, "cuda:0")["use_cuda_graph"] and t3_dtype("cuda") == torch.bfloat16
    assert not upstream_kwargs(QUICK, "cpu")["use_cuda_graph"] and t3_dtype("cpu") == torch.float32


def test_say_stream_batch_book_and_verify_on_flash(cli, flash, flash_checkpoint, tmp_path):
    common = ("--model", "flash", "--model-dir", flash_checkpoint, *FAST)
    out = tmp_path / "a.wav"
    r = cli("say", "One sentence. And another one.", *common, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    made = report["provenance"]
    assert made["model"] == "flash" and made["t3_file"] == "t3_flash.safetensors"
    assert made["sampling"]["steps"] == 2 and made["sampling"]["block_size"] == 4
    assert set(made["sampling"]) == set(FLASH.knobs)  # not top_k & co, which it never used
    assert made["chatterbox-flash"] == "0.1.0"
    checked = cli("verify", out, "--json")
    assert checked.exit_code == 0 and json.loads(checked.stdout.splitlines()[0])["ok"]
    for stream in ((), ("--stream-tokens", "4")):
        r = cli("say", "Hello there.", *common, "-o", "-", "--format", "raw", *stream)
        assert r.exit_code == 0 and len(r.stdout_bytes) > 0 and len(r.stdout_bytes) % 2 == 0
    rows = tmp_path / "rows.jsonl"
    second = {"id": "b", "text": "Second line.", "steps": 1, "exaggeration": 0.9}
    rows.write_text('{"id": "a", "text": "First line."}\n' + json.dumps(second) + "\n")
    r = cli("batch", rows, "-d", tmp_path / "out", *common, "--json")
    assert r.exit_code == 0, r.output
    records = {rec["id"]: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert cli("verify", records["a"]["output"]).exit_code == 0
    assert records["b"]["provenance"]["sampling"]["steps"] == 1
    assert records["b"]["provenance"]["sampling"]["exaggeration"] == 0.9
    book = tmp_path / "book.txt"
    book.write_text("# One\n\nThe first chapter.\n\n# Two\n\nThe second chapter.\n")
    r = cli("book", book, "-o", tmp_path / "book.m4b", *common, "--json")
    assert r.exit_code == 0, r.output
    checked = cli("verify", tmp_path / "book.m4b", "--json")
    assert checked.exit_code == 0, checked.output


def test_bench_runs_flash_against_the_packages_generate(cli, flash, flash_checkpoint, tmp_path):
    out = tmp_path / "bench.json"
    r = cli(
        "bench", "--model", "flash", "--model-dir", flash_checkpoint, "--text", "Hello there.",
        "--tokens", "8", "--warmup", "0", "--repeats", "1", "--items", "2", "--mode", "upstream",
        "--mode", "simple", "--mode", "stream", "--json", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["env"]["family"] == "flash"
    said = {
        m: doc["summary"][m]["text1"]["speech_tokens"]["median"] for m in ("upstream", "simple")
    }
    assert said["upstream"] == said["simple"] and 0 < said["simple"] <= 8  # one seed: same tokens


def test_voices_a_flash_voice_and_standards_condition_flash(
    cli, flash, flash_checkpoint, reference_wav, voices_dir, tmp_path
):
    from chatterbox_cli.models.voices import load_cached
    from chatterbox_cli.runtime.errors import VoiceError

    r = cli("voice", "cache", reference_wav, "--name", "ann", "--model", "flash",
            "--model-dir", flash_checkpoint, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    made = torch.load(voices_dir / "ann.pt", weights_only=True)
    assert made["meta"]["model"] == "flash"
    made["meta"]["model"] = "standard"  # as `voice cache --model standard` writes it
    torch.save(made, voices_dir / "std-ann.pt")
    r = cli("say", "A Standard voice.", "--voice", "std-ann", "--model", "flash",
            "--model-dir", flash_checkpoint, *FAST, "-o", tmp_path / "v.wav")  # fmt: skip
    assert r.exit_code == 0, r.output
    with pytest.raises(VoiceError, match="made for the flash model, not turbo"):
        load_cached(voices_dir / "ann.pt", "turbo")
    bare = tmp_path / "hub-layout"
    bare.mkdir()
    for f in flash_checkpoint.iterdir():
        if f.name != "conds.pt":
            (bare / f.name).symlink_to(f)
    r = cli("say", "No voice.", "--model", "flash", "--model-dir", bare, *FAST,
            "-o", tmp_path / "n.wav")  # fmt: skip
    assert r.exit_code == 2 and "no built-in voice (conds.pt)" in r.stderr


def test_the_hub_layout_with_its_companion_voice(flash_checkpoint, tmp_path):
    """Flash's repo and ResembleAI/chatterbox's `conds.pt` (the built-in voice) in an offline
    hub cache: listed as cached, and `say` speaks from the joined folder; without the
    companion it is not cached, and `say` says so in one line."""
    import subprocess
    import sys

    own = [f for f in flash_checkpoint.iterdir() if f.name != "conds.pt"]
    fake_hub_cache(tmp_path / "hf", "ResembleAI/chatterbox-flash", own)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}

    def listing():
        r = subprocess.run([sys.executable, "-m", "chatterbox_cli", "models", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        return {row["model"]: row for row in json.loads(r.stdout)}["flash"]

    def say(*flags):
        cmd = [sys.executable, "-m", "chatterbox_cli", "say", "Hi there.", "--model", "flash",
               *FAST, "-o", str(tmp_path / "hub.wav"), "--json", *flags]  # fmt: skip
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    assert not listing()["cached"]
    r = say()
    assert r.returncode != 0 and "ResembleAI/chatterbox-flash" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    fake_hub_cache(tmp_path / "hf", "ResembleAI/chatterbox", [flash_checkpoint / "conds.pt"])
    row = listing()
    assert row["cached"] and row["hub_repo"] == "ResembleAI/chatterbox-flash"
    assert row["t3_file"] == "t3_flash.safetensors"
    env["CHATTERBOX_CACHE_DIR"] = str(tmp_path / "ours")  # where the joined folder goes
    r = say()
    assert r.returncode == 0, r.stderr[-2000:]
    made = json.loads(r.stdout)["provenance"]
    assert made["checkpoint"] == "ResembleAI/chatterbox-flash@0123abc"
    assert made["voice"].startswith("builtin:")  # Standard's conds.pt, joined in


def test_a_flash_server_speaks_buffered_and_streamed(flash):
    import httpx

    body = {"input": "Hello from Flash. A second group.", "seed": 1, "max_new_tokens": 8,
            "steps": 2, "block_size": 4, "response_format": "wav"}  # fmt: skip
    with serving(flash) as url, httpx.Client(base_url=url, timeout=300) as client:
        assert client.get("/health").json()["model"] == "flash"
        r = client.post("/v1/audio/speech", json=body)
        assert r.status_code == 200, r.text
        audio, sr = sf.read(io.BytesIO(r.content))
        assert sr == 24000 and np.abs(audio).max() > 0
        assert json.loads(r.headers["x-chatterbox-provenance"])["model"] == "flash"
        r = client.post("/v1/audio/speech", json={**body, "top_k": 5})
        assert r.status_code == 400 and "top_k" in r.json()["error"]["message"]
        sse = {**body, "stream_format": "sse", "response_format": "pcm"}
        with client.stream("POST", "/v1/audio/speech", json=sse) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert '"speech.audio.delta"' in events[0] and '"speech.audio.done"' in events[-1]
        from websockets.sync.client import connect

        with connect(url.replace("http", "ws") + "/v1/audio/stream", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["model"] == "flash"
            ws.send(json.dumps({"type": "say", "id": "w", **body, "steps": 3}))
            kinds = []
            while not kinds or kinds[-1] not in ("done", "error"):
                kinds.append(json.loads(ws.recv(timeout=300))["type"])
                if kinds[-1] == "chunk":
                    assert len(ws.recv(timeout=30)) > 0
        assert kinds[0] == "start" and "chunk" in kinds and kinds[-1] == "done", kinds


def test_batch_on_an_embedded_ray_cluster_matches_local(cli, flash, flash_checkpoint, tmp_path):
    """Flash through the Ray executor (a fresh embedded cluster, one worker): the same speech
    tokens and audio as the local executor."""
    assert_ray_matches_local(
        cli,
        tmp_path,
        ["First line for Flash.", "A second, longer line for Flash."],
        "flash",
        "--model-dir",
        flash_checkpoint,
        *FAST,
    )
