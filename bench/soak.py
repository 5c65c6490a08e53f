"""`python -m bench.soak`: many sequential real calls over every lifecycle path, then a count
of what they left behind.

Calls go one after another, each path in turn (the order shuffled per round with a fixed
seed, so every path follows every other): the keyless worker's number, where the caller
hangs up during the greeting or right after the answer; and the AI worker's number (its
LLM the scripted test double, ``lab/testing/fake_openai.py``, as the ``ai_lab`` fixture runs it),
where the agent dials the lab's sipp callee, which answers, is busy, does not answer or
answers and hangs up, the caller hangs up while the dialled leg rings, the agent ends the
call, an operator deletes the room, or the agent transfers the caller (REFER, accepted).

Each call has a deadline and is checked on its own (answered, ended by the expected side,
what the callee saw, its room gone, its job ended).  After the last call and a settle
deadline, the run counts what is left: rooms and participants on the server, jobs the
workers still run (their ``GET /worker`` endpoint, and ``job_started`` events without a
``job_ended``), worker processes above the idle pool, call records not complete, and the
worker trees' PSS before and after.  Prints a table and writes bench/out/soak.json.

The lab runs with its state in ``<lab state dir>/soak/`` (``.lab/soak/`` by default), so
no test session takes it for its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from livekit import api

from bench.scale import MB, _idle_procs, tree_usage, wait_for_no_lab
from bench.stats import percentile
from lab.callee import Callee, CalleeMode
from lab.phone import CallResult
from lab.procs import LabError
from lab.stack import Lab, LabConfig, ai_worker_env
from lab.testing.calls import (
    call_ai,
    call_lab,
    first_event,
    rooms,
    server_leftovers,
    unfinished_jobs,
    worker_active_jobs,
    worker_http_port,
)
from lab.testing.fake_openai import FakeOpenAI, Step, call, say
from lab.testing.handles import AiLab, LabHandle
from switchboard.data.db import open_database
from switchboard.data.records.query import get_call, list_calls

OUT = Path(__file__).resolve().parent / "out"
CALL_DEADLINE = 75.0  # seconds one call and its checks get, whatever the path
ROOM_GONE_WITHIN = 15.0  # after the call ended, for its room to leave the server's list
JOB_ENDED_WITHIN = 20.0  # ... and for its job to report job_ended
SETTLE_WITHIN = 60.0  # after the last call: no room, no job left, idle process pool back
DIALLED = "+15105550199"  # lab/policy.toml, destination "callee"
DESK = "+15105550198"  # lab/policy.toml, destination "desk"

# What the fake LLM plays per path (the X-Scenario header names it). A dial comes first,
# in silence where the path needs the caller to hear nothing before its outcome.
SCRIPTS: dict[str, list[Step]] = {
    "soak-dial-answer": [
        call("add_participant", {"destination": "callee"}, text="One moment."),
        say("They are on the call now."),
    ],
    "soak-dial-busy": [call("add_participant", {"destination": "callee"}), say("Busy, sorry.")],
    "soak-no-answer": [call("add_participant", {"destination": "callee"}), say("No answer.")],
    "soak-ringing": [call("add_participant", {"destination": "callee"}, text="Calling now.")],
    "soak-leg-hangs-up": [
        call("add_participant", {"destination": "callee"}),
        say("They are on the call now."),
        say("I'm sorry, they have hung up."),
    ],
    "soak-end-call": [say("Hello."), call("end_call", {}), say("Thank you for calling. Goodbye.")],
    "soak-stay": [say("Hello, I am listening.")],
    "soak-transfer": [call("transfer_call", {"destination": "desk"})],
}


# -- one call ----------------------------------------------------------------------------
@dataclass
class Outcome:
    """One call of the soak: what the caller saw, which job took it, what went wrong."""

    index: int
    path: str
    number: str
    seconds: float = 0.0
    answered: bool = False
    time_to_answer: float | None = None
    final_status: int | None = None
    ended_by: str | None = None
    job_id: str | None = None
    room_id: str | None = None
    record_id: str | None = None  # the call record's ID (the SIP call ID the agent saw)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def saw(self, result: CallResult) -> None:
        self.answered, self.final_status = result.answered, result.final_status
        self.ended_by, self.time_to_answer = result.ended_by, result.time_to_answer

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


@dataclass(frozen=True)
class Run:
    """What every path needs: the lab (both workers) and the API to the server."""

    ai: AiLab

    @property
    def lab(self) -> LabHandle:
        return self.ai.lab

    def callee(self, mode: CalleeMode, **kwargs: Any) -> Callee:
        return Callee(mode, ip=self.ai.env["LAB_PHONE_IP"], port=5070, **kwargs)

    def api(self) -> api.LiveKitAPI:
        env = self.lab.env
        return api.LiveKitAPI(self.lab.http_url, env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"])

    def events_of(self, job_id: str | None, event: str) -> list[dict[str, Any]]:
        return [e for e in self.lab.events() if e["event"] == event and e.get("job_id") == job_id]

    async def wait_for(self, find: Callable[[], Any], timeout: float) -> Any:
        """Re-check ``find`` every 50 ms (without blocking the loop the call's media runs
        on) until it returns something; None at the deadline."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (found := find()) is None and loop.time() < end:
            await asyncio.sleep(0.05)
        return found


