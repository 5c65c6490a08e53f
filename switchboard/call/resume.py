"""A call handed to us again after its agent was lost (issue 14, "No caller stranded").

``switchboard guardian`` dispatches our agent again into a room whose caller lost theirs
(a killed worker, a crashed job), with JSON dispatch metadata saying so. Everything here
is a pure decision on values:

- ``parse_resume``: the metadata, read strictly. Any participant with the right grants
  can create a dispatch, so it is untrusted: unknown keys are ignored, anything odd makes
  a normal call (with the reason, for the log), and ``for_caller`` never lets it name a
  call other than the room's own caller's.
- ``restore_from``: what the call's record gives the new job: the route, the transcript,
  the dials already placed (they count against the per-call limit) and whether the PIN
  was verified (only when the record says so: on doubt the gate runs again); or that the
  call is over (transferred, ended) and must not be resumed. ``legs_still_here``: the
  legs those dials added that are still on the call, followed again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from livekit.agents import llm

from switchboard.call.record import DIAL_ALLOWED, PIN_VERIFIED
from switchboard.caller import Caller
from switchboard.config.prompts import Prompts, localized
from switchboard.data.records.model import CallRecord, Turn
from switchboard.routing import Route, RouteTable

logger = logging.getLogger("switchboard.call")

GUARDIAN = "switchboard-guardian"
MAX_METADATA = 4096  # the guardian's is ~200 bytes; more is not ours
MAX_ATTEMPT = 100
MAX_TURNS = 60  # the latest turns kept as the model's context: a bounded prompt
# The caller has heard nothing since the agent was lost: the record (what was said, what
# was done) is worth a moment more than the directory's lookup, not longer.
RECORD_BUDGET_S = 1.0
# The recorder waits longer before it writes: writing without having read it would
# replace the record of the call's start.
RECORD_WAIT_S = 10.0

RecordRead = Literal["found", "none", "unavailable"]

# The room metadata key the guardian reads (``switchboard.guardian.room.AGENT_DONE_KEY``).
AGENT_DONE_KEY = "switchboard_agent_done"

_REASON = re.compile(r"[a-z][a-z_]{0,31}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_LEG = re.compile(r"dialled-([1-9][0-9]{0,3})")  # tools/dial_out.py's identities
_ROLES: dict[str, Literal["user", "assistant"]] = {"user": "user", "assistant": "assistant"}
_TRANSFERRED = frozenset({"transferred", "warm_transferred"})  # before any ": mechanism"


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """The guardian asks this job to take over call ``call_id`` (its SIP call ID)."""

    reason: str  # why the caller was left alone: agent_left, ...
    attempt: int
    since: float  # when the guardian saw the caller alone (wall clock)
    call_id: str
    previous_job: str | None


@dataclass(frozen=True, slots=True)
class NormalCall:
    """Not a resume; ``why`` says so for the log ("" when nothing asked for one)."""

    why: str = ""


def parse_resume(metadata: str | None) -> ResumeRequest | NormalCall:
    """The dispatch metadata as a resume request, or a normal call and why."""
    if not metadata:
        return NormalCall()
    if len(metadata) > MAX_METADATA:
        return NormalCall(f"metadata longer than {MAX_METADATA} characters")
    try:
        data = json.loads(metadata)
    except ValueError:
        return NormalCall("metadata is not JSON")
    if not isinstance(data, dict) or data.get("by") != GUARDIAN:
        return NormalCall("metadata is not the guardian's")
    if data.get("resume") is False:
        return NormalCall()  # the guardian's dispatch of a caller who never had an agent
    if data.get("resume") is not True:
        return NormalCall("resume is neither true nor false")
    reason, attempt, since = data.get("reason"), data.get("attempt"), data.get("since")
    call_id, previous = data.get("call_id"), data.get("previous_job")
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        return NormalCall("resume without a valid reason")
    # bool is an int to Python: "attempt": true is not a count
    if type(attempt) is not int or not 1 <= attempt <= MAX_ATTEMPT:
        return NormalCall("resume without a valid attempt number")
    if isinstance(since, bool) or not isinstance(since, int | float):
        return NormalCall("resume without a valid time")
    if not math.isfinite(since) or since <= 0:
        return NormalCall("resume without a valid time")
    if not isinstance(call_id, str) or not _ID.fullmatch(call_id):
        return NormalCall("resume without a valid call ID")
    if previous is not None and (not isinstance(previous, str) or not _ID.fullmatch(previous)):
        return NormalCall("resume with an invalid previous job")
    return ResumeRequest(reason, attempt, float(since), call_id, previous)


def for_caller(request: ResumeRequest | NormalCall, caller: Caller) -> ResumeRequest | NormalCall:
    """The request only if it names this room's caller's call: the metadata must never
    make a job read, or write, another call's record."""
    if isinstance(request, NormalCall):
        return request
    if not caller.is_phone_call or not caller.call_id:
        return NormalCall("resume of a caller without a SIP call ID")
    if request.call_id != caller.call_id:
        return NormalCall("resume names another call than the room's caller's")
    return request


@dataclass(frozen=True, slots=True)
class Restored:
    """What a resumed call carries over from its record (empty: no record to read)."""

    route: str | None = None
    transcript: tuple[Turn, ...] = ()
    dial_attempts: int = 0
    pin_verified: bool = False


