"""The dispatch guardian on real calls: a refused dispatch is retried, a worker killed
mid-call is replaced, out of budget a caller is sent to the overflow (or refused while
still ringing), and a webhook that is not signed by the server changes nothing.

The calls go to the lab's guarded number, whose agent name only the three workers started
here serve (one call each at most: SWITCHBOARD_MAX_CALLS=1), next to two guardians. The
worker-kill test takes one of them for a call that must go on untouched, one for the call
whose worker it kills, and the third for the resume.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api

from lab.phone import CallResult
from lab.procs import alive
from lab.testing.calls import call_lab, caller_event, first_event, worker_active_jobs
from lab.testing.handles import LabHandle
from lab.testing.records import lab_database, wait_record
from switchboard.data import leases
from switchboard.data.records.query import list_calls
from switchboard.numbers import mask_number

pytestmark = pytest.mark.lab

WORKERS = ("guarded-1", "guarded-2", "guarded-3")
GUARDIANS = ("guardian", "guardian-2")
CALLER = "+442071230001"  # numbers no other test uses: they find this file's events
CALLER_KILLED = "+442071230002"
CALLER_RINGING = "+442071230003"
CALLER_TRANSFERRED = "+442071230004"
CALLER_BESIDE = "+442071230005"  # on another worker while CALLER_KILLED's is killed


@dataclass(frozen=True)
class Guarded:
    lab: LabHandle
    ports: dict[str, int]  # worker process name -> its HTTP port

    @property
    def agent_name(self) -> str:
        return self.lab.env["LAB_GUARDED_AGENT_NAME"]

    def guardian_events(self, event: str, room_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.lab.events()
            if e.get("component") == "guardian" and e["event"] == event and e["room_id"] == room_id
        ]


@pytest.fixture(scope="module")
def guarded(lab: LabHandle) -> Iterator[Guarded]:
    agent_name = lab.env["LAB_GUARDED_AGENT_NAME"]
    names = lab.lab.start_workers(
        len(WORKERS),
        name="guarded",
        # Jobs in threads: on a busy 2-core machine, job processes can take longer to start
        # than the framework waits for them, and the test would measure that instead.
        env={
            "SWITCHBOARD_AGENT_NAME": agent_name,
            "SWITCHBOARD_MAX_CALLS": "1",
            "SWITCHBOARD_JOB_EXECUTOR": "thread",
            # A job in a room no caller joins (_occupy_workers) holds its worker this long.
            "SWITCHBOARD_PARTICIPANT_TIMEOUT": "120",
        },
    )
    assert tuple(names) == WORKERS
    try:
        start_guardians(lab)
        ports = {n: lab.lab.c.extra_worker_port + i for i, n in enumerate(WORKERS, start=1)}
        yield Guarded(lab, ports)
    finally:
        for name in (*GUARDIANS, *WORKERS):
            lab.lab.procs.stop(name)


def start_guardians(lab: LabHandle, **settings: str) -> None:
    """(Re)start the two guardians, as a deployment with two for safety has; the second
    only reconciles (the webhooks go to the first), so both often decide at the same
    moment. ``settings``: more environment, the same for both (the guardian holding a
    room decides with its own)."""
    for name in GUARDIANS:
        lab.lab.procs.stop(name)
    env = {
        "SWITCHBOARD_AGENT_NAME": lab.env["LAB_GUARDED_AGENT_NAME"],
        "SWITCHBOARD_GUARDIAN_BUDGET": "60",
        "SWITCHBOARD_GUARDIAN_BACKOFF_MAX": "2",
        **settings,
    }
    lab.lab.start_guardian(env=env)
    lab.lab.start_guardian(
        name=GUARDIANS[1],
        port=lab.lab.c.guardian_port + 1,
        env={**env, "SWITCHBOARD_GUARDIAN_PERIOD": "1"},
    )


async def _until(what: str, timeout: float, check: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


async def _busy(guarded: Guarded) -> dict[str, int]:
    """Jobs of each worker still alive (the tests kill some)."""
    live = {p.name for p in guarded.lab.lab.procs.load() if alive(p.pid)}
    return {
        name: await worker_active_jobs(port) for name, port in guarded.ports.items() if name in live
    }


async def _all_free(guarded: Guarded) -> bool:
    return not any((await _busy(guarded)).values())


def _with_overflow(guarded: Guarded) -> str:
    """Restart the guardians with a short budget and an overflow destination (the lab's
    callee address); returns the destination."""
    overflow = f"sip:+15105550199@{guarded.lab.env['LAB_PHONE_IP']}:5070"
    start_guardians(
        guarded.lab,
        # Long enough for a worker freed just before the call to be seen free by the server
        # (a worker reports its load every 2.5 s), short enough for a test.
        SWITCHBOARD_GUARDIAN_BUDGET="8",
        SWITCHBOARD_GUARDIAN_OVERFLOW=overflow,
        SWITCHBOARD_GUARDIAN_OVERFLOW_WAIT="5",
    )
    return overflow


def _overflowed(guarded: Guarded, number: str, since: float) -> list[dict[str, Any]]:
    """The overflow decisions for this call (of whichever guardian held the room)."""
    return [
        e
        for e in guarded.lab.events()
        if e["event"] == "overflowed"
        and e["ts"] >= since
        and e.get("caller_number") == mask_number(number)
    ]


async def _occupy_workers(guarded: Guarded, lk: api.LiveKitAPI) -> list[str]:
    """Every live worker busy, with a job each in a room no caller joins: they refuse
    calls until those rooms are deleted. Returns the rooms' names; on failure, deletes
    them (a hold left behind keeps its worker busy for minutes, failing the next test)."""

    async def all_busy() -> bool:
        return all((await _busy(guarded)).values())

    await _until("the workers free", 30, lambda: _all_free(guarded))
    holds: list[str] = []
    try:
        # Topped up when one is not taken: the server places a dispatch by the workers'
        # last load reports (every 2.5 s) and gives up after trying them (CI saw a worker
        # stay idle for 20 s after a round of as many holds as workers).
        for _ in range(3):
            idle = [name for name, jobs in (await _busy(guarded)).items() if not jobs]
            for _ in idle:
                room = f"hold-{uuid.uuid4().hex[:8]}"
                # Kept until deleted: the server would close a room nobody joins after its
                # empty_timeout, and the job would stop waiting for a caller (the fixture).
                await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=300))
                holds.append(room)
                await lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name=guarded.agent_name, room=room)
                )
            with contextlib.suppress(AssertionError):
                await _until("the workers busy", 12, all_busy)
                return holds
        raise AssertionError(
            f"the workers busy: not after {len(holds)} holds: {await _busy(guarded)}"
        )
    except BaseException:
        await _release(lk, holds)
        raise


async def _release(lk: api.LiveKitAPI, holds: list[str]) -> None:
    for room in holds:
        with contextlib.suppress(api.TwirpError):
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))


def _api(lab: LabHandle) -> api.LiveKitAPI:
    return api.LiveKitAPI(lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"])


async def test_a_call_every_worker_refused_is_answered_after_a_redispatch(guarded: Guarded) -> None:
    async with _api(guarded.lab) as lk:
        await _refused_call(guarded, lk)


async def _refused_call(guarded: Guarded, lk: api.LiveKitAPI) -> None:
    lab = guarded.lab
    holds = await _occupy_workers(guarded, lk)
    started = time.time()
    call = asyncio.create_task(
        call_lab(
            lab,
            from_number=CALLER,
            to_number=lab.env["LAB_GUARDED_NUMBER"],
            hangup="remote",
            timeout=90,
        )
    )
    try:
        # The guardian tries, is refused, and tries again (a second attempt comes only
        # after the first had a whole back-off without a worker) before any worker is free.
        async def second_attempt() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in lab.events()
                    if e.get("component") == "guardian"
                    and e["event"] == "redispatched"
                    and e["ts"] >= started
                    and e["attempt"] == 2
                ),
                None,
            )

        attempt = await _until("a second guardian dispatch", 30, second_attempt)
        room_id = attempt["room_id"]
        assert attempt["reason"] == "no_agent"
        assert attempt["caller_number"] == "+4420••••0001"
        freed_at = time.time()
        await lk.room.delete_room(api.DeleteRoomRequest(room=holds[0]))
        result = await asyncio.wait_for(call, 90)
    finally:
        call.cancel()
        await _release(lk, holds)
    assert result.answered, result.sipp_log_tail
    assert result.first_audio_at is not None and result.first_audio_at > freed_at
    event = caller_event(lab, result)
    assert event["room_id"] == room_id
    jobs = [e for e in lab.events() if e["event"] == "job_started" and e["room_id"] == room_id]
    assert [e["ts"] > freed_at for e in jobs] == [True], "a worker took the call while busy"
    attempts = guarded.guardian_events("redispatched", room_id)
    print(
        f"\nrefused call: answered by a worker {result.first_audio_at - freed_at:.1f} s after "
        f"one was freed; guardian attempts {[a['attempt'] for a in attempts]}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    assert result.ended_by == "remote", "the agent should finish its message and hang up"


async def _call_then_kill_its_worker(
    guarded: Guarded, number: str
) -> tuple[asyncio.Task[CallResult], dict[str, Any], float]:
    """Place a call, wait for its agent to speak and the call to be answered, SIGKILL the
    worker holding it (and its jobs, as a lost machine). Returns the call, the first
    agent's words, the kill time."""
    lab = guarded.lab
    before = await _busy(guarded)
    call, said = await _answered_call(guarded, number)
    try:
        await _lease_held(lab, said["job_id"])
        holder = next(
            name for name, jobs in (await _busy(guarded)).items() if jobs > before.get(name, 0)
        )
        pid = next(p.pid for p in lab.lab.procs.load() if p.name == holder)
        os.killpg(pid, signal.SIGKILL)
    except BaseException:
        call.cancel()
        raise
    return call, said, time.time()


