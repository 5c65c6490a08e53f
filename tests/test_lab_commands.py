"""The lab's own commands, as the README gives them to a newcomer: `python -m lab call`
places a real call and prints what happened, with the call's record complete; `python -m
lab env` points `switchboard calls` at the lab's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        [*argv],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_lab_call_says_what_happened_and_leaves_a_complete_record(lab: LabHandle) -> None:
    number = lab.env["LAB_INBOUND_NUMBER"]
    out = run(
        sys.executable, "-m", "lab", "call", number,
        "--from", "+15105553333", "--header", "X-Customer-Id=newcomer-7", "--dtmf", "1",
    )  # fmt: skip
    assert "answered        : True (SIP 200)" in out
    assert "'customer_id': 'newcomer-7'" in out  # the header reached the agent
    assert "how it ended    : the agent hung up (keyless)" in out
    assert "record          : complete" in out, out

    exports = run(sys.executable, "-m", "lab", "env")
    env = dict(os.environ)
    for line in exports.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    assert env["DATABASE_URL"] == lab.env["LAB_DATABASE_URL"]
    listed = json.loads(run(str(ROOT / ".venv/bin/switchboard"), "calls", "--json", env=env))
    numbers = [c["caller_number"] for c in listed]
    assert "+1510••••3333" in numbers, listed


def test_a_call_to_a_bad_header_is_refused_with_the_fix(lab: LabHandle) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab", "call", lab.env["LAB_INBOUND_NUMBER"], "--header", "Nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "give it as X-Name=value" in done.stderr
    assert "Traceback" not in done.stderr
