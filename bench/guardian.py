"""`python -m bench.guardian burst|kill`: two keyless workers and the dispatch guardian.

``burst``: ``--calls`` callers (20) ring the lab's number at the same instant, ``--rounds``
times (2), each hanging up 1 s after the agent's first loud packet and giving up after
``--timeout`` s (30): the conditions of ``bench.scale``'s level 20 (bench/RESULTS.md,
section 1: one worker answered 16 of 40). Per round: answered / refused / rang out,
INVITE -> 200 OK p50/p95, the jobs started (those that began after their caller gave up
included), and the guardian's re-dispatches and resumes. ``--no-guardian``: the same lab
without the guardian (the figures to compare with); ``--settle LOAD``: each round starts
once the load average is below LOAD (at most 180 s later).

``kill``: ``--kills`` times (10), a call is placed, and once its agent speaks, the call
is answered and the job holds its call's lease, the worker holding it is SIGKILLed (its
whole process group, as a lost machine); the killed worker is started again before the
next call (``--executor``: the workers' SWITCHBOARD_JOB_EXECUTOR). Per kill: seconds from
the kill to the guardian's resume dispatch, to the new agent's first words, and to the
caller hearing it; a call is lost when no new agent speaks within 30 s.

Both are bounded (calls, kills, and a deadline on every wait). The lab runs with its state
in ``<lab state dir>/guardian/``, so that no test session takes it for its own. Writes
bench/out/guardian-<mode>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from livekit import api

from bench.scale import wait_for_no_lab
from bench.stats import answered_summary, percentile
from lab.phone import CallResult
from lab.procs import LabError, alive
from lab.stack import Lab, LabConfig
from lab.testing.calls import call_lab, worker_active_jobs
from lab.testing.handles import LabHandle
from lab.testing.records import lab_database
from switchboard.data import leases

OUT = Path(__file__).resolve().parent / "out"
WORKERS = 2
T = TypeVar("T")


async def until(what: str, timeout: float, check: Callable[[], Awaitable[T | None]]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := await check()) is not None:
            return value
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout:g} s")


class Bench:
    def __init__(self, lab: LabHandle, executor: str) -> None:
        self.lab = lab
        self.names: list[str] = []
        self.env = {"SWITCHBOARD_JOB_EXECUTOR": executor}

    def port(self, name: str) -> int:
        return self.lab.lab.c.extra_worker_port + int(name.rsplit("-", 1)[1])

    def start_workers(self, names: list[str] | None = None) -> None:
        """Start the workers (all, or ``names`` again after a kill)."""
        for name in names or []:
            self.lab.lab.procs.stop(name)
        todo = names or [f"agent-{i}" for i in range(1, WORKERS + 1)]
        for name in todo:
            started = self.lab.lab.start_workers(
                1, name="agent", first=int(name.rsplit("-", 1)[1]), env=self.env
            )
            if not names:
                self.names += started

    def live(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.lab.lab.procs.load() if p.name in self.names}

    async def jobs(self) -> dict[str, int]:
        return {
            name: await worker_active_jobs(self.port(name))
            for name, pid in self.live().items()
            if alive(pid)
        }

    async def idle(self) -> None:
        async def quiet() -> bool | None:
            async with api.LiveKitAPI(
                self.lab.http_url,
                self.lab.env["LIVEKIT_API_KEY"],
                self.lab.env["LIVEKIT_API_SECRET"],
            ) as lk:
                rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
            return True if not rooms and not any((await self.jobs()).values()) else None

        await until("no room and no job left", 90, quiet)

    def guardian_events(self, since: float) -> list[dict[str, Any]]:
        return [
            e for e in self.lab.events() if e.get("component") == "guardian" and e["ts"] >= since
        ]


# -- burst ----------------------------------------------------------------------------------
async def settle(below: float | None, at_most_s: float = 180) -> None:
    """Wait (bounded) for the machine's load average to fall below ``below``: a round
    starts on a machine its predecessor no longer loads."""
    deadline = time.monotonic() + at_most_s
    while below is not None and os.getloadavg()[0] >= below and time.monotonic() < deadline:
        await asyncio.sleep(5)


async def burst(
    bench: Bench, calls: int, rounds: int, timeout: float, settle_below: float | None = None
) -> list[dict[str, Any]]:
    out = []
    for index in range(rounds):
        await bench.idle()
        await settle(settle_below)
        load = os.getloadavg()[0]
        started = time.time()
        results = await asyncio.gather(
            *(
                call_lab(
                    bench.lab,
                    from_number=f"+4420750{index:02d}{i:03d}",
                    hangup=1.0,
                    timeout=timeout,
                )
                for i in range(calls)
            )
        )
        # Jobs still starting for callers who gave up count too: wait until all are done.
        await bench.idle()
        events = bench.guardian_events(started)
        row = {
            "round": index + 1,
            "load_at_start": round(load, 1),
            **answered_summary(results),
            "jobs_started": len(
                [
                    e
                    for e in bench.lab.events()
                    if e["event"] == "job_started" and e["ts"] >= started
                ]
            ),
            "redispatched": len([e for e in events if e["event"] == "redispatched"]),
            "resumed": len([e for e in events if e["event"] == "resumed"]),
            "attempts": dict(Counter(e["attempt"] for e in events if "attempt" in e)),
            "overflowed": len([e for e in events if e["event"] == "overflowed"]),
        }
        print(f"round {index + 1}: {row}", file=sys.stderr)
        out.append(row)
    return out


# -- kill drill --------------------------------------------------------------------------------
async def one_kill(bench: Bench, index: int) -> dict[str, Any]:
    lab = bench.lab
    await bench.idle()
    dead = [n for n, pid in bench.live().items() if not alive(pid)]
    if dead:
        bench.start_workers(dead)
    number = f"+4420751{index:05d}"
    started = time.time()
    done = asyncio.Event()  # the caller hangs up once the new agent has been heard
    call = asyncio.create_task(
        call_lab(lab, from_number=number, hangup="remote", hangup_now=done, timeout=90)
    )
    try:
        return await _kill_during(bench, call, done, number, started)
    finally:
        done.set()
        call.cancel()


async def _kill_during(
    bench: Bench, call: asyncio.Task[CallResult], done: asyncio.Event, number: str, started: float
) -> dict[str, Any]:
    lab = bench.lab
    masked = number[:5] + "••••" + number[-4:]

    async def first_words() -> dict[str, Any] | None:
        room = next(
            (
                e["room_id"]
                for e in lab.events()
                if e["event"] == "caller"
                and e["ts"] >= started
                and e["caller"].get("phone_number") == masked
            ),
            None,
        )
        return next(
            (e for e in lab.events() if e["event"] == "agent_said" and e["room_id"] == room),
            None,
        )

    said = await until("the first agent speaking", 40, first_words)

    async def answered() -> bool | None:
        return next(
            (
                True
                for e in lab.events()
                if e["event"] == "call_status"
                and e["job_id"] == said["job_id"]
                and e["status"] == "active"
            ),
            None,
        )

    await until("the call answered", 20, answered)
    call_id = next(
        e["caller"]["call_id"]
        for e in lab.events()
        if e["event"] == "caller" and e["job_id"] == said["job_id"]
    )

    async def lease_held() -> bool | None:
        async with lab_database(lab) as db:
            found = await leases.read_leases(db, call_id)
        return True if found and found[0].holder == f"agent-{said['job_id']}" else None

    # Mid-call: the job holds its call's lease (within a second or two of its start).
    await until("the call's lease held", 20, lease_held)
    holder = next(name for name, jobs in (await bench.jobs()).items() if jobs)
    os.killpg(bench.live()[holder], signal.SIGKILL)
    killed_at = time.time()
    load = os.getloadavg()[0]
    room = said["room_id"]

    async def new_words() -> dict[str, Any] | None:
        return next(
            (
                e
                for e in lab.events()
                if e["event"] == "agent_said"
                and e["room_id"] == room
                and e["job_id"] != said["job_id"]
            ),
            None,
        )

    try:
        again = await until("the new agent speaking", 30, new_words)
    except TimeoutError:
        return {"killed": holder, "lost": True, "load": round(load, 1)}
    await asyncio.sleep(3)  # the caller listens to the new agent for a moment
    done.set()
    result = await asyncio.wait_for(call, 90)
    heard = next((a.at for a in result.arrivals if a.at >= again["ts"] and a.rms > 0), None)
    resume = next((e for e in bench.guardian_events(killed_at) if e["event"] == "resumed"), None)
    in_room = [e for e in lab.events() if e.get("room_id") == room]
    return {
        # Agents that spoke after the kill (1: the resume alone) and agents the guardian
        # removed as a second one with the caller.
        "new_agents": len(
            {e["job_id"] for e in in_room if e["event"] == "agent_said"} - {said["job_id"]}
        ),
        "removed": sum(len(e["identities"]) for e in in_room if e["event"] == "agents_removed"),
        "killed": holder,
        "lost": heard is None,
        "load": round(load, 1),
        "reason": resume["reason"] if resume else None,
        "dispatch_s": round(resume["ts"] - killed_at, 2) if resume else None,
        "speaks_s": round(again["ts"] - killed_at, 2),
        "heard_s": round(heard - killed_at, 2) if heard is not None else None,
    }


async def kill_drill(bench: Bench, kills: int) -> dict[str, Any]:
    rows = []
    for index in range(kills):
        row = await one_kill(bench, index)
        print(f"kill {index + 1}: {row}", file=sys.stderr)
        rows.append(row)
    heard = [r["heard_s"] for r in rows if r.get("heard_s") is not None]
    return {
        "kills": rows,
        "heard_p50_s": percentile(heard, 50),
        "heard_max_s": max(heard) if heard else None,
        "lost": sum(r["lost"] for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guardian")
    parser.add_argument("mode", choices=("burst", "kill"))
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="a caller gives up after")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument(
        "--executor",
        choices=("process", "thread"),
        default="process",
        help="SWITCHBOARD_JOB_EXECUTOR of the workers",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="before each burst round, wait (up to 180 s) for the load average to fall below",
    )
    parser.add_argument(
        "--no-guardian",
        action="store_true",
        help="the same lab without the guardian (the figures to compare with)",
    )
    args = parser.parse_args()
    lab = Lab(LabConfig(state_dir=LabConfig().state_dir / "guardian"))
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode=None, guardian=not args.no_guardian)
        bench = Bench(LabHandle(env, lab), args.executor)
        bench.start_workers()
        if args.mode == "burst":
            figures: Any = asyncio.run(
                burst(bench, args.calls, args.rounds, args.timeout, args.settle)
            )
        else:
            figures = asyncio.run(kill_drill(bench, args.kills))
    except LabError as e:
        print(f"bench.guardian: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    print(json.dumps(figures, indent=1))
    OUT.mkdir(exist_ok=True)
    name = f"{args.mode}-no-guardian" if args.no_guardian else args.mode
    (OUT / f"guardian-{name}.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
