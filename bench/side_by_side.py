"""`make side-by-side`: what one call costs switchboard's AI worker next to the framework's
floor, the reference agent (``bench/reference_agent.py``), on one lab at the same time.

Both workers get the same providers (the scripted OpenAI-compatible test double,
``lab/testing/fake_openai.py``, for the LLM and STT; the espeak voice) and the same worker
options (``lab.stack.ai_worker_env``: idle processes, capacity counted in calls, load
threshold), each under its own agent name and number (LAB_REFERENCE_NUMBER,
LAB_AI_NUMBER).  Then:

- ``--calls`` sequential calls to each, interleaved (reference, switchboard, reference...),
  each caller hanging up ``HOLD`` s after the greeting's first loud packet.  Per call:
  INVITE -> 200 OK, 200 OK -> first loud greeting audio, the worker tree's CPU seconds
  (psutil, every process of the tree plus its reaped children) from just before the
  INVITE until the worker has settled (no job, no room, its pool of warm processes full
  again: so the job's teardown and the start of the process that replaces it count), and
  its PSS during the call (the highest sample between INVITE and hang-up) minus idle.
- bursts of ``--bursts`` simultaneous calls to each: answered, refused, rang out, INVITE ->
  200 OK p50/p95, and how often the worker logged "error initializing process".

Prints reference | switchboard | ratio with the load average at start and end, and writes
bench/out/side-by-side.json.  Every call is bounded (``CALL_TIMEOUT``), every wait has a
deadline, a room left behind is deleted, and the lab (servers and both workers) is stopped
at the end.  Run it in the lab's namespace: ``lab/netns.sh exec .venv/bin/python -m
bench.side_by_side``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from livekit import api
from livekit.agents.utils.hw import get_cpu_monitor

from bench.scale import MB, MemoryProbe, tree_usage
from bench.stats import answered_summary, percentile
from lab.phone import CallResult
from lab.procs import LabError, Proc, log_contains
from lab.stack import ROOT, Lab, ai_worker_env
from lab.testing.calls import call_lab, server_leftovers, worker_active_jobs, worker_http_port
from lab.testing.fake_openai import DEFAULT, FakeOpenAI, say
from lab.testing.handles import LabHandle

OUT = Path(__file__).resolve().parent / "out"
GREETING = "Hello, thanks for calling. How can I help?"
HOLD = 1.0  # seconds a caller stays after the greeting's first loud packet
CALL_TIMEOUT = 30.0  # a sequential call not over by then is torn down
BURST_TIMEOUT = 45.0  # a caller of a burst not answered by then hangs up
SETTLE_WITHIN = 90.0  # after a call or a burst: no job, no room, the pool warm again
WARM_WITHIN = 120.0  # for a worker's first pool of warm processes
_INITIALISING = "initializing process"  # the framework's log lines: a job process starts
_INITIALISED = "process initialized"  # ... and is warm
_RECEIVED = "received job request"  # one per job, each taking a warm process
_INIT_ERROR = "error initializing process"


# -- the two workers -------------------------------------------------------------------------
@dataclass(frozen=True)
class Worker:
    label: str
    proc: Proc
    number: str
    port: int  # its HTTP endpoint (GET /worker)
    idle: int  # warm processes its pool keeps

    def log_count(self, needle: str) -> int:
        with suppress(OSError), self.proc.log.open(encoding="utf-8", errors="replace") as f:
            return sum(needle in line for line in f)
        return 0

    def process_starts(self, since: float, until: float) -> list[float]:
        """Seconds each job process took to start (the framework's "initializing process"
        to "process initialized", per pid), for those that started in [since, until]."""
        began: dict[int, float] = {}
        out = []
        with suppress(OSError), self.proc.log.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if _INITIALISED not in line and _INITIALISING not in line:
                    continue
                with suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    at = datetime.fromisoformat(entry["timestamp"]).timestamp()
                    if entry["message"] == _INITIALISING:
                        began[entry["pid"]] = at
                    elif entry["message"] == _INITIALISED and since <= at <= until:
                        out.append(at - began.pop(entry["pid"]))
        return out

    def warm(self) -> int:
        """Warm processes not yet taken by a job (a process that failed to start is not
        counted: the framework logs no "process initialized" for it)."""
        return self.log_count(_INITIALISED) - self.log_count(_RECEIVED)


def start_worker(lab: Lab, name: str, argv: Sequence[str], env: dict[str, str]) -> Proc:
    p = lab.procs.start(name, argv, env={**lab.agent_env(), **env})
    lab.procs.wait_ready(
        p,
        lambda: log_contains(p.log, "registered worker") and worker_http_port(p.log) is not None,
        deadline_s=60,
        what="registered with the LiveKit server",
    )
    return p


def start_workers(lab: Lab, lab_env: dict[str, str], base_url: str, idle: int) -> list[Worker]:
    """The reference and switchboard's AI worker, with the same providers (the test double
    at ``base_url``) and worker options; the reference under its own agent name, answering
    LAB_REFERENCE_NUMBER.  ``idle`` is SWITCHBOARD_IDLE_PROCESSES (0: the framework's
    default, one warm process per CPU)."""
    common = {**ai_worker_env(lab_env, base_url), "SWITCHBOARD_IDLE_PROCESSES": str(idle)}
    specs = [
        (
            "reference",
            "agent-reference",
            lab_env["LAB_REFERENCE_NUMBER"],
            [sys.executable, str(ROOT / "bench" / "reference_agent.py"), "start"],
            {"SWITCHBOARD_AGENT_NAME": lab_env["LAB_REFERENCE_AGENT_NAME"]},
        ),
        (
            "switchboard",
            "agent-ai",
            lab_env["LAB_AI_NUMBER"],
            [sys.executable, str(ROOT / "agent.py"), "start"],
            {},
        ),
    ]
    warm = idle or math.ceil(get_cpu_monitor().cpu_count())
    workers = []
    for label, name, number, argv, extra in specs:
        proc = start_worker(lab, name, argv, {**common, **extra})
        port = worker_http_port(proc.log)
        assert port is not None  # start_worker waited for it
        workers.append(Worker(label, proc, number, port, warm))
    return workers


async def delete_rooms(lab: LabHandle) -> list[str]:
    """Delete every room the server lists: what a call left behind must not weigh on the
    next one.  Returns their names."""
    left = await server_leftovers(lab)
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        for room in left:
            with suppress(api.TwirpError):  # gone meanwhile
                await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    return list(left)


@dataclass
class Settled:
    seconds: float
    ok: bool  # False: the deadline passed first (rooms then deleted)
    rooms_deleted: list[str] = field(default_factory=list)


async def settle(lab: LabHandle, worker: Worker, within: float) -> Settled:
    """Wait until ``worker`` runs no job, the server lists no room and the worker's pool has
    its warm processes again; after ``within`` s, delete any room left and say so."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < within:
        idle = await worker_active_jobs(worker.port) == 0 and worker.warm() >= worker.idle
        if idle and not await server_leftovers(lab):
            return Settled(loop.time() - start, True)
        await asyncio.sleep(0.25)  # polling a log file and an HTTP endpoint: no event to wait on
    return Settled(loop.time() - start, False, await delete_rooms(lab))


