"""`make test` in two lanes: two pytest processes, each in its own lab namespace.

Nearly all of the suite's time is lab tests waiting on real calls (speech played in real
time, rings, timeouts): about 23 of 25 minutes in one lane, with the 2 cores mostly idle. Two
labs side by side, each with its own namespace and state directory (as parallel labs
always could), halve that wait. Lane 1 runs every unit test and its share of the lab test
modules, lane 2 the rest; a module never splits (its fixtures are per module). The split is
by each module's measured seconds (``tests/lane_weights.json``; `--weigh` rewrites it from
a JUnit report), so the lanes end together; a lab module not in the table counts as
``DEFAULT_WEIGHT``.

    python -m lab.lanes [PYTEST_ARGS...]     # what `make test` runs
    python -m lab.lanes --weigh report.xml   # new weights from `pytest --junitxml`

Lane 1 prints as it runs; lane 2's output follows when both are done, so each lane's
summary reads whole. The exit code is the worse of the two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "tests" / "lane_weights.json"
DEFAULT_WEIGHT = 20.0  # seconds: a new lab module, until the table is weighed again
LANES = 2
STOP_WAIT_S = 60.0  # for an interrupted lane to take its lab down


def split(
    weights: Mapping[str, float], modules: Sequence[str], lanes: int, *, head_start: float = 0.0
) -> list[list[str]]:
    """``modules`` in ``lanes`` groups of about equal weight: the heaviest first, each to
    the lightest lane so far (longest processing time first). Lane 1 starts ``head_start``
    seconds in: the unit tests, which it runs all of."""
    load = [head_start] + [0.0] * (lanes - 1)
    groups: list[list[str]] = [[] for _ in range(lanes)]
    for module in sorted(modules, key=lambda m: (-weights.get(m, DEFAULT_WEIGHT), m)):
        lane = min(range(lanes), key=lambda i: (load[i], i))
        groups[lane].append(module)
        load[lane] += weights.get(module, DEFAULT_WEIGHT)
    return groups


def parse_lane(raw: str) -> tuple[int, int]:
    """``K/N`` (lane K of N, from 1) as numbers; ValueError saying what is wrong."""
    k, sep, n = raw.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
        raise ValueError(f"--lane {raw!r}: give K/N with 1 <= K <= N, e.g. 2/2")
    return int(k), int(n)


def load_weights(path: Path = WEIGHTS) -> dict[str, float]:
    return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}


def weigh(junit: Path) -> dict[str, float]:
    """Seconds per test module (``tests/test_x.py``) from a JUnit report."""
    seconds: dict[str, float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        seconds[module] = seconds.get(module, 0.0) + float(case.get("time") or 0)
    return {k: round(v, 1) for k, v in sorted(seconds.items())}


def lane_env(env: Mapping[str, str], lane: int) -> dict[str, str]:
    """Lane 1 is the lab as configured; lane K its own namespace and state beside it
    (addresses may repeat: each namespace has its own)."""
    out = dict(env)
    if lane > 1:
        name = env.get("LAB_NETNS_NAME") or "switchboard-lab"
        out["LAB_NETNS_NAME"] = f"{name}-{lane}"
        out["LAB_STATE_DIR"] = f"{env.get('LAB_STATE_DIR') or ROOT / '.lab'}-{lane}"
    return out


def _namespace_exists(name: str) -> bool:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == name for line in listed.splitlines() if line.split())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """A lane still running when the run was interrupted: stopped as Ctrl+C stops pytest,
    so that its fixtures take its lab down (SIGTERM would leave the lab's processes)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_WAIT_S)  # a Ctrl+C in the terminal reached the lanes too
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(pytest_args: Sequence[str], lanes: int) -> int:
    netns = str(ROOT / "lab" / "netns.sh")
    procs: list[tuple[int, subprocess.Popen[bytes], Path | None]] = []
    created: list[dict[str, str]] = []
    started = time.monotonic()
    try:
        for lane in range(1, lanes + 1):
            env = lane_env(os.environ, lane)
            if lane > 1 and not _namespace_exists(env["LAB_NETNS_NAME"]):
                created.append(env)  # ours: taken down at the end
            argv = [netns, "exec", sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
            argv += [f"--lane={lane}/{lanes}", *pytest_args]
            log = None
            if lane > 1:
                log = Path(env["LAB_STATE_DIR"] + ".log")
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("wb") as out:
                    procs.append(
                        (lane, subprocess.Popen(argv, env=env, stdout=out, stderr=out), log)
                    )
            else:
                procs.append((lane, subprocess.Popen(argv, env=env), None))
        codes = {lane: proc.wait() for lane, proc, _ in procs}
    finally:
        for _, proc, _ in procs:  # interrupted: stop the lanes we started, by pid
            _stop(proc)
        for env in created:
            subprocess.run([netns, "down"], env=env, check=False)
    for lane, _, log in procs:
        if log is not None:
            print(f"\n===== lane {lane} of {lanes} (its output, {log}) =====", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
    minutes = (time.monotonic() - started) / 60
    words = ", ".join(
        f"lane {k}: {'passed' if c == 0 else f'failed ({c})'}" for k, c in codes.items()
    )
    print(f"\n===== {words}; {minutes:.1f} min =====", flush=True)
    return max(codes.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.lanes", description=__doc__.split("\n")[0])
    parser.add_argument("--weigh", type=Path, metavar="JUNIT_XML", help="rewrite the weights")
    args, pytest_args = parser.parse_known_args(argv)
    if args.weigh:
        WEIGHTS.write_text(json.dumps(weigh(args.weigh), indent=1) + "\n")
        print(f"wrote {WEIGHTS.relative_to(ROOT)}")
        return 0
    # Without a namespace (a laptop without root) two labs would want the same ports.
    host = os.environ.get("SWITCHBOARD_LAB_HOST_NETWORK") == "1"
    lanes = 1 if host else int(os.environ.get("SWITCHBOARD_TEST_LANES", LANES))
    return run(pytest_args, lanes)


if __name__ == "__main__":
    sys.exit(main())
