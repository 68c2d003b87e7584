# One venv in the repo; `make install` is a no-op (seconds) when pyproject.toml is unchanged.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= turbo
CKPT ?= .cache/random-$(MODEL)
PIP_FLAGS ?= --disable-pip-version-check --progress-bar off

.PHONY: install browser test test-fast lint bench bench-decode bench-convert bench-text bench-asr bench-families load checkpoint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -q 'pip>=23' 'setuptools<81' wheel
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,ray,asr]'
	touch $(STAMP)

test: install browser
	$(BIN)/python -m pytest -q --durations=40

# The web page's test drives Debian's chromium and its driver, and the read-along tests check
# their books with Debian's EPUBCheck (a Java jar), installed with apt-get where we are root (as
# CI is); elsewhere (macOS, no root) those tests skip, saying why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  test -f /usr/share/java/epubcheck.jar || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver epubcheck; \
	  else echo "no chromium/EPUBCheck here and no root to install them: their tests will skip"; fi

# The edit-test loop: every test that needs no model checkpoint (a few minutes).
test-fast: install
	$(BIN)/python -m pytest -q -m "not checkpoint"

lint: install
	$(BIN)/ruff check chatterbox_cli tests
	$(BIN)/ruff format --check chatterbox_cli tests
	$(BIN)/deptry .
	$(BIN)/lint-imports
	$(BIN)/python tools/sizes.py chatterbox_cli

checkpoint: install
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-turbo turbo
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-nano nano
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-standard standard
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-multilingual multilingual
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-multilingual-pt-br multilingual-pt-br
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-flash flash

# Real weights when CHATTERBOX_MODEL_DIR is set or the hub cache has them; otherwise the
# random-weight checkpoint the tests use, with fixed token counts (the header says so).
# MODEL=turbo|nano|standard|multilingual|multilingual-v2|multilingual-pt-br (...) picks the family.
BENCH_ARGS ?= --repeats 1
BENCH_JSON ?= bench.json
bench: install
	@if [ -n "$$CHATTERBOX_MODEL_DIR" ] || $(BIN)/python -c "import sys; from chatterbox_cli.models.source import hub_cached; sys.exit(not hub_cached('$(MODEL)'))"; then \
		$(BIN)/chatterbox bench --model $(MODEL) $(BENCH_ARGS) --json $(BENCH_JSON); \
	else \
		$(BIN)/python -m chatterbox_cli.testing.checkpoints $(CKPT) $(MODEL) >/dev/null && \
		$(BIN)/chatterbox bench --model $(MODEL) --model-dir $(CKPT) --tokens auto $(BENCH_ARGS) --json $(BENCH_JSON); \
	fi

# T3 decode alone at 1/4/8/16/32 rows (chatterbox_cli/bench/decode.py): tok/s, step time, peak RSS.
DECODE_ARGS ?= --rows 1,4,8,16,32 --tokens 50
bench-decode: install
	$(BIN)/python -m chatterbox_cli.testing.checkpoints $(CKPT) $(MODEL) >/dev/null
	$(BIN)/python -m chatterbox_cli.bench.decode --model $(MODEL) --model-dir $(CKPT) $(DECODE_ARGS)

# Voice conversion (chatterbox_cli/testing/convert_bench.py): ours vs upstream ChatterboxVC on a
# 10 s source (RTF), then long sources by minutes (time, peak RSS). MODEL=standard|turbo|nano.
CONVERT_ARGS ?= --seconds 10 --minutes 1,2
bench-convert: install
	$(BIN)/python -m chatterbox_cli.testing.checkpoints $(CKPT) $(MODEL) >/dev/null
	$(BIN)/python -m chatterbox_cli.testing.convert_bench --model $(MODEL) --model-dir $(CKPT) $(CONVERT_ARGS)

# The text front-end (chatterbox_cli/testing/text_bench.py): normalization and grouping of
# 100-400 KB of number-dense text per language; the 400/100 KB ratio shows it stays linear.
bench-text: install
	$(BIN)/python -m chatterbox_cli.testing.text_bench $(TEXT_ARGS)

# Listening back (chatterbox_cli/testing/asr_bench.py): transcription time per audio second
# for Whisper tiny- and base-sized models, int8 on this CPU (random weights, real sizes).
bench-asr: install
	$(BIN)/python -m chatterbox_cli.testing.asr_bench $(ASR_ARGS)

# Flash against Standard, Turbo and Nano (chatterbox_cli/testing/family_bench.py): T3 tok/s,
# steps per block, RTF, time to first audio, batched T3 tok/s and peak RSS, same text and budget.
FAMILY_ARGS ?=
bench-families: install
	$(BIN)/python -m chatterbox_cli.testing.family_bench $(FAMILY_ARGS)

# The server under load (docs/serving.md): `chatterbox serve` on the random Turbo checkpoint,
# time to first byte, throughput at 1/4/16 clients, RSS over many requests (LOAD_ARGS: --help).
LOAD_ARGS ?=
load: install
	$(BIN)/python -m chatterbox_cli.testing.checkpoints .cache/random-turbo turbo >/dev/null
	$(BIN)/python -m chatterbox_cli.testing.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache
