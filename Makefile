# The two commands of the README are `make demo` and `make test`; both install what is
# missing first (lab/setup.sh) and are safe to run again.
SHELL := /bin/bash
IN_LAB := lab/netns.sh exec
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint demo lab-up lab-down bench soak side-by-side

setup:
	@lab/setup.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: lint
	$(IN_LAB) $(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(IN_LAB) $(PY) -m lab.demo

lab-up: setup
	$(IN_LAB) $(PY) -m lab up

lab-down:
	$(PY) -m lab down
	lab/netns.sh down

bench: setup
	$(IN_LAB) $(PY) -m bench.calls
	$(IN_LAB) $(PY) -m bench.scale
	$(IN_LAB) $(PY) -m bench.turns
	$(PY) -m bench.bench_directory
	$(PY) -m bench.routing

# 200 sequential real calls over every lifecycle path, then what they left behind
# (rooms, participants, jobs, records, memory): bench/RESULTS.md, "Soak".
soak: setup
	$(IN_LAB) $(PY) -m bench.soak

# switchboard's AI worker next to the framework's floor (bench/reference_agent.py) on one
# lab: per-call CPU, memory, latency and bursts, reference vs switchboard
# (bench/RESULTS.md, "Side by side with the reference agent"). CALLS=20 by default.
CALLS ?= 20
side-by-side: setup
	$(IN_LAB) $(PY) -m bench.side_by_side --calls $(CALLS)
