"""Fakes for driving one call's event handlers with neither a room nor a model.

The room is a real ``rtc.EventEmitter``, so ``room.emit(...)`` runs the handlers exactly
as the SDK would; the session is a real, model-less ``AgentSession`` whose acting methods
(which need a running session) are replaced by recorders. Not a test module: shared by
the unit tests of ``switchboard.call``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from livekit import rtc
from livekit.agents import AgentSession, JobContext, llm

from switchboard.call.event_types import CallEvent
from switchboard.call.events import EventLog
from switchboard.call.state import CallState
from switchboard.caller import Caller
from switchboard.config.prompts import load_prompts
from switchboard.routing import Route

CALLER = "sip_caller"
PROMPTS = load_prompts()  # read once, as the worker does at start
DEADLINE_S = 5.0  # generous: a busy 2-core machine, yet a hang still fails the test


@dataclass
class Participant:
    """What the handlers read of an ``rtc.RemoteParticipant``."""

    identity: str
    disconnect_reason: int | None = None  # an rtc.DisconnectReason value; None: none given
    attributes: dict[str, str] = field(default_factory=dict)


class Room(rtc.EventEmitter[str]):
    def __init__(self, *participants: Participant) -> None:
        super().__init__()
        self.name = "call-1"
        self.remote_participants = {p.identity: p for p in participants}
        self.connected = True

    def isconnected(self) -> bool:
        return self.connected


@dataclass(frozen=True)
class RoomInfo:
    sid: str = "RM_call1"


@dataclass(frozen=True)
class JobInfo:
    """What the handlers read of the job's ``proto.agent.Job``."""

    id: str = "AJ_call1"
    room: RoomInfo = field(default_factory=RoomInfo)


class Job:
    """The parts of a ``JobContext`` a call's handlers use, with what they were asked."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.job = JobInfo()
        self.rooms_deleted = 0
        self.shutdowns: list[str] = []
        self._ended = asyncio.get_running_loop().create_future()

    def delete_room(self) -> asyncio.Future[None]:
        self.rooms_deleted += 1
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def is_fake_job(self) -> bool:
        return False  # a phone call, not the console's simulated one

    def shutdown(self, reason: str = "user requested") -> None:
        self.shutdowns.append(reason)
        if not self._ended.done():
            self._ended.set_result(reason)

    async def ended(self) -> str:
        """The first shutdown's reason, once the job has been shut down."""
        return await asyncio.wait_for(asyncio.shield(self._ended), DEADLINE_S)

    @property
    def context(self) -> JobContext:
        return cast(JobContext, self)


class Speech:
    """A speech handle that has played out at once."""

    async def wait_for_playout(self) -> None:
        return None


@dataclass
class SessionCalls:
    """What the handlers asked of the session: each call's keyword arguments."""

    said: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    shutdowns: list[dict[str, Any]] = field(default_factory=list)


def record_session(
    session: AgentSession[CallState], monkeypatch: pytest.MonkeyPatch
) -> SessionCalls:
    """Replace the session's acting methods (a session never started cannot act) with
    recorders, on this instance only."""
    calls = SessionCalls()

    def say(text: str, **kwargs: Any) -> Speech:
        calls.said.append((text, kwargs))
        return Speech()

    def generate_reply(**kwargs: Any) -> Speech:
        calls.replies.append(kwargs)
        return Speech()

    def interrupt(**kwargs: Any) -> asyncio.Future[None]:
        calls.interrupts.append(kwargs)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(session, "say", say)
    monkeypatch.setattr(session, "generate_reply", generate_reply)
    monkeypatch.setattr(session, "interrupt", interrupt)
    monkeypatch.setattr(session, "shutdown", lambda **kwargs: calls.shutdowns.append(kwargs))
    return calls


@dataclass
class Call:
    """One call's fakes, its real session and state, and the call events emitted."""

    room: Room
    job: Job
    session: AgentSession[CallState]
    asked: SessionCalls
    state: CallState
    events: list[CallEvent]


def new_call(
    monkeypatch: pytest.MonkeyPatch, *others: Participant, model: llm.LLM[Any] | None = None
) -> Call:
    """A call from ``CALLER`` (with ``others`` in the room too), its session given
    ``model`` as its LLM, or no model at all."""
    room = Room(Participant(CALLER), *others)
    session = AgentSession[CallState](llm=model) if model else AgentSession[CallState]()
    events: list[CallEvent] = []
    log = EventLog(None, job_id="job-1")
    log.listeners.append(events.append)
    state = CallState(
        caller=Caller(kind="sip", identity=CALLER),
        route=Route("default"),
        room_name=room.name,
        agent_identity="agent",
        events=log,
        lk=cast(Any, None),
        prompts=PROMPTS,
    )
    return Call(room, Job(room), session, record_session(session, monkeypatch), state, events)