# -- sequential calls ------------------------------------------------------------------------
@dataclass(frozen=True)
class OneCall:
    answered: bool
    answer_s: float | None
    greeting_s: float | None
    cpu_s: float
    pss_mb: float
    window_s: float  # INVITE to settled: what cpu_s covers
    settled: bool


async def quiet(lab: LabHandle, workers: Sequence[Worker]) -> None:
    """Before a measurement: every worker settled, so that what one of them still does
    (a pool refilling after a burst) does not weigh on the other's call."""
    for w in workers:
        await settle(lab, w, SETTLE_WITHIN)


async def one_call(lab: LabHandle, worker: Worker, probe: MemoryProbe, caller: str) -> OneCall:
    idle = tree_usage(worker.proc.pid, pss=True)
    began = time.time()
    result = await call_lab(
        lab, to_number=worker.number, from_number=caller, hangup=HOLD, timeout=CALL_TIMEOUT
    )
    ended = time.time()
    done = await settle(lab, worker, SETTLE_WITHIN)
    cpu = tree_usage(worker.proc.pid).cpu_s - idle.cpu_s
    peak = probe.peak(began, ended)
    return OneCall(
        answered=result.answered,
        answer_s=result.time_to_answer,
        greeting_s=result.time_to_first_audio,
        cpu_s=cpu,
        pss_mb=(peak.pss - idle.pss) / MB if peak.pss else math.nan,
        window_s=time.time() - began,
        settled=done.ok,
    )


