"""`python -m bench.load`: issue 8's load run, as a benchmark that prints what happened.

Twenty callers ring the AI number at once; the agent (its LLM the scripted test double,
``lab/testing/fake_openai.py``) puts each through to the lab's sipp callee, and each caller hangs
up a second after the agent's words start.  The worker keeps ``--idle`` job processes warm
(``SWITCHBOARD_IDLE_PROCESSES``, 20 by default: one per caller of the burst) and counts its
capacity in calls (``SWITCHBOARD_MAX_CALLS=30``).  It runs ``--rounds`` bursts, waiting
between them until the server lists no room and the worker's pool is warm again.

Per round: calls answered, refused and rung out; INVITE -> 200 OK p50/p95/max; the most
calls up at once; the dialled legs answered and hung up; call records complete, missing or
not complete; rooms, participants and jobs left after the settle deadline; the worker
tree's memory (PSS idle and peak, RSS peak, processes); and what the worker logged that
explains load.  Writes bench/out/load.json.

This was a lab test (issue 8: "20 concurrent calls ... all answered, 0 records lost, 0
rooms or participants left behind") until it proved unable to pass reliably on a 2-core
machine: see bench/RESULTS.md, "Load".  The lab runs with its state in ``<lab state
dir>/load/``, so no test session takes it for its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.scale import (
    MB,
    MemoryProbe,
    Peak,
    machine_busy,
    tree_usage,
    wait_for_no_lab,
    worker_log_summary,
)
from bench.stats import answered_summary
from lab.callee import Callee
from lab.phone import CallResult, SipMessage
from lab.procs import LabError, Proc
from lab.stack import Lab, LabConfig, ai_worker_env
from lab.testing.calls import (
    call_lab,
    server_leftovers,
    unfinished_jobs,
    worker_active_jobs,
    worker_http_port,
)
from lab.testing.fake_openai import FakeOpenAI, call, say
from lab.testing.handles import LabHandle
from switchboard.data.db import open_database
from switchboard.data.records.query import get_call

OUT = Path(__file__).resolve().parent / "out"
CALL_TIMEOUT = 40.0  # per call: a caller who is not answered by then hangs up
WARM_WITHIN = 300.0  # for the pool to be warm: 2 processes initialise at a time, 2-9 s each
SETTLE_WITHIN = 60.0  # after a burst: no room, no job, records written
ANSWERED = "They answered"  # switchboard.dialing.ANSWERED, as the model is told
# Worker log lines that explain a slow or lost call under load, beyond bench.scale's.
_LOAD_LINES = {
    "The room connection was not established within 10 seconds": "room_connect_over_10s",
    "failed to connect: Signal(Timeout": "signal_connect_timeout",
    "entrypoint did not exit in time": "entrypoint_not_exited",
    "call record: finish() without start()": "record_never_started",
}


# -- the worker ----------------------------------------------------------------------------
def _initialised(log: Path) -> int:
    with suppress(OSError), log.open(encoding="utf-8", errors="replace") as lines:
        # a job process, or a job thread (SWITCHBOARD_JOB_EXECUTOR=thread)
        return sum('"message": "process initialized"' in line
                   or '"message": "job runner initialized"' in line for line in lines)  # fmt: skip
    return 0


def jobs_started(lab: LabHandle) -> int:
    return sum(1 for e in lab.events() if e["event"] == "job_started")


async def wait_warm(bench: Bench, timeout: float) -> float:
    """Seconds until the worker has ``bench.idle`` warm processes: initialised (its log
    says so for each) and not taken by a job (each job takes one); LabError after
    ``timeout``.  Calls placed earlier would measure the pool filling, not the worker."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (warm := _initialised(bench.worker.log) - jobs_started(bench.lab)) < bench.idle:
        if loop.time() - start >= timeout:
            raise LabError(f"{warm}/{bench.idle} job processes warm after {timeout:.0f}s")
        await asyncio.sleep(0.5)  # polling a log file, which sends no event
    return loop.time() - start


