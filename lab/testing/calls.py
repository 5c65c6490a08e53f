"""Helpers for lab tests: place a call to the lab's number, ask the server what is left."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from livekit import api

from lab.phone import CallResult, place_call
from lab.testing.handles import AiLab, LabHandle
from switchboard.numbers import mask_number


async def call_lab(
    lab: LabHandle,
    *,
    from_number: str = "+442071234567",
    to_number: str | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> CallResult:
    return await place_call(
        sip_host=lab.env["SIP_HOST"],
        sip_port=int(lab.env["SIP_PORT"]),
        to_number=to_number or lab.env["LAB_INBOUND_NUMBER"],
        from_number=from_number,
        headers=headers,
        local_ip=lab.env["LAB_PHONE_IP"],
        **kwargs,
    )


def fresh_number() -> str:
    """A caller number no earlier run used (PIN attempts are counted per number for a
    week, in the lab's database too): a London number with 8 random digits."""
    return f"+4420{secrets.randbelow(10**8):08d}"


async def call_ai(ai_lab: AiLab, scenario: str, **kwargs: Any) -> CallResult:
    """Call the lab's AI worker; the scripted test-double LLM plays ``scenario``."""
    headers = {"X-Scenario": scenario, **kwargs.pop("headers", {})}
    return await call_lab(
        ai_lab.lab, to_number=ai_lab.env["LAB_AI_NUMBER"], headers=headers, **kwargs
    )


def caller_event(lab: LabHandle, result: CallResult, timeout: float = 15.0) -> dict[str, Any]:
    """The agent's view of this call: matched by the SIP Call-ID our phone sent."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for event in lab.events():
            caller = event.get("caller") or {}
            if event["event"] == "caller" and caller.get("call_id_full") == result.call_id:
                return event
        time.sleep(0.05)
    raise AssertionError(f"the agent never reported call {result.call_id}")


async def rooms(lab: LabHandle) -> dict[str, str]:
    """The server's rooms: SID -> name."""
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        listing = await lk.room.list_rooms(api.ListRoomsRequest())
    return {r.sid: r.name for r in listing.rooms}


async def wait_room_gone(lab: LabHandle, room_id: str, timeout: float = 5.0) -> float:
    """Seconds until the server no longer lists room ``room_id``; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if room_id not in await rooms(lab):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"room {room_id} still exists {timeout}s later")


def first_event(
    lab: LabHandle, since: float, caller_number: str, event: str
) -> dict[str, Any] | None:
    """The first ``event`` of the call from ``caller_number`` that started after ``since``."""
    masked = mask_number(caller_number)
    jobs = {
        e["job_id"] for e in lab.events()
        if e["event"] == "caller" and e["ts"] >= since and e["caller"]["phone_number"] == masked
    }  # fmt: skip
    return next((e for e in lab.events() if e["event"] == event and e["job_id"] in jobs), None)


async def agent_speaking(
    lab: LabHandle, since: float, caller_number: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Wait (without blocking the loop the call's media runs on) until the agent speaks on
    the call from ``caller_number`` started after ``since`` and the caller's leg is
    answered; the ``agent_said`` event.

    Both: the first words are made, and said, as the session starts, before the caller's
    leg is up (``call.first_words``), so "said" alone is not yet "a call in progress"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = first_event(lab, since, caller_number, "agent_said")
        if said and any(
            e["event"] == "call_status"
            and e["job_id"] == said["job_id"]
            and e["status"] == "active"
            for e in lab.events()
        ):
            return said
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent never answered the call from {caller_number}")


# -- what a run left behind (the soak and load runs count these after their calls) -----------
async def server_leftovers(lab: LabHandle) -> dict[str, list[str]]:
    """Room name -> identities of the participants still in it, for every room listed."""
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        listed = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        left = {}
        for room in listed:
            with contextlib.suppress(api.TwirpError):  # gone since the listing: not left
                who = await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
                left[room.name] = [p.identity for p in who.participants]
    return left


def worker_http_port(log: Path) -> int | None:
    """The port a worker's HTTP endpoint listens on, as its log says (``SWITCHBOARD_WORKER_PORT
    =0`` picks a free one): "HTTP server listening on :PORT"."""
    with contextlib.suppress(OSError), log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if m := _LISTENING.search(line):
                return int(m[1])
    return None


_LISTENING = re.compile(r"HTTP server listening on [^:\s\"]*:(\d+)")


async def worker_active_jobs(port: int) -> int:
    """Jobs the worker itself counts as running (livekit-agents' ``GET /worker``)."""
    # Protobuf JSON leaves out fields at their default: no "active_jobs" means 0.
    return int((await worker_info(port)).get("active_jobs", 0))


async def worker_info(port: int) -> dict[str, Any]:
    """What the worker says of itself (livekit-agents' ``GET /worker``): agent name,
    active jobs, load; fields at their default (0) are left out."""
    # A worker told to pick a free port binds one on 0.0.0.0 and another on ::, and logs
    # whichever aiohttp lists first: try both loopbacks.
    for host in ("127.0.0.1", "[::1]"):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(f"http://{host}:{port}/worker") as resp,
            ):
                resp.raise_for_status()
                info: dict[str, Any] = await resp.json(content_type=None)
                return info
    raise ConnectionError(f"no worker answers GET /worker on port {port}")


def unfinished_jobs(events: list[dict[str, Any]], since: float = 0.0) -> list[str]:
    """Jobs with a ``job_started`` event after ``since`` and no ``job_ended`` event."""
    started = [e["job_id"] for e in events if e["event"] == "job_started" and e["ts"] >= since]
    ended = {e["job_id"] for e in events if e["event"] == "job_ended"}
    return [job for job in started if job not in ended]