# -- bursts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Burst:
    size: int
    results: tuple[CallResult, ...]
    init_errors: int
    settled: Settled

    def summary(self) -> dict[str, Any]:
        return {
            **answered_summary(self.results),
            "init_errors": self.init_errors,
            "settle_s": round(self.settled.seconds, 1),
            "rooms_deleted": self.settled.rooms_deleted,
        }


async def burst(lab: LabHandle, worker: Worker, size: int, first: int) -> Burst:
    errors = worker.log_count(_INIT_ERROR)
    calls = (
        call_lab(
            lab,
            to_number=worker.number,
            from_number=f"+4420798{first + i:05d}",
            hangup=HOLD,
            timeout=BURST_TIMEOUT + HOLD,
        )
        for i in range(size)
    )
    results = tuple(await asyncio.gather(*calls))
    done = await settle(lab, worker, SETTLE_WITHIN)
    return Burst(size, results, worker.log_count(_INIT_ERROR) - errors, done)


# -- the run -----------------------------------------------------------------------------------
async def first_samples(probes: dict[str, MemoryProbe], within: float) -> None:
    """Wait until every memory probe has sampled once: a probe is a process of its own,
    which takes seconds to start on a busy machine, and a call before then has no PSS."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not all(p.peak(0, math.inf).pss for p in probes.values()):
        if loop.time() - start > within:
            raise LabError(f"a memory probe took no sample within {within:.0f}s")
        await asyncio.sleep(0.25)  # the probe writes a file: no event to wait on


@dataclass
class Outcome:
    idle: int  # warm processes each worker keeps
    sequential: dict[str, list[OneCall]] = field(default_factory=dict)
    starts: dict[str, list[float]] = field(default_factory=dict)  # job process start, s
    bursts: dict[str, list[Burst]] = field(default_factory=dict)


async def run(
    lab: LabHandle,
    workers: Sequence[Worker],
    probes: dict[str, MemoryProbe],
    calls: int,
    bursts: Sequence[int],
) -> Outcome:
    for w in workers:
        first = await settle(lab, w, WARM_WITHIN)
        if not first.ok:
            raise LabError(f"the {w.label} worker was not warm within {WARM_WITHIN:.0f}s")
    await first_samples(probes, WARM_WITHIN)
    out = Outcome(
        workers[0].idle, {w.label: [] for w in workers}, {}, {w.label: [] for w in workers}
    )
    since = time.time()
    for i in range(calls):
        for j, w in enumerate(workers):  # interleaved: A, B, A, B...
            await quiet(lab, workers)
            c = await one_call(lab, w, probes[w.label], f"+4420797{2 * i + j:05d}")
            out.sequential[w.label].append(c)
            print(
                f"side-by-side: call {i + 1}/{calls} {w.label}: answered {c.answered}, "
                f"greeting {c.greeting_s}, cpu {c.cpu_s:.2f} s, pss {c.pss_mb:.1f} MB",
                file=sys.stderr,
            )
    out.starts = {w.label: w.process_starts(since, time.time()) for w in workers}
    for k, size in enumerate(bursts):
        for j, w in enumerate(workers):
            await quiet(lab, workers)
            b = await burst(lab, w, size, 1000 * (2 * k + j))
            out.bursts[w.label].append(b)
            s = b.summary()
            print(
                f"side-by-side: burst of {size} {w.label}: {s['answered']} answered, "
                f"{s['init_errors']} init errors",
                file=sys.stderr,
            )
    return out


# -- the table ---------------------------------------------------------------------------------
def _p(values: Sequence[float | None], p: float, scale: float = 1.0) -> float:
    return percentile([v * scale for v in values if v is not None and not math.isnan(v)], p)


def sequential_rows(calls: Sequence[OneCall], starts: Sequence[float]) -> dict[str, float]:
    answered = [c for c in calls if c.answered]
    return {
        "answered": len(answered),
        "INVITE -> 200 OK p50 ms": _p([c.answer_s for c in calls], 50, 1000),
        "INVITE -> 200 OK p95 ms": _p([c.answer_s for c in calls], 95, 1000),
        "200 OK -> greeting p50 ms": _p([c.greeting_s for c in calls], 50, 1000),
        "200 OK -> greeting p95 ms": _p([c.greeting_s for c in calls], 95, 1000),
        "CPU s per call p50": _p([c.cpu_s for c in answered], 50),
        "CPU s per call p95": _p([c.cpu_s for c in answered], 95),
        "PSS MB per call p50": _p([c.pss_mb for c in answered], 50),
        "PSS MB per call p95": _p([c.pss_mb for c in answered], 95),
        "window s per call p50": _p([c.window_s for c in answered], 50),
        "job process start s p50": _p(starts, 50),
        "job process start s p95": _p(starts, 95),
        "not settled": sum(not c.settled for c in calls),
    }


def burst_rows(bursts: Sequence[Burst]) -> dict[str, float]:
    rows: dict[str, float] = {}
    for b in bursts:
        s = b.summary()
        for key in (
            "answered",
            "refused",
            "rang_out",
            "answer_p50_s",
            "answer_p95_s",
            "init_errors",
        ):
            rows[f"burst {b.size}: {key.replace('_', ' ')}"] = s[key]
    return rows


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.0f}" if isinstance(v, int) or abs(v) >= 100 else f"{v:.2f}"


def table(ref: dict[str, float], ours: dict[str, float]) -> list[str]:
    lines = [
        f"| {'':28} | {'reference':>9} | {'switchboard':>11} | {'ratio':>6} |",
        f"|{'-' * 30}|{'-' * 11}|{'-' * 13}|{'-' * 8}|",
    ]
    for key, a in ref.items():
        b = ours[key]
        ratio = f"{b / a:.2f}" if a and not math.isnan(a) and not math.isnan(b) else "-"
        lines.append(f"| {key:28} | {_fmt(a):>9} | {_fmt(b):>11} | {ratio:>6} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side")
    parser.add_argument("--calls", type=int, default=20, help="sequential calls to each")
    parser.add_argument(
        "--bursts",
        type=int,
        nargs="*",
        default=[5, 10],
        help="sizes of the bursts of simultaneous calls",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=0,
        help="SWITCHBOARD_IDLE_PROCESSES of both (0: the framework's default)",
    )
    args = parser.parse_args()
    if not 1 <= args.calls <= 200 or not all(1 <= b <= 30 for b in args.bursts):
        parser.error("--calls must be 1..200 and each burst 1..30")
    load_start = os.getloadavg()
    lab = Lab()
    try:
        env = lab.up(agent_mode=None)
        handle = LabHandle(env, lab)
        with FakeOpenAI(host="127.0.0.1", port=0) as fake, ExitStack() as stack:
            fake.script(DEFAULT, [say(GREETING)])
            workers = start_workers(lab, env, fake.base_url, args.idle)
            probes = {
                w.label: stack.enter_context(MemoryProbe(w.proc.pid, interval=0.5, pss_every=1))
                for w in workers
            }
            outcome = asyncio.run(run(handle, workers, probes, args.calls, args.bursts))
    except LabError as e:
        print(f"side-by-side: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    load_end = os.getloadavg()
    ref, ours = (
        sequential_rows(outcome.sequential[label], outcome.starts[label])
        | burst_rows(outcome.bursts[label])
        for label in ("reference", "switchboard")
    )
    print(
        f"\n{args.calls} sequential calls to each, interleaved; bursts of "
        f"{', '.join(map(str, args.bursts))}; {outcome.idle} warm processes each\n"
    )
    print("\n".join(table(ref, ours)))
    print(f"\nload average (1/5/15 min): start {_load(load_start)}, end {_load(load_end)}")
    figures = {
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs",
        "calls": args.calls,
        "bursts": args.bursts,
        "idle_processes": outcome.idle,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "reference": ref,
        "switchboard": ours,
        "bursts_detail": {k: [b.summary() for b in v] for k, v in outcome.bursts.items()},
        "job_process_starts_s": outcome.starts,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "side-by-side.json").write_text(json.dumps(figures, indent=1, default=str))
    print(f"wrote {OUT / 'side-by-side.json'} (logs in {lab.procs.logs})")
    return 0


def _load(avg: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


if __name__ == "__main__":
    sys.exit(main())
