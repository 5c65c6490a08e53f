"""What the guardian knows of one room: plain values read from the server's answers.

The decisions (``decisions.py``) take these, never protobuf messages, so they can be tested
with values written by hand. Everything here comes from the server and, through attributes
and metadata, from participants: it is data, parsed defensively, never trusted to be
well-formed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from livekit import api

from switchboard.data.leases import Lease

# Written into the metadata of every dispatch a guardian makes (see ``Mark``).
MARK_BY = "switchboard-guardian"
# The attribute livekit-server gives every agent participant: the worker's agent name.
AGENT_NAME_ATTRIBUTE = "lk.agent_name"
# Suffix of the agent name of a guardian's lease on a room: a dispatch that no worker serves
# (so it never becomes a job), whose metadata names the guardian holding the room.
LEASE_SUFFIX = ".guardian-lease"
# A key in the room's metadata (a JSON object) that the agent sets before it leaves a call
# on purpose with the caller still in the room (a hand-off): no agent is sent after it.
AGENT_DONE_KEY = "switchboard_agent_done"

Kind = Literal["sip", "agent", "other"]
# Job states that say the job is over (livekit-server: ``agent.JobStatusIsEnded``).
JOB_ENDED = (api.JobStatus.JS_SUCCESS, api.JobStatus.JS_FAILED)
# sip.callStatus values of a call that was answered and still goes on.
ANSWERED = ("active", "automation")


@dataclass(frozen=True, slots=True)
class Person:
    identity: str
    kind: Kind
    agent_name: str | None  # agents only
    # A SIP participant that came in through a dispatch rule: the caller. Dialled legs
    # (CreateSIPParticipant) have no rule.
    inbound: bool
    joined_at: float  # server clock, seconds
    call_id: str | None  # sip.callID: how the agent finds the call record again
    number: str | None  # sip.phoneNumber: log it masked, never whole
    # The SIP service answers a caller only once someone in the room publishes audio: until
    # then the call rings, and cannot be transferred.
    answered: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    identity: str  # the agent participant the worker said it would join as
    started_at: float  # when a worker accepted it, server clock, seconds
    # The server's word that the job is over (its state when the worker accepted it: a
    # dispatch's jobs are not updated later, so a job that dies starting still looks live).
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """A guardian's note in its dispatch's metadata: the room's history that the guardian
    keeps nowhere else, so that any guardian, restarted or not, continues the count."""

    resume: bool
    attempt: int
    since: float  # when this caller's wait for an agent began: the budget runs from here


@dataclass(frozen=True, slots=True)
class Dispatch:
    id: str
    agent_name: str
    created_at: float  # server clock, seconds
    jobs: tuple[Job, ...]  # accepted by a worker; empty while pending, and when refused
    mark: Mark | None  # None: not made by a guardian (e.g. by the dispatch rule)
    lease: str | None = None  # a lease dispatch: the ID of the guardian that took it
    transferred: bool = False  # a lease taken to send the caller to the overflow


@dataclass(frozen=True, slots=True)
class RoomView:
    name: str
    sid: str
    agent_done: bool
    people: tuple[Person, ...]
    dispatches: tuple[Dispatch, ...]
    # The caller's call lease (``data/leases.py``), as far as it can be trusted
    # (``guardian/liveness.py``): None when there is none, or no lease store.
    lease: Lease | None = None


def dispatch_metadata(
    mark: Mark, *, reason: str, call_id: str | None, previous_job: str | None
) -> str:
    """The dispatch metadata the agent reads: ``resume`` says an agent had the call before
    (look up the call record by ``call_id`` and continue it)."""
    return json.dumps(
        {
            "by": MARK_BY,
            "resume": mark.resume,
            "reason": reason,
            "attempt": mark.attempt,
            "since": round(mark.since, 3),
            "call_id": call_id,
            "previous_job": previous_job,
        },
        separators=(",", ":"),
    )


def lease_metadata(holder: str, *, transferred: bool = False) -> str:
    data: dict[str, Any] = {"by": MARK_BY, "lease": holder}
    if transferred:
        data["transferred"] = True  # every guardian sees it: the REFER is sent once
    return json.dumps(data, separators=(",", ":"))


def parse_lease(metadata: str) -> str | None:
    data = _json_object(metadata)
    if data is None or data.get("by") != MARK_BY:
        return None
    holder = data.get("lease")
    return holder if isinstance(holder, str) and holder else None


def parse_mark(metadata: str) -> Mark | None:
    data = _json_object(metadata)
    if data is None or data.get("by") != MARK_BY:
        return None
    resume, attempt, since = data.get("resume"), data.get("attempt"), data.get("since")
    if not isinstance(resume, bool) or type(attempt) is not int or attempt < 1:
        return None
    if not isinstance(since, int | float) or not math.isfinite(since):
        return None
    return Mark(resume, attempt, float(since))


def agent_done(room_metadata: str) -> bool:
    data = _json_object(room_metadata)
    return data is not None and data.get(AGENT_DONE_KEY) is True


def _json_object(text: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def person_from_api(p: api.ParticipantInfo) -> Person:
    attributes = dict(p.attributes)
    if p.kind == api.ParticipantInfo.Kind.SIP:
        kind: Kind = "sip"
    elif p.kind == api.ParticipantInfo.Kind.AGENT:
        kind = "agent"
    else:
        kind = "other"
    joined = p.joined_at_ms / 1000 if p.joined_at_ms else float(p.joined_at)
    return Person(
        identity=p.identity,
        kind=kind,
        agent_name=attributes.get(AGENT_NAME_ATTRIBUTE) if kind == "agent" else None,
        inbound=kind == "sip" and bool(attributes.get("sip.ruleID")),
        joined_at=joined,
        call_id=attributes.get("sip.callID") or None,
        number=attributes.get("sip.phoneNumber") or None,
        answered=attributes.get("sip.callStatus") in ANSWERED,
    )


def dispatch_from_api(d: api.AgentDispatch) -> Dispatch:
    lease = parse_lease(d.metadata) if d.agent_name.endswith(LEASE_SUFFIX) else None
    jobs = tuple(
        Job(
            j.id,
            j.state.participant_identity,
            j.state.started_at / 1e9,
            ended=j.state.status in JOB_ENDED or j.state.ended_at > 0,
        )
        for j in d.state.jobs
        if j.state.participant_identity
    )
    return Dispatch(
        id=d.id,
        agent_name=d.agent_name,
        created_at=d.state.created_at / 1e9,
        jobs=jobs,
        mark=parse_mark(d.metadata),
        lease=lease,
        transferred=lease is not None
        and (_json_object(d.metadata) or {}).get("transferred") is True,
    )


def room_from_api(
    room: api.Room, people: Iterable[api.ParticipantInfo], dispatches: Iterable[api.AgentDispatch]
) -> RoomView:
    return RoomView(
        name=room.name,
        sid=room.sid,
        agent_done=agent_done(room.metadata),
        people=tuple(
            person_from_api(p) for p in people if p.state != api.ParticipantInfo.State.DISCONNECTED
        ),
        dispatches=tuple(dispatch_from_api(d) for d in dispatches),
    )