# -- one burst -----------------------------------------------------------------------------
@dataclass
class Round:
    index: int
    results: list[CallResult] = field(default_factory=list)
    warm_s: float = 0.0
    idle_pss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    idle_procs: int = 0
    peak: Peak = field(default_factory=Peak)
    legs: dict[str, int] = field(default_factory=dict)
    dials_not_answered: int = 0
    records: dict[str, int] = field(default_factory=dict)
    left: dict[str, Any] = field(default_factory=dict)
    worker_log: dict[str, Any] = field(default_factory=dict)
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu_s: float = 0.0  # worker tree, from the first INVITE to the last call's end
    wall_s: float = 0.0
    machine_busy_pct: float = 0.0

    def summary(self) -> dict[str, Any]:
        waits = [r.time_to_answer for r in self.results if r.time_to_answer is not None]
        return {
            "round": self.index,
            **answered_summary(self.results),
            "answer_max_s": round(max(waits), 2) if waits else None,
            "answers_s": sorted(round(w, 1) for w in waits),
            "max_up_at_once": most_at_once(self.results),
            "legs": self.legs,
            "dials_not_reported_answered": self.dials_not_answered,
            "records": self.records,
            "left": self.left,
            "pool_warm_s": round(self.warm_s, 1),
            "worker_idle_pss_mb": self.idle_pss_mb,
            "worker_idle_rss_mb": self.idle_rss_mb,
            "worker_idle_procs": self.idle_procs,
            "worker_peak_pss_mb": round(self.peak.pss / MB, 1),
            "worker_peak_rss_mb": round(self.peak.rss / MB, 1),
            "worker_peak_procs": self.peak.procs,
            "worker_log": self.worker_log,
            "load_average_at_start": self.load_avg,
            "worker_cpu_s": round(self.cpu_s, 1),
            "worker_cores": round(self.cpu_s / self.wall_s, 2) if self.wall_s else None,
            "burst_s": round(self.wall_s, 1),
            "machine_busy_pct": round(self.machine_busy_pct, 1),
        }


def most_at_once(results: list[CallResult]) -> int:
    """The most calls that were answered and not yet ended at one moment."""
    edges = [(r.answered_at, 1) for r in results if r.answered_at and r.ended_at]
    edges += [(r.ended_at, -1) for r in results if r.answered_at and r.ended_at]
    now = best = 0
    for _, step in sorted(edges):
        now += step
        best = max(best, now)
    return best


def legs(callee: Callee, pred: Callable[[SipMessage], bool]) -> set[str]:
    """Call-IDs of the dialled legs with a message matching ``pred`` in the callee's log."""
    return {m.header("Call-ID") or "" for m in callee.messages() if pred(m)}


def leg_counts(callee: Callee) -> dict[str, int]:
    invited = legs(callee, lambda m: not m.sent and m.method == "INVITE")
    answered = legs(callee, lambda m: m.sent and m.status == 200 and m.cseq_method == "INVITE")
    bye = legs(callee, lambda m: not m.sent and m.method == "BYE")
    return {"dialled": len(invited), "answered": len(answered & invited),
            "answered_without_bye": len((answered & invited) - bye)}  # fmt: skip