@dataclass(frozen=True, slots=True)
class CallOver:
    """The record says the call needs no agent any more: nothing to resume."""

    why: str


def restore_from(record: CallRecord | None) -> Restored | CallOver:
    """What to carry over from the call's record (None: resume without history)."""
    if record is None:
        return Restored()
    if record.summary.status == "complete":
        return CallOver(f"the call ended ({record.summary.disconnect_reason or 'no reason'})")
    if "hangup" in (s.status for s in record.statuses):
        return CallOver("the caller hung up")
    if any(
        c.name == "transfer_call" and str(c.result).partition(":")[0] in _TRANSFERRED
        for c in record.tool_calls
    ):
        return CallOver("the call was transferred")
    statuses = [s.status for s in record.statuses]
    # Each dial passed the gate, which the record notes before dialling; a record written
    # before that note existed still shows the dial-out tool's own calls. Never fewer.
    placed = sum(
        1
        for c in record.tool_calls
        if c.name == "add_participant" and not str(c.result).startswith("refused")
    )
    return Restored(
        route=record.summary.route,
        transcript=tuple(t for t in record.transcript if t.role in ("user", "assistant")),
        dial_attempts=max(statuses.count(DIAL_ALLOWED), placed),
        pin_verified=PIN_VERIFIED in statuses,
    )


def chat_context(transcript: Sequence[Turn], max_turns: int = MAX_TURNS) -> llm.ChatContext:
    """The conversation so far as the model's context, the latest ``max_turns`` turns."""
    ctx = llm.ChatContext.empty()
    for turn in transcript[-max_turns:] if max_turns else ():
        role: Literal["user", "assistant"] | None = _ROLES.get(turn.role)
        if role is not None and turn.text:
            ctx.add_message(role=role, content=turn.text, created_at=turn.time)
    return ctx


def resumed_line(prompts: Prompts, route: Route) -> str:
    """What the caller hears first: ``resumed.md``, or its variant in the route's language
    (``resumed_es.md`` for "es-MX") when there is one."""
    return localized(prompts, "resumed", route.language)


def resume_status(reason: str) -> str:
    """The record's timeline entry for the resume."""
    return f"resumed ({reason})"


def resume_request(metadata: str | None, caller: Caller) -> ResumeRequest | None:
    """The resume this job's dispatch asks for, if it is a valid one for this caller; what
    was wrong with it is logged (the job then takes a normal call)."""
    request = for_caller(parse_resume(metadata), caller)
    if isinstance(request, NormalCall):
        if request.why:
            logger.warning("dispatch metadata ignored (%s): a normal call", request.why)
        return None
    return request


async def read_record(
    read: asyncio.Future[CallRecord | None], budget_s: float
) -> tuple[CallRecord | None, RecordRead]:
    """The record, if read within ``budget_s``: a slow or broken database must not keep
    the caller in silence (the read goes on for the recorder, which waits longer)."""
    done, _ = await asyncio.wait({read}, timeout=budget_s)
    if not done:
        logger.warning("call record not read within %.1f s: resuming without history", budget_s)
        return None, "unavailable"
    if (error := read.exception()) is not None:
        logger.warning(
            "call record unreadable (%s): resuming without history", type(error).__name__
        )
        return None, "unavailable"
    record = read.result()
    return record, "none" if record is None else "found"


def pick_route(decided: Route, table: RouteTable, recorded: str | None) -> Route:
    """The route the call had: routed again the same way, but the record's when it names
    another route of the table (the directory may have changed since, or not answered)."""
    if recorded is None or recorded == decided.name:
        return decided
    kept = next((r for r in table.routes if r.name == recorded), None)
    if kept is None:
        logger.warning("resumed call: its route %r is gone; using %r", recorded, decided.name)
        return decided
    logger.warning(
        "resumed call: routed to %r now, %r before; keeping %r", decided.name, recorded, recorded
    )
    return kept


def legs_still_here(present: Mapping[str, bool], dial_attempts: int) -> list[str]:
    """The legs the lost job dialled that are still in the room, oldest first (the last
    is the one ``send_dtmf`` talks to): the dial-out tool names its n-th dial
    ``dialled-<n>``. ``present`` maps each participant's identity to whether it is a SIP
    participant: a name alone (any participant picks its own) does not make a leg."""
    legs = []
    for identity, is_sip in present.items():
        match = _LEG.fullmatch(identity)
        if is_sip and match and 1 <= int(match[1]) <= dial_attempts:
            legs.append((int(match[1]), identity))
    return [identity for _, identity in sorted(legs)]


def apologises(restored: Restored, read: RecordRead) -> bool:
    """Whether the caller hears the resumed line rather than the greeting: they heard the
    lost agent (the record has a conversation), or we cannot know (the record was not
    read in time). A record with nothing said: the caller never heard an agent (after a
    restart the guardian calls any room a job once took a resume), so they are greeted."""
    return bool(restored.transcript) or read == "unavailable"


def agent_done_metadata(room_metadata: str) -> str:
    """The room's metadata (a JSON object, kept) with ``AGENT_DONE_KEY`` set: the guardian
    sends no agent after one that leaves on purpose with the caller still in the room."""
    try:
        data = json.loads(room_metadata) if room_metadata else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}  # not ours to keep: the guardian reads only a JSON object
    return json.dumps({**data, AGENT_DONE_KEY: True}, separators=(",", ":"))