CallPath = Callable[[Run, Outcome], Awaitable[CallResult]]


async def greeting_hangup(run: Run, out: Outcome) -> CallResult:
    """Keyless number; the caller hangs up half a second into the greeting."""
    result = await call_lab(run.lab, from_number=out.number, hangup=0.5, timeout=30)
    out.expect(result.ended_by == "caller", f"ended by {result.ended_by}, not the caller")
    return result


async def answer_hangup(run: Run, out: Outcome) -> CallResult:
    """Keyless number; the caller hangs up on the first RTP packet after the answer, before
    any greeting (a threshold below silence makes any packet count as heard)."""
    result = await call_lab(
        run.lab, from_number=out.number, hangup=0.0, silence_rms=-1.0, timeout=30
    )
    out.expect(result.ended_by == "caller", f"ended by {result.ended_by}, not the caller")
    return result


def _dial_result(run: Run, out: Outcome) -> str | None:
    dials = [e for e in run.events_of(out.job_id, "tool_call") if e["tool"] == "add_participant"]
    return dials[0]["result"] if dials else None


async def _requests(callee: Callee, method: str, timeout: float) -> bool:
    with suppress(TimeoutError):
        await callee.wait_for_request(method, timeout=timeout)
        return True
    return False


async def dial_answered(run: Run, out: Outcome) -> CallResult:
    """The agent dials the callee, who answers; the caller hangs up; the leg must get a BYE."""
    async with run.callee("answer") as callee:
        result = await call_ai(run.ai, "soak-dial-answer", from_number=out.number,
                               hangup=4.0, timeout=40)  # fmt: skip
        out.expect(callee.dialled == DIALLED, f"callee dialled {callee.dialled}")
        out.expect(await _requests(callee, "BYE", 10), "the dialled leg never got a BYE")
    return result


async def dial_busy(run: Run, out: Outcome) -> CallResult:
    async with run.callee("busy") as callee:
        result = await call_ai(run.ai, "soak-dial-busy", from_number=out.number,
                               hangup=1.0, timeout=40)  # fmt: skip
        out.expect(callee.invite_count == 1, f"callee saw {callee.invite_count} INVITEs")
    return result


async def dial_no_answer(run: Run, out: Outcome) -> CallResult:
    """Nobody answers: the ring timeout (4 s) cancels the leg, then the agent says so."""
    async with run.callee("no_answer") as callee:
        result = await call_ai(run.ai, "soak-no-answer", from_number=out.number,
                               hangup=1.0, timeout=40)  # fmt: skip
        out.expect(await _requests(callee, "CANCEL", 10), "the unanswered leg was not cancelled")
    return result


