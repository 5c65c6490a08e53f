"""Helpers for lab tests: place a call to the lab's number, ask the server what is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from livekit import api

from lab.phone import CallResult, place_call
from switchboard.caller import mask_number

from .conftest import AiLab, LabHandle


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
    the call from ``caller_number`` started after ``since``; its ``agent_said`` event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if said := first_event(lab, since, caller_number, "agent_said"):
            return said
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent never answered the call from {caller_number}")