async def _answered_call(
    guarded: Guarded, number: str
) -> tuple[asyncio.Task[CallResult], dict[str, Any]]:
    """Place a call once a worker is free; return it once its agent spoke and the call was
    answered, with the agent's first words."""
    lab = guarded.lab

    async def a_free_worker() -> bool:
        return not all((await _busy(guarded)).values())

    await _until("a free worker", 30, a_free_worker)
    started = time.time()
    call = asyncio.create_task(
        call_lab(
            lab,
            from_number=number,
            to_number=lab.env["LAB_GUARDED_NUMBER"],
            hangup="remote",
            timeout=90,
        )
    )

    async def speaking() -> dict[str, Any] | None:
        return first_event(lab, started, number, "agent_said")

    async def answered() -> bool:
        # The SIP service answers once it hears the agent: the agent sees the caller's
        # sip.callStatus turn active (until then the call is still ringing).
        return any(
            e["event"] == "call_status"
            and e["job_id"] == said["job_id"]
            and e["status"] == "active"
            for e in lab.events()
        )

    try:
        said = await _until("the first agent speaking", 30, speaking)
        await _until("the call answered", 15, answered)
    except BaseException:
        call.cancel()
        raise
    return call, said


async def test_a_worker_killed_mid_call_is_replaced_by_exactly_one_agent(guarded: Guarded) -> None:
    """The guardian knows the agent died from its call lease, not from the server (which
    notices only after about 20 s): the caller hears a new agent within seconds, the call
    keeps its one record, and the call on another worker is untouched. The guardian that
    gets the webhooks is killed with the worker: the other one resumes the call alone, and
    both guardians restarted mid-call bring no second agent."""
    lab = guarded.lab
    beside, beside_said = await _answered_call(guarded, CALLER_BESIDE)
    try:
        call, said, killed_at = await _call_then_kill_its_worker(guarded, CALLER_KILLED)
        (first_guardian,) = [p for p in lab.lab.procs.running() if p.name == GUARDIANS[0]]
        os.kill(first_guardian.pid, signal.SIGKILL)  # ours, by pid
    except BaseException:
        beside.cancel()
        raise
    room_id, first_job = said["room_id"], said["job_id"]
    try:
        async with _api(lab) as lk:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest())
            name = next(r.name for r in rooms.rooms if r.sid == room_id)

            async def resumed() -> dict[str, Any] | None:
                found = guarded.guardian_events("resumed", room_id)
                return found[0] if found else None

            resume = await _until("a resume dispatch", 40, resumed)
            # The lease told it, long before the server dropped the dead agent.
            assert resume["reason"] == "agent_silent"
            assert resume["removed"] == [f"agent-{first_job}"]

            async def new_agent_speaks() -> dict[str, Any] | None:
                return next(
                    (
                        e
                        for e in lab.events()
                        if e["event"] == "agent_said"
                        and e.get("room_id") == room_id
                        and e["job_id"] != first_job
                    ),
                    None,
                )

            again = await _until("the new agent speaking", 30, new_agent_speaks)
            assert not alive(first_guardian.pid)  # the second guardian resumed it alone
            dispatches = await lk.agent_dispatch.list_dispatch(name)
            # Both guardians restarted, with no memory, while the call goes on (in a thread:
            # this loop carries the call's media). Meanwhile, and after: one agent in the
            # room while the caller is there, never two (none on its way).
            restart = asyncio.create_task(asyncio.to_thread(start_guardians, lab))
            looks_after = 0  # at the room, once both guardians are back
            try:
                while looks_after < 8:
                    agents, caller_there = await _agents_and_caller(lk, name)
                    assert len(agents) <= 1, agents
                    if not caller_there:
                        break  # the call ended (the new agent's words, then its hang-up)
                    assert len(agents) == 1, agents
                    if restart.done():
                        looks_after += 1
                        dispatches = await lk.agent_dispatch.list_dispatch(name) or dispatches
                    await asyncio.sleep(0.5)
            finally:
                await restart
        result = await asyncio.wait_for(call, 90)
        beside_result = await asyncio.wait_for(beside, 90)
    finally:
        call.cancel()
        beside.cancel()
    assert result.answered
    # What the caller heard: the new agent's first sound (after it began to speak; the
    # SIP service still plays out the dead agent's last buffered audio for a moment).
    heard = next((a.at for a in result.arrivals if a.at >= again["ts"] and a.rms > 0), None)
    assert heard is not None, "the caller heard nothing from the new agent"
    resumes = [d.id for d in dispatches if json.loads(d.metadata or "{}").get("resume") is True]
    assert len(resumes) == 1, [MessageToJson(d) for d in dispatches]
    # One record, the resume in its timeline.
    call_id = _caller_of(lab, first_job)["call_id"]
    async with lab_database(lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=30)
        rows = [c for c in await list_calls(db, limit=50) if c.call_id == call_id]
        assert not await leases.read_leases(db, call_id), "a call that ended keeps no lease"
    assert len(rows) == 1
    assert "resumed (agent_silent)" in [st.status for st in record.statuses]
    # The call on the other worker: answered, its one agent throughout, never resumed.
    assert beside_result.answered and beside_result.ended_by == "remote"
    beside_room = beside_said["room_id"]
    assert {
        e["job_id"] for e in lab.events() if e.get("room_id") == beside_room and "job_id" in e
    } == {beside_said["job_id"]}
    assert guarded.guardian_events("resumed", beside_room) == []
    print(
        f"\nkilled worker: resume dispatch {resume['ts'] - killed_at:.1f} s after SIGKILL, new "
        f"agent speaking {again['ts'] - killed_at:.1f} s after, heard by the caller "
        f"{heard - killed_at:.1f} s after; {looks_after} looks at the room with both "
        f"guardians restarted; load {os.getloadavg()[0]:.1f}"
    )
    # 5 s is the aim (typically 3.5-4.5 s); the bound leaves room for a busy machine and
    # still fails the server's way of noticing (20 s or more).
    assert heard - killed_at < 10