async def hangup_while_ringing(run: Run, out: Outcome) -> CallResult:
    """The caller hangs up while the dialled leg rings: the leg must be cancelled."""
    async with run.callee("no_answer") as callee:
        result = await call_ai(run.ai, "soak-ringing", from_number=out.number,
                               hangup=1.0, timeout=40)  # fmt: skip
        out.expect(await _requests(callee, "INVITE", 10), "the leg was never dialled")
        out.expect(await _requests(callee, "CANCEL", 10), "the ringing leg was not cancelled")
    return result


async def leg_hangs_up(run: Run, out: Outcome) -> CallResult:
    """The dialled party hangs up 1.5 s after answering; the call goes on with the caller."""
    async with run.callee("answer_then_hangup", hangup_after_ms=1500):
        result = await call_ai(run.ai, "soak-leg-hangs-up", from_number=out.number,
                               hangup=6.0, timeout=40)  # fmt: skip
    out.expect(result.ended_by == "caller", f"ended by {result.ended_by}, not the caller")
    return result


async def agent_ends_call(run: Run, out: Outcome) -> CallResult:
    # The caller answers the greeting with a key press: end_call is not offered on the
    # greeting turn (ignore_on_enter).
    result = await call_ai(run.ai, "soak-end-call", from_number=out.number, send_dtmf="1",
                           dtmf_delay=3.0, hangup="remote", timeout=40)  # fmt: skip
    out.expect(result.ended_by == "remote", f"ended by {result.ended_by}, not the agent")
    return result


async def room_deleted(run: Run, out: Outcome) -> CallResult:
    """An operator deletes the room once the agent has greeted (its first transcript line):
    the caller must get a BYE and the job must end."""
    since = time.time()
    phone = asyncio.create_task(
        call_ai(run.ai, "soak-stay", from_number=out.number, hangup="remote", timeout=40)
    )
    greeted = await run.wait_for(
        lambda: first_event(run.lab, since, out.number, "transcript"), timeout=30
    )
    if greeted is not None:
        name = (await rooms(run.lab)).get(greeted["room_id"])
        if name is not None:
            async with run.api() as lk:
                await lk.room.delete_room(api.DeleteRoomRequest(room=name))
    result = await phone
    out.expect(greeted is not None, "the agent never greeted; the room was not deleted")
    out.expect(result.ended_by == "remote", f"ended by {result.ended_by}, not the room going")
    return result


async def transfer(run: Run, out: Outcome) -> CallResult:
    result = await call_ai(run.ai, "soak-transfer", from_number=out.number,
                           hangup="remote", timeout=40)  # fmt: skip
    out.expect(DESK in (result.refer_to or ""), f"REFER to {result.refer_to}")
    out.expect(result.ended_by == "remote", f"ended by {result.ended_by} after the REFER")
    return result


PATHS: dict[str, CallPath] = {
    "keyless: hang up in greeting": greeting_hangup,
    "keyless: hang up on answer": answer_hangup,
    "dial-out answered, caller hangs up": dial_answered,
    "dial-out busy (486)": dial_busy,
    "dial-out not answered": dial_no_answer,
    "caller hangs up while leg rings": hangup_while_ringing,
    "dialled party hangs up": leg_hangs_up,
    "agent ends the call": agent_ends_call,
    "operator deletes the room": room_deleted,
    "cold transfer (REFER accepted)": transfer,
}
# What the add_participant tool must have reported to the model, per path that dials.
DIAL_RESULTS = {
    "dial-out answered, caller hangs up": "answered",
    "dial-out busy (486)": "busy",
    "dial-out not answered": "no_answer",
    "dialled party hangs up": "answered",
}