@dataclass(frozen=True)
class Bench:
    lab: LabHandle
    fake: FakeOpenAI
    worker: Proc
    calls: int
    idle: int
    ramp: float = 0.0  # seconds between two callers' INVITEs (0: all at the same instant)
    hold: float = 1.0  # seconds each caller stays after the agent's words start

    async def burst(self, first: int) -> list[CallResult]:
        numbers = [f"+44207{5_000_000 + first + i:07d}" for i in range(self.calls)]
        calls = (self._call(n, i * self.ramp) for i, n in enumerate(numbers))
        return list(await asyncio.gather(*calls))

    async def _call(self, number: str, after: float) -> CallResult:
        await asyncio.sleep(after)  # the arrival schedule, not a synchronisation
        return await call_lab(self.lab, to_number=self.lab.env["LAB_AI_NUMBER"],
                              from_number=number, headers={"X-Scenario": "load"},
                              hangup=self.hold, timeout=CALL_TIMEOUT + self.hold)  # fmt: skip

    def dials_not_answered(self, since: float) -> int:
        """Calls whose add_participant did not report "answered" (from the call events)."""
        dials = [e for e in self.lab.events() if e["event"] == "tool_call"
                 and e["tool"] == "add_participant" and e["ts"] >= since]  # fmt: skip
        return self.calls - sum(1 for e in dials if e["result"] == "answered")

    async def records(self, results: list[CallResult]) -> dict[str, int]:
        """The records of the calls the agent saw: complete, not complete, missing."""
        ours = {r.call_id for r in results}
        seen = [e["caller"]["call_id"] for e in self.lab.events()
                if e["event"] == "caller" and e["caller"].get("call_id_full") in ours]  # fmt: skip
        db = await open_database(self.lab.env["LAB_DATABASE_URL"])
        status: Counter[str] = Counter()
        try:
            for call_id in seen:
                record = await get_call(db, call_id)
                status[record.summary.status if record else "missing"] += 1
        finally:
            await db.close()
        return {"calls_the_agent_saw": len(seen), **status}

    async def settle(self, since: float) -> dict[str, Any]:
        """Wait (up to SETTLE_WITHIN) for no room, no job; then what is left."""
        port = worker_http_port(self.worker.log)
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            rooms = await server_leftovers(self.lab)
            jobs = await worker_active_jobs(port) if port else -1
            unended = unfinished_jobs(self.lab.events(), since)
            if (not rooms and not jobs and not unended) or loop.time() - start > SETTLE_WITHIN:
                break
            await asyncio.sleep(0.5)
        return {"settle_s": round(loop.time() - start, 1), "rooms": rooms, "active_jobs": jobs,
                "jobs_not_ended": len(unended)}  # fmt: skip


async def one_round(bench: Bench, index: int) -> Round:
    r = Round(index)
    r.warm_s = await wait_warm(bench, WARM_WITHIN)
    idle = tree_usage(bench.worker.pid, pss=True)
    r.idle_pss_mb, r.idle_rss_mb = round(idle.pss / MB, 1), round(idle.rss / MB, 1)
    r.idle_procs = idle.procs
    r.load_avg = _load_avg()
    since = time.time()
    with MemoryProbe(bench.worker.pid, interval=0.5, pss_every=4) as probe:
        async with Callee("answer", ip=bench.lab.env["LAB_PHONE_IP"], port=5070) as callee:
            before, busy = tree_usage(bench.worker.pid), machine_busy()
            r.results = await bench.burst(index * bench.calls)
            r.cpu_s = tree_usage(bench.worker.pid).cpu_s - before.cpu_s
            r.wall_s = time.time() - since
            r.machine_busy_pct = _busy_pct(busy, machine_busy())
            r.left = await bench.settle(since)
            r.legs = leg_counts(callee)
        r.peak = probe.peak(since, time.time())
    r.dials_not_answered = bench.dials_not_answered(since)
    r.records = await bench.records(r.results)
    r.worker_log = worker_log_summary(bench.worker.log, since, time.time()) | load_lines(
        bench.worker.log, since
    )
    return r


def _busy_pct(a: tuple[float, float], b: tuple[float, float]) -> float:
    total = b[1] - a[1]
    return 100 * (b[0] - a[0]) / total if total > 0 else 0.0


def _load_avg() -> tuple[float, float, float]:
    one, five, fifteen = (float(x) for x in Path("/proc/loadavg").read_text().split()[:3])
    return one, five, fifteen


def load_lines(log: Path, since: float) -> dict[str, int]:
    counts = dict.fromkeys(_LOAD_LINES.values(), 0)
    with suppress(OSError), log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if datetime.fromisoformat(entry["timestamp"]).timestamp() < since:
                    continue
                for text, key in _LOAD_LINES.items():
                    counts[key] += text in entry["message"]
    return counts