async def _agents_and_caller(lk: api.LiveKitAPI, room: str) -> tuple[list[str], bool]:
    """The agents in ``room``, and whether its SIP caller is still there (not when the
    room is gone)."""
    try:
        people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return [], False
    kinds = api.ParticipantInfo.Kind
    agents = [p.identity for p in people.participants if p.kind == kinds.AGENT]
    return agents, any(p.kind == kinds.SIP for p in people.participants)


async def _lease_held(lab: LabHandle, job_id: str) -> None:
    """Mid-call: the job holds its call's lease (it takes it as its session starts)."""
    call_id = _caller_of(lab, job_id)["call_id"]

    async def held() -> bool:
        async with lab_database(lab) as db:
            found = await leases.read_leases(db, call_id)
        return bool(found) and found[0].holder == f"agent-{job_id}"

    await _until("the call's lease held", 20, held)


def _caller_of(lab: LabHandle, job_id: str) -> dict[str, Any]:
    return next(
        e["caller"] for e in lab.events() if e["event"] == "caller" and e["job_id"] == job_id
    )


async def test_out_of_budget_a_ringing_caller_is_refused_not_left_ringing(
    guarded: Guarded,
) -> None:
    """The SIP service answers only once an agent speaks: a caller no worker takes rings
    (for 3 minutes, by default). Out of budget, a ringing call cannot be transferred: the
    room is ended, which refuses the INVITE."""
    lab = guarded.lab
    async with _api(lab) as lk:
        _with_overflow(guarded)
        holds = await _occupy_workers(guarded, lk)
        started = time.time()
        try:
            result = await call_lab(
                lab,
                from_number=CALLER_RINGING,
                to_number=lab.env["LAB_GUARDED_NUMBER"],
                hangup="remote",
                timeout=40,
            )
        finally:
            await _release(lk, holds)
    assert not result.answered and result.final_status is not None, result.sipp_log_tail
    assert result.final_status >= 400
    (ended,) = _overflowed(guarded, CALLER_RINGING, started)
    assert ended["action"] == "end_room"
    assert "never answered" in ended["reason"]
    assert result.ended_at is not None and result.invite_sent_at is not None
    assert 8 <= result.ended_at - result.invite_sent_at < 20
    print(
        f"\nringing caller out of budget: refused ({result.final_status}) "
        f"{result.ended_at - result.invite_sent_at:.1f} s after the INVITE"
    )