async def _after_the_call(run: Run, out: Outcome, result: CallResult) -> None:
    """The agent's side of a call that ended: its job, room, dial result, job end."""
    caller = await run.wait_for(lambda: _caller_event(run.lab, result.call_id), timeout=10)
    if caller is None:
        out.problems.append("the agent never reported the call")
        return
    out.job_id, out.room_id = caller["job_id"], caller["room_id"]
    out.record_id = caller["caller"].get("call_id")
    if out.path in DIAL_RESULTS:
        got = _dial_result(run, out)
        out.expect(got == DIAL_RESULTS[out.path], f"dial reported {got!r}")
    gone = await _room_gone(run, out.room_id, ROOM_GONE_WITHIN)
    out.expect(gone, f"room {out.room_id} still listed {ROOM_GONE_WITHIN:.0f}s later")
    ended = await run.wait_for(lambda: run.events_of(out.job_id, "job_ended") or None,
                               timeout=JOB_ENDED_WITHIN)  # fmt: skip
    out.expect(ended is not None, f"job {out.job_id} never reported job_ended")


async def _room_gone(run: Run, room_id: str | None, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while room_id in await rooms(run.lab):
        if loop.time() >= end:
            return False
        await asyncio.sleep(0.1)
    return True


def _caller_event(lab: LabHandle, call_id: str) -> dict[str, Any] | None:
    for event in lab.events():
        if event["event"] == "caller" and event["caller"].get("call_id_full") == call_id:
            return event
    return None


async def one_call(run: Run, index: int, path: str) -> Outcome:
    # A distinct number per call, distinct in its last 4 digits too (the agent masks the
    # rest), so that events can be matched to the call while it runs.
    out = Outcome(index, path, number=f"+44207{3_000_000 + index:07d}")
    start = time.monotonic()
    try:
        async with asyncio.timeout(CALL_DEADLINE):
            result = await PATHS[path](run, out)
            out.saw(result)
            out.expect(result.answered, f"not answered (final status {result.final_status})")
            if result.call_id:
                await _after_the_call(run, out, result)
    except TimeoutError:
        out.problems.append(f"deadline: not done within {CALL_DEADLINE:.0f}s")
    except Exception as e:  # one broken call must not end the soak: it is a finding
        out.problems.append(f"{type(e).__name__}: {e}"[:300])
    out.seconds = time.monotonic() - start
    return out


def call_plan(calls: int, seed: int) -> list[str]:
    """``calls`` paths: every path once per round, each round in a shuffled order."""
    rng, names = random.Random(seed), list(PATHS)
    plan: list[str] = []
    while len(plan) < calls:
        rng.shuffle(names)
        plan += names
    return plan[:calls]


# -- what is left ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Worker:
    name: str  # in the lab's process table
    pid: int
    port: int | None  # its HTTP endpoint


@dataclass(frozen=True)
class Footprint:
    procs: int
    pss_mb: float
    rss_mb: float


def footprint(pid: int) -> Footprint:
    u = tree_usage(pid, pss=True)
    return Footprint(u.procs, round(u.pss / MB, 1), round(u.rss / MB, 1))


async def settle(run: Run, workers: list[Worker], idle: dict[str, int], timeout: float) -> float:
    """Seconds until the server lists no room and every worker runs no job and is back to its
    idle processes; ``timeout`` if that never happened."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        busy = [w for w in workers if tree_usage(w.pid).procs > idle[w.name]]
        jobs = [await _jobs(w) for w in workers]  # -1: unknown, which is not "none"
        if not busy and not any(jobs) and not await rooms(run.lab):
            return loop.time() - start
        await asyncio.sleep(0.5)
    return timeout


async def _jobs(worker: Worker) -> int:
    if worker.port is None:
        return -1
    try:
        return await worker_active_jobs(worker.port)
    except Exception:
        return -1  # unanswered: reported as unknown, not as zero


async def records_left(run: Run, outcomes: list[Outcome], since: float) -> dict[str, Any]:
    """Call records of the soak: missing for a call the agent reported, or not complete."""
    db = await open_database(run.lab.env["LAB_DATABASE_URL"])
    try:
        missing, status = [], Counter[str]()
        for out in outcomes:
            if out.record_id is None:
                continue
            record = await get_call(db, out.record_id)
            if record is None:
                missing.append(out.index)
            else:
                status[record.summary.status] += 1
        recent = [c for c in await list_calls(db, limit=10_000) if c.started_at >= since]
        not_complete = [c.call_id for c in recent if c.status != "complete"]
    finally:
        await db.close()
    return {"by_status": dict(status), "missing_for_calls": missing,
            "records_since_start": len(recent), "not_complete": not_complete}  # fmt: skip


_ERRORS = ("ERROR", "CRITICAL")


def log_findings(log: Path, since: float) -> dict[str, int]:
    """Worker log lines at ERROR or above (or WARNING naming an exception) since ``since``,
    counted by message: where a leak or a hang shows first."""
    found: Counter[str] = Counter()
    with suppress(OSError), log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["timestamp"]).timestamp()
                noisy = entry["level"] in _ERRORS or "exc_info" in entry
                if at >= since and noisy:
                    message = entry["message"].splitlines()[0][:120]  # not the traceback
                    found[f"{entry['level']}: {message}"] += 1
    return dict(found.most_common())


# -- the run ------------------------------------------------------------------------------
async def soak(run: Run, workers: list[Worker], args: argparse.Namespace) -> dict[str, Any]:
    for name, steps in SCRIPTS.items():
        run.ai.fake.script(name, steps)
    # One uncounted call per worker first: the first call pays for caches no later one does.
    await call_lab(run.lab, from_number="+442070000001", hangup=0.3, timeout=30)
    await call_ai(run.ai, "soak-end-call", from_number="+442070000002", send_dtmf="1",
                  dtmf_delay=3.0, hangup="remote", timeout=40)  # fmt: skip
    idle = {w.name: await _idle_procs(w.pid) for w in workers}
    await settle(run, workers, idle, SETTLE_WITHIN)
    before = {w.name: footprint(w.pid) for w in workers}
    # The settled tree is the idle one (_idle_procs may have caught a process being replaced).
    idle = {name: min(idle[name], fp.procs) for name, fp in before.items()}
    since = time.time()
    plan = call_plan(args.calls, args.seed)
    outcomes: list[Outcome] = []
    for i, path in enumerate(plan):
        if time.time() - since > args.max_minutes * 60:
            print(f"bench.soak: {args.max_minutes} min passed; stopping after {i} calls",
                  file=sys.stderr)  # fmt: skip
            break
        out = await one_call(run, i, path)
        outcomes.append(out)
        failed = sum(not o.ok for o in outcomes)
        print(f"[{i + 1:>3}/{len(plan)}] {path:<36} {'ok' if out.ok else 'FAIL':<4} "
              f"{out.seconds:5.1f}s  failed so far {failed}"
              + ("" if out.ok else f"  {out.problems}"), file=sys.stderr)  # fmt: skip
    settled = await settle(run, workers, idle, SETTLE_WITHIN)
    after = {w.name: footprint(w.pid) for w in workers}
    events = run.lab.events()
    return {
        "calls": [asdict(o) | {"ok": o.ok} for o in outcomes],
        "paths": path_summary(outcomes),
        "left": {
            "settle_s": round(settled, 1),
            "rooms": await server_leftovers(run.lab),
            "active_jobs": {w.name: await _jobs(w) for w in workers},
            "jobs_started_not_ended": unfinished_jobs(events, since),
            "jobs_started": len(
                [e for e in events if e["event"] == "job_started" and e["ts"] >= since]
            ),
            "processes_over_idle": {w.name: after[w.name].procs - idle[w.name] for w in workers},
            "records": await records_left(run, outcomes, since),
        },
        "memory": {w.name: memory(idle[w.name], before[w.name], after[w.name]) for w in workers},
        "worker_logs": {w.name: log_findings(_log(run, w), since) for w in workers},
        "minutes": round((time.time() - since) / 60, 1),
    }


def memory(idle_procs: int, before: Footprint, after: Footprint) -> dict[str, Any]:
    return {"idle_procs": idle_procs, "before": asdict(before), "after": asdict(after)}


def _log(run: Run, worker: Worker) -> Path:
    return run.lab.lab.procs.logs / f"{worker.name}.log"


def path_summary(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in PATHS:
        mine = [o for o in outcomes if o.path == path]
        answer = [o.time_to_answer for o in mine if o.time_to_answer is not None]
        problems = Counter(p for o in mine for p in o.problems)
        out[path] = {
            "calls": len(mine),
            "ok": sum(o.ok for o in mine),
            "answered": sum(o.answered for o in mine),
            "answer_p50_ms": round(percentile(answer, 50) * 1000),
            "call_s_p50": round(percentile([o.seconds for o in mine], 50), 1),
            "problems": dict(problems.most_common()),
        }
    return out


def print_report(fig: dict[str, Any]) -> None:
    head = f"{'path':<36} {'calls':>5} {'ok':>4} {'answered':>8} {'answer p50':>10} {'call p50':>8}"
    print(f"\n{len(fig['calls'])} sequential calls in {fig['minutes']} min\n")
    print(head)
    print("-" * len(head))
    for path, s in fig["paths"].items():
        print(f"{path:<36} {s['calls']:>5} {s['ok']:>4} {s['answered']:>8} "
              f"{s['answer_p50_ms']:>7} ms {s['call_s_p50']:>6} s")  # fmt: skip
        for problem, n in s["problems"].items():
            print(f"{'':<6}{n} x {problem}")
    left = fig["left"]
    print(f"\nleft after the last call (settled in {left['settle_s']} s):")
    print(f"  rooms (with their participants): {left['rooms'] or 'none'}")
    print(f"  jobs running per worker (GET /worker): {left['active_jobs']}")
    print(f"  jobs started and never ended (events): {left['jobs_started_not_ended'] or 'none'}"
          f" of {left['jobs_started']}")  # fmt: skip
    print(f"  worker processes above the idle pool: {left['processes_over_idle']}")
    rec = left["records"]
    print(f"  call records: {rec['by_status']}, missing {rec['missing_for_calls'] or 'none'}, "
          f"not complete {rec['not_complete'] or 'none'}")  # fmt: skip
    print("\nworker tree memory (idle, before the first and after the last call):")
    for name, m in fig["memory"].items():
        b, a = m["before"], m["after"]
        print(f"  {name:<9} PSS {b['pss_mb']:>7.1f} -> {a['pss_mb']:>7.1f} MB   "
              f"RSS {b['rss_mb']:>7.1f} -> {a['rss_mb']:>7.1f} MB   "
              f"processes {b['procs']} -> {a['procs']}")  # fmt: skip
    print("\nworker log lines at ERROR (or with a traceback) during the soak:")
    for name, found in fig["worker_logs"].items():
        for message, n in found.items():
            print(f"  {name}: {n} x {message}")


def _workers(lab: Lab) -> list[Worker]:
    by_name = {p.name: p for p in lab.procs.load()}
    return [
        Worker("agent", by_name["agent"].pid, lab.c.worker_port),
        Worker("agent-ai", by_name["agent-ai"].pid, worker_http_port(by_name["agent-ai"].log)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("-n", "--calls", type=int, default=200)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=75.0,
                        help="place no new call after this long")  # fmt: skip
    args = parser.parse_args()
    lab = Lab(LabConfig(state_dir=LabConfig().state_dir / "soak"))
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode="start")
        with FakeOpenAI(host="127.0.0.1", port=0) as fake:
            lab.start_agent("start", name="agent-ai", env=ai_worker_env(env, fake.base_url))
            run = Run(AiLab(LabHandle(env, lab), fake))
            fig = asyncio.run(soak(run, _workers(lab), args))
    except LabError as e:
        print(f"bench.soak: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    print_report(fig)
    OUT.mkdir(exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(fig, indent=1, default=str))
    print(f"\nwrote {OUT / 'soak.json'} (logs in {lab.procs.logs})")
    left = fig["left"]
    clean = not (left["rooms"] or left["jobs_started_not_ended"] or left["records"]["not_complete"])
    return 0 if clean and all(c["ok"] for c in fig["calls"]) else 1


if __name__ == "__main__":
    sys.exit(main())
