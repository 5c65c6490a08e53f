"""`python -m bench.executor`: the thread executor (``SWITCHBOARD_JOB_EXECUTOR=thread``)
against the process one, on the lab (issue 13).  Two parts, each run per executor:

- ``memory``: ``--calls`` sequential short keyless calls (the caller hangs up half a second
  into the greeting, as ``bench.soak``'s first path) to switchboard's own worker
  (``agent.py``), each waited out until the worker runs no job; the worker tree's PSS idle
  before the first call and after every ``--every`` calls, once the tree is settled.
  A leak grows per call; a pool refilling plateaus.
- ``isolation``: the throwaway ``bench/fault_agent.py`` on the lab's AI number; a victim
  call hears its tone, a second call comes up beside it and fails (raises, blocks its
  loop with CPU, holds the GIL, ``os._exit``, segfault).  For the victim: did it stay up
  to its own hang-up, the longest silence it heard after the fault, and whether a third
  call placed afterwards hears the tone (a worker is still there to take it).

Every call has a deadline; the run has ``--max-minutes`` per part and executor.  Prints
tables with the load average at each start and end and writes bench/out/executor.json.
The lab runs with its state in ``<lab state dir>/executor/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.scale import MB, _idle_procs, tree_usage, wait_for_no_lab
from bench.side_by_side import start_worker
from lab.audio import SILENCE_RMS
from lab.phone import CallResult
from lab.procs import LabError, Proc, alive
from lab.stack import ROOT, Lab, LabConfig
from lab.testing.calls import call_lab, worker_active_jobs
from lab.testing.handles import LabHandle

OUT = Path(__file__).resolve().parent / "out"
EXECUTORS = ("thread", "process")
JOB_ENDED_WITHIN = 20.0  # after a call, for the worker to report no job
VICTIM_HOLD = 22.0  # seconds the victim stays after its tone starts: the fault is ~10 s in
FAULTY_PLACED_AFTER = 6.0  # seconds after the victim's INVITE: it is answered by then
FAULTS = ("fault-raise", "fault-cpu", "fault-gil", "fault-exit", "fault-segv")


def load_avg() -> tuple[float, float, float]:
    return os.getloadavg()


async def jobs_done(port: int, timeout: float) -> bool:
    """True once the worker at ``port`` runs no job (within ``timeout``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        try:
            if await worker_active_jobs(port) == 0:
                return True
        except ConnectionError:
            return False  # the worker is gone: it runs nothing, but that is no "done"
        await asyncio.sleep(0.2)
    return False


# -- memory --------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    calls: int
    pss_mb: float
    rss_mb: float
    procs: int
    at_s: float
    load: tuple[float, float, float]


@dataclass
class MemoryRun:
    executor: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    minutes: float = 0.0


async def _checkpoint(worker: Proc, calls: int, start: float) -> Checkpoint:
    await _idle_procs(worker.pid)  # the tree has stopped changing: the pool is back
    u = tree_usage(worker.pid, pss=True)
    return Checkpoint(
        calls,
        round(u.pss / MB, 1),
        round(u.rss / MB, 1),
        u.procs,
        round(time.monotonic() - start, 1),
        load_avg(),
    )


async def memory(
    lab: Lab, env: dict[str, str], executor: str, args: argparse.Namespace
) -> MemoryRun:
    run = MemoryRun(executor)
    worker = start_worker(
        lab,
        f"agent-{executor}",
        [sys.executable, str(ROOT / "agent.py"), "start"],
        {"SWITCHBOARD_JOB_EXECUTOR": executor, "SWITCHBOARD_WORKER_PORT": str(lab.c.worker_port)},
    )
    handle = LabHandle(env, lab)
    start = time.monotonic()
    try:
        # One uncounted call first: the first call pays for caches no later one does.
        await call_lab(handle, from_number="+442070000001", hangup=0.5, timeout=30)
        await jobs_done(lab.c.worker_port, JOB_ENDED_WITHIN)
        run.checkpoints.append(await _checkpoint(worker, 0, start))
        for i in range(args.calls):
            if time.monotonic() - start > args.max_minutes * 60:
                run.failed.append(f"stopped after {i} calls: {args.max_minutes} min passed")
                break
            result = await call_lab(
                handle, from_number=f"+44207{3_100_000 + i:07d}", hangup=0.5, timeout=30
            )
            if not (result.answered and result.ended_by == "caller"):
                run.failed.append(
                    f"call {i}: answered {result.answered}, ended by "
                    f"{result.ended_by}, status {result.final_status}"
                )
            if not await jobs_done(lab.c.worker_port, JOB_ENDED_WITHIN):
                run.failed.append(f"call {i}: a job still running {JOB_ENDED_WITHIN:.0f}s later")
            if (i + 1) % args.every == 0:
                cp = await _checkpoint(worker, i + 1, start)
                run.checkpoints.append(cp)
                print(
                    f"bench.executor: {executor} {cp.calls} calls: PSS {cp.pss_mb} MB, "
                    f"{cp.procs} processes, load {cp.load[0]:.2f}",
                    file=sys.stderr,
                )
    finally:
        run.minutes = round((time.monotonic() - start) / 60, 1)
        lab.procs.stop(worker.name)
    return run


# -- isolation -----------------------------------------------------------------------------
@dataclass
class Isolation:
    executor: str
    fault: str
    victim_answered: bool
    victim_ended_by: str | None
    victim_seconds_up: float | None
    longest_silence_s: float | None  # in the victim's tone, from the fault's call on
    faulty_answered: bool
    faulty_ended_by: str | None
    faulty_silence_s: float | None  # the failing call's own longest silence after its fault
    worker_alive: bool
    next_call_heard: bool  # a call placed after both: it hears a tone (a worker took it)
    load: tuple[float, float, float]


def longest_silence(result: CallResult, since: float) -> float | None:
    """The longest stretch without an audible packet in ``result`` between ``since`` and the
    call's end (the hang-up's own silence left out: it ends at the last packet heard)."""
    heard = [a.at for a in result.arrivals if a.rms > SILENCE_RMS and a.at >= since]
    if result.ended_at is None or not heard:
        return None
    edges = [since, *heard]
    gaps = [b - a for a, b in pairwise(edges)]
    tail = result.ended_at - heard[-1]
    return round(max([*gaps, tail]), 2)


async def one_fault(lab: Lab, env: dict[str, str], executor: str, fault: str) -> Isolation:
    worker = start_worker(
        lab,
        f"fault-{executor}-{fault}",
        [sys.executable, str(ROOT / "bench" / "fault_agent.py"), "start"],
        {
            "SWITCHBOARD_JOB_EXECUTOR": executor,
            "SWITCHBOARD_WORKER_PORT": "0",
            "SWITCHBOARD_AGENT_NAME": env["LAB_AI_AGENT_NAME"],
        },
    )
    handle, number = LabHandle(env, lab), env["LAB_AI_NUMBER"]
    load = load_avg()
    try:
        victim = asyncio.create_task(
            call_lab(
                handle,
                to_number=number,
                from_number="+442079000001",
                hangup=VICTIM_HOLD,
                timeout=40,
            )
        )
        await asyncio.sleep(FAULTY_PLACED_AFTER)  # the schedule, not a synchronisation
        placed = time.time()
        faulty = await call_lab(
            handle,
            to_number=number,
            from_number="+442079000002",
            headers={"X-Scenario": fault},
            hangup=12.0,
            timeout=40,
        )
        v = await victim
        worker_alive = alive(worker.pid)
        nxt = await call_lab(
            handle, to_number=number, from_number="+442079000003", hangup=1.0, timeout=20
        )
        up = v.ended_at - v.answered_at if v.ended_at and v.answered_at else None
        since = (faulty.answered_at or placed) + 3.0  # fault_agent.FAULT_AFTER
        return Isolation(
            executor,
            fault,
            v.answered,
            v.ended_by,
            round(up, 1) if up is not None else None,
            longest_silence(v, since),
            faulty.answered,
            faulty.ended_by,
            longest_silence(faulty, since),
            worker_alive,
            nxt.first_audio_at is not None,
            load,
        )
    finally:
        lab.procs.stop(worker.name)


# -- the run -------------------------------------------------------------------------------
def print_memory(runs: Sequence[MemoryRun]) -> None:
    for r in runs:
        print(f"\nmemory, {r.executor} executor ({r.minutes} min, {len(r.failed)} problems)")
        print(f"{'calls':>6} {'PSS MB':>8} {'RSS MB':>8} {'procs':>6} {'load 1/5/15':>18}")
        for c in r.checkpoints:
            print(
                f"{c.calls:>6} {c.pss_mb:>8} {c.rss_mb:>8} {c.procs:>6} "
                f"{'/'.join(f'{x:.2f}' for x in c.load):>18}"
            )
        for problem in r.failed[:10]:
            print(f"  {problem}")


def print_isolation(rows: Sequence[Isolation]) -> None:
    print(
        f"\n{'executor':<8} {'fault':<12} {'victim up s':>11} {'ended by':>9} "
        f"{'silence s':>9} {'worker':>7} {'next call':>9} {'load':>5} {'its own silence s':>17}"
    )
    for r in rows:
        print(
            f"{r.executor:<8} {r.fault:<12} {r.victim_seconds_up!s:>11} "
            f"{r.victim_ended_by!s:>9} {r.longest_silence_s!s:>9} "
            f"{'alive' if r.worker_alive else 'DEAD':>7} "
            f"{'heard' if r.next_call_heard else 'NO':>9} {r.load[0]:>5.2f} "
            f"{r.faulty_silence_s!s:>17}"
        )


async def _main(lab: Lab, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    fig: dict[str, Any] = {"load_at_start": load_avg()}
    if "isolation" in args.parts:
        rows = [await one_fault(lab, env, ex, f) for f in args.faults for ex in args.executors]
        fig["isolation"] = [asdict(r) for r in rows]
        print_isolation(rows)
    if "memory" in args.parts:
        runs = [await memory(lab, env, ex, args) for ex in args.executors]
        fig["memory"] = [asdict(r) for r in runs]
        print_memory(runs)
    fig["load_at_end"] = load_avg()
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.executor")
    parser.add_argument(
        "parts", nargs="*", choices=("isolation", "memory"), default=["isolation", "memory"]
    )
    parser.add_argument("--executors", nargs="+", choices=EXECUTORS, default=list(EXECUTORS))
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("-n", "--calls", type=int, default=100)
    parser.add_argument("--every", type=int, default=25, help="calls between PSS readings")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=15.0,
        help="per executor: place no new memory call after this long",
    )
    args = parser.parse_args()
    lab = Lab(LabConfig(state_dir=LabConfig().state_dir / "executor"))
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode=None)  # the workers below are started per part
        fig = asyncio.run(_main(lab, env, args))
    except LabError as e:
        print(f"bench.executor: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    OUT.mkdir(exist_ok=True)
    out = OUT / f"executor-{'-'.join(args.parts)}.json"
    out.write_text(json.dumps(fig, indent=1, default=str))
    print(
        f"\nload average {fig['load_at_start']} at start, {fig['load_at_end']} at end; "
        f"wrote {out} (logs in {lab.procs.logs})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