async def test_out_of_budget_an_answered_caller_is_transferred_to_the_overflow(
    guarded: Guarded,
) -> None:
    """The last worker dies mid-call: no agent can come, so after the budget the caller is
    sent (REFER) to the overflow destination."""
    lab = guarded.lab
    _with_overflow(guarded)
    await _until("the workers free", 30, lambda: _all_free(guarded))
    live = sorted(await _busy(guarded))
    for name in live[1:]:  # the last worker: no other can take the call after it
        lab.lab.procs.stop(name)
    call, _said, killed_at = await _call_then_kill_its_worker(guarded, CALLER_TRANSFERRED)
    try:
        result = await asyncio.wait_for(call, 90)
    finally:
        call.cancel()
    assert result.answered, result.sipp_log_tail
    assert result.refer_to is not None and "+15105550199" in result.refer_to, result.refer_to
    # One REFER, whatever livekit-sip v1.8.0 answers the RPC: "accepted", or "canceled"
    # although the REFER reached the caller (its transaction ends before the NOTIFY). Then
    # it does not hang up, and the room is ended once the transfer had its time.
    moved, *then = _overflowed(guarded, CALLER_TRANSFERRED, killed_at)
    assert moved["action"] == "transfer" and moved["outcome"] in ("accepted", "failed: canceled")
    assert moved["to"] == f"sip:+1510••••0199@{lab.env['LAB_PHONE_IP']}:5070"
    assert 8 <= moved["waited_s"] < 20
    assert [(e["action"], e["reason"]) for e in then] in (
        [],
        [("end_room", "no agent within 8 s; the transfer did not complete")],
    )
    print(
        f"\nlast worker killed: caller transferred {moved['ts'] - killed_at:.1f} s after "
        f"SIGKILL ({moved['waited_s']:.1f} s after the agent was gone)"
    )