# -- output --------------------------------------------------------------------------------
def print_report(rounds: list[dict[str, Any]], calls: int, idle: int) -> None:
    print(f"\n{calls} simultaneous AI calls, each dialling the callee; {idle} warm processes\n")
    head = (f"{'round':>5} {'answered':>8} {'rang out':>8} {'answer p50/p95/max s':>21} "
            f"{'up at once':>10} {'legs up/BYE missing':>19} {'records complete':>16} "
            f"{'left rooms/jobs':>15} {'load avg':>8}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for s in rounds:
        rec = s["records"]
        left = s["left"]
        print(f"{s['round']:>5} {s['answered']:>5}/{s['placed']:<2} {s['rang_out']:>8} "
              f"{s['answer_p50_s']:>7} / {s['answer_p95_s']} / {s['answer_max_s']:<5} "
              f"{s['max_up_at_once']:>10} "
              f"{s['legs']['answered']:>12}/{s['legs']['answered_without_bye']:<6} "
              f"{rec.get('complete', 0):>10}/{rec['calls_the_agent_saw']:<5} "
              f"{len(left['rooms']):>9}/{left['active_jobs']:<5} "
              f"{s['load_average_at_start'][0]:>8}")  # fmt: skip
    print("\nworker tree memory (MB) and what it logged per round")
    for s in rounds:
        print(f"  round {s['round']}: PSS idle {s['worker_idle_pss_mb']} peak "
              f"{s['worker_peak_pss_mb']}, RSS idle {s['worker_idle_rss_mb']} peak "
              f"{s['worker_peak_rss_mb']}, processes {s['worker_idle_procs']} -> "
              f"{s['worker_peak_procs']}; worker CPU {s['worker_cpu_s']} s over "
              f"{s['burst_s']} s ({s['worker_cores']} cores), machine "
              f"{s['machine_busy_pct']} % busy; {s['worker_log']}")  # fmt: skip
        print(f"    seconds to answer: {s['answers_s']}")


async def run(bench: Bench, rounds: int) -> list[dict[str, Any]]:
    bench.fake.script(
        "load", [call("add_participant", {"destination": "callee"}), say("They are on.")]
    )
    out = []
    for i in range(rounds):
        r = await one_round(bench, i)
        s = r.summary()
        print(f"bench.load: round {i + 1}/{rounds}: {s['answered']}/{s['placed']} answered, "
              f"p50 {s['answer_p50_s']} s, p95 {s['answer_p95_s']} s", file=sys.stderr)  # fmt: skip
        out.append(s)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--idle", type=int, default=20, help="SWITCHBOARD_IDLE_PROCESSES")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="seconds between callers (0: all at once)")  # fmt: skip
    parser.add_argument("--hold", type=float, default=1.0,
                        help="seconds each caller stays after the agent speaks")  # fmt: skip
    parser.add_argument("--executor", choices=("process", "thread"), default="process",
                        help="SWITCHBOARD_JOB_EXECUTOR")  # fmt: skip
    args = parser.parse_args()
    lab = Lab(LabConfig(state_dir=LabConfig().state_dir / "load"))
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode=None)  # only the AI worker below: every job is the burst's
        with FakeOpenAI(host="127.0.0.1", port=0) as fake:
            worker_env = {**ai_worker_env(env, fake.base_url),
                          "SWITCHBOARD_IDLE_PROCESSES": str(args.idle),
                          "SWITCHBOARD_JOB_EXECUTOR": args.executor,
                          "SWITCHBOARD_MAX_CALLS": str(max(30, args.calls + 10))}  # fmt: skip
            lab.start_agent("start", name="agent-ai", env=worker_env)
            worker = next(p for p in lab.procs.load() if p.name == "agent-ai")
            bench = Bench(LabHandle(env, lab), fake, worker, args.calls, args.idle,
                          args.ramp, args.hold)  # fmt: skip
            rounds = asyncio.run(run(bench, args.rounds))
    except LabError as e:
        print(f"bench.load: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    print_report(rounds, args.calls, args.idle)
    OUT.mkdir(exist_ok=True)
    figures = {"calls": args.calls, "idle_processes": args.idle, "rounds": rounds}
    (OUT / "load.json").write_text(json.dumps(figures, indent=1, default=str))
    print(f"\nwrote {OUT / 'load.json'} (logs in {lab.procs.logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
