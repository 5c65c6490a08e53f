"""The dispatch guardian on real calls: a refused dispatch is retried, a worker killed
mid-call is replaced, and a webhook that is not signed by the server changes nothing.

The calls go to the lab's guarded number, whose agent name only the two workers started
here serve (one call each at most: SWITCHBOARD_MAX_CALLS=1), next to two guardians.
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

from lab.testing.calls import call_lab, caller_event, first_event, worker_active_jobs
from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab

WORKERS = ("guarded-1", "guarded-2")
CALLER = "+442071230001"  # numbers no other test uses: they find this file's events
CALLER_KILLED = "+442071230002"


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
        },
    )
    assert tuple(names) == WORKERS
    try:
        settings = {
            "SWITCHBOARD_AGENT_NAME": agent_name,
            "SWITCHBOARD_GUARDIAN_BUDGET": "60",
            "SWITCHBOARD_GUARDIAN_BACKOFF_MAX": "2",
        }
        lab.lab.start_guardian(env=settings)
        # A second guardian, as a deployment with two for safety has: it only reconciles (the
        # webhooks go to the first), so both often decide at the same moment.
        lab.lab.start_guardian(
            name="guardian-2",
            port=lab.lab.c.guardian_port + 1,
            env={**settings, "SWITCHBOARD_GUARDIAN_PERIOD": "1"},
        )
        ports = {n: lab.lab.c.extra_worker_port + i for i, n in enumerate(WORKERS, start=1)}
        yield Guarded(lab, ports)
    finally:
        for name in ("guardian", "guardian-2", *WORKERS):
            lab.lab.procs.stop(name)


async def _until(what: str, timeout: float, check: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


async def _busy(guarded: Guarded) -> dict[str, int]:
    return {name: await worker_active_jobs(port) for name, port in guarded.ports.items()}


def _api(lab: LabHandle) -> api.LiveKitAPI:
    return api.LiveKitAPI(lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"])


async def test_a_call_every_worker_refused_is_answered_after_a_redispatch(guarded: Guarded) -> None:
    async with _api(guarded.lab) as lk:
        await _refused_call(guarded, lk)


async def _refused_call(guarded: Guarded, lk: api.LiveKitAPI) -> None:
    lab = guarded.lab
    # Both workers busy (a job each, in rooms no caller joins): they refuse the call.
    holds = [f"hold-{uuid.uuid4().hex[:8]}" for _ in WORKERS]
    for room in holds:
        await lk.room.create_room(api.CreateRoomRequest(name=room))
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=guarded.agent_name, room=room)
        )

    async def all_busy() -> bool:
        return all((await _busy(guarded)).values())

    await _until("both workers busy", 20, all_busy)

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
        # The guardian tries (and is refused) at least once before any worker is free.
        async def first_attempt() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in lab.events()
                    if e.get("component") == "guardian"
                    and e["event"] == "redispatched"
                    and e["ts"] >= started
                ),
                None,
            )

        attempt = await _until("a guardian dispatch", 30, first_attempt)
        room_id = attempt["room_id"]
        assert attempt["reason"] == "no_agent"
        assert attempt["caller_number"] == "+4420••••0001"
        assert not [
            e for e in lab.events() if e["event"] == "job_started" and e.get("room_id") == room_id
        ], "a worker took the refused call"
        freed_at = time.time()
        await lk.room.delete_room(api.DeleteRoomRequest(room=holds[0]))
        result = await asyncio.wait_for(call, 90)
    finally:
        call.cancel()
        for room in holds:
            with contextlib.suppress(api.TwirpError):
                await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    assert result.answered, result.sipp_log_tail
    assert result.first_audio_at is not None and result.first_audio_at > freed_at
    event = caller_event(lab, result)
    assert event["room_id"] == room_id
    attempts = guarded.guardian_events("redispatched", room_id)
    print(
        f"\nrefused call: answered by a worker {result.first_audio_at - freed_at:.1f} s after "
        f"one was freed; guardian attempts {[a['attempt'] for a in attempts]}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    assert result.ended_by == "remote", "the agent should finish its message and hang up"


async def test_a_worker_killed_mid_call_is_replaced_by_exactly_one_agent(guarded: Guarded) -> None:
    async with _api(guarded.lab) as lk:
        await _killed_worker(guarded, lk)


async def _killed_worker(guarded: Guarded, lk: api.LiveKitAPI) -> None:
    lab = guarded.lab

    async def all_free() -> bool:
        return not any((await _busy(guarded)).values())

    await _until("both workers free", 30, all_free)
    started = time.time()
    call = asyncio.create_task(
        call_lab(
            lab,
            from_number=CALLER_KILLED,
            to_number=lab.env["LAB_GUARDED_NUMBER"],
            hangup="remote",
            timeout=90,
        )
    )
    try:

        async def speaking() -> dict[str, Any] | None:
            return first_event(lab, started, CALLER_KILLED, "agent_said")

        said = await _until("the first agent speaking", 30, speaking)
        room_id, first_job = said["room_id"], said["job_id"]
        busy = await _busy(guarded)
        holder = next(name for name, jobs in busy.items() if jobs)
        pid = next(p.pid for p in lab.lab.procs.load() if p.name == holder)
        os.killpg(pid, signal.SIGKILL)  # the worker and its job processes: a lost machine
        killed_at = time.time()

        async def resumed() -> dict[str, Any] | None:
            found = guarded.guardian_events("resumed", room_id)
            return found[0] if found else None

        resume = await _until("a resume dispatch", 40, resumed)
        assert resume["reason"] == "agent_left"

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
        rooms = await lk.room.list_rooms(api.ListRoomsRequest())
        name = next(r.name for r in rooms.rooms if r.sid == room_id)
        people = await lk.room.list_participants(api.ListParticipantsRequest(room=name))
        agents = [
            p.identity for p in people.participants if p.kind == api.ParticipantInfo.Kind.AGENT
        ]
        assert len(agents) == 1, agents
        dispatches = await lk.agent_dispatch.list_dispatch(name)
        result = await asyncio.wait_for(call, 90)
    finally:
        call.cancel()
    assert result.answered
    heard_again = [a for a in result.arrivals if a.at > again["ts"] - 1 and a.rms > 0]
    assert heard_again, "the caller heard nothing from the new agent"
    # Exactly one resume dispatch was taken by a worker: no second agent on the way either.
    taken = [
        json.loads(d.metadata or "{}")
        for d in dispatches
        if d.agent_name == guarded.agent_name and d.state.jobs
    ]
    # The rule's dispatch (its agent killed) and the one resume: listed in any order.
    assert sorted(m.get("resume", False) for m in taken) == [False, True], taken
    print(
        f"\nkilled worker: resume dispatch {resume['ts'] - killed_at:.1f} s after SIGKILL, new "
        f"agent speaking {again['ts'] - killed_at:.1f} s after; load {os.getloadavg()[0]:.1f}"
    )
    assert again["ts"] - killed_at < 30


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