def _signed(body: str, secret: str, key: str = "devkey") -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).to_jwt()


async def test_a_forged_or_unsigned_webhook_is_refused_and_changes_nothing(
    guarded: Guarded,
) -> None:
    async with _api(guarded.lab) as lk:
        await _forged_webhooks(guarded, lk)


async def _forged_webhooks(guarded: Guarded, lk: api.LiveKitAPI) -> None:
    lab = guarded.lab
    room = await lk.room.create_room(api.CreateRoomRequest(name=f"forged-{uuid.uuid4().hex[:8]}"))
    caller = api.ParticipantInfo(
        identity="sip_+15105550000",
        kind=api.ParticipantInfo.Kind.SIP,
        attributes={"sip.ruleID": "SDR_forged", "sip.phoneNumber": "+15105550000"},
    )
    agent = api.ParticipantInfo(
        identity="agent-AJ_forged",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={"lk.agent_name": guarded.agent_name},
    )
    bodies = [
        MessageToJson(
            api.WebhookEvent(
                event=kind,
                room=room,
                participant=who,
                id=uuid.uuid4().hex,
                created_at=int(time.time()),
            )
        )
        for kind, who in (("participant_joined", caller), ("participant_left", agent))
    ]
    secret = lab.env["LIVEKIT_API_SECRET"]
    url = lab.env["LAB_GUARDIAN_URL"] + "/webhook"
    forged = [
        (bodies[0], None),  # unsigned
        (bodies[0], _signed(bodies[0], "not-the-secret-" + secret)),  # wrong key
        (bodies[1], _signed(bodies[0], secret)),  # a real signature, for another body
        (bodies[1], _signed(bodies[1], secret, key="another-key")),  # unknown key
    ]
    before = len(lab.events())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for body, token in forged:
            headers = {"Content-Type": "application/webhook+json"}
            if token:
                headers["Authorization"] = token
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 401, (resp.status, token)
        # The same event, signed by the server's key, is accepted: the refusals were the
        # signature's doing.
        signed = {"Authorization": _signed(bodies[1], secret)}
        async with http.post(url, data=bodies[1], headers=signed) as resp:
            assert resp.status == 200
    dispatches = await lk.agent_dispatch.list_dispatch(room.name)
    await lk.room.delete_room(api.DeleteRoomRequest(room=room.name))
    # (livekit-server gives a room made by the API a dispatch of its own, with no agent name.)
    assert [d.id for d in dispatches if d.agent_name == guarded.agent_name] == []
    assert [e for e in lab.events()[before:] if e.get("component") == "guardian"] == []
    log = next(p.log for p in lab.lab.procs.load() if p.name == "guardian").read_text()
    assert log.count("refused an unsigned or forged webhook") >= len(forged)
    assert "not-the-secret" not in log  # nothing of the request is logged
