# The two commands of the README are `make demo` and `make test`; both install what is
# missing first (lab/setup.sh) and are safe to run again.
SHELL := /bin/bash
IN_LAB := lab/netns.sh exec
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint demo lab-up lab-down bench soak side-by-side test-busy evals

setup:
	@lab/setup.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The whole suite in two lanes, each with its own lab (lab/lanes.py); with PYTEST_ARGS, one
# pytest as given, in the lab's namespace.
test: lint
ifeq ($(strip $(PYTEST_ARGS)),)
	$(PY) -m lab.lanes
else
	$(IN_LAB) $(PY) -m pytest $(PYTEST_ARGS)
endif

# LLM-judged evals of the agent on every route (README, Tests): they need OPENAI_API_KEY
# (OPENAI_BASE_URL for another compatible endpoint); without it each is skipped, saying why.
evals:
	uv sync --frozen --quiet
	$(PY) -m pytest -m evals -rs tests/test_evals.py

demo: setup
	$(IN_LAB) $(PY) -m lab.demo

# AI=1 also runs the worker of the lab's AI number (its AI: lab/testing/fake_openai.py).
lab-up: setup
	$(IN_LAB) $(PY) -m lab up $(if $(AI),--ai)

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

# The lab tests that once raced the framework's process start timeout on a busy machine,
# run while a busy loop takes one of the cores (it stops with the run, 15 min at most).
BUSY_TESTS := \
	tests/test_first_call.py::test_caller_hangup_removes_the_room_and_ends_the_job \
	tests/test_image_steps_calls.py \
	tests/test_lifecycle_calls.py::test_operator_deleting_the_room_ends_the_call_and_the_job \
	tests/test_lifecycle_calls.py::test_a_job_without_a_caller_ends_after_the_timeout \
	tests/test_records_calls.py::test_sigterm_lets_the_call_in_progress_finish \
	tests/test_records_calls.py::test_sigterm_in_goodbye_mode_says_goodbye_then_hangs_up

test-busy: setup
	$(PY) -m bench.hog --cores 1 --seconds 900 -- $(IN_LAB) $(PY) -m pytest $(BUSY_TESTS)
