"""Every call event as a typed value: what ``EventLog.emit`` takes and its listeners get.

Each event's ``name`` and fields are its line in the events file (``wire_fields``), which
our lab tests, the bench and operators read by name and field: renaming one is a change
of that format, not a refactor. Fields marked ``omit_if_none`` are left out of the line
when None, as they always were (a tool call without arguments has no "arguments" key).

No full phone number leaves in a line: a participant's identity can hold one (the SIP
service names callers ``sip_+447700900123``), so fields marked ``masked`` have the numbers
in them masked on the way out (the event itself keeps the identity: listeners compare
it), and what came from outside as free text (transcripts, tool arguments) is masked
when the event is made, so the call record gets it masked too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from switchboard.data.directory.store import FailureKind, LookupStatus
from switchboard.numbers import mask_numbers_in

_OMIT_IF_NONE = "omit_if_none"  # a field's metadata key: no key in the line when None
_MASKED = "masked"  # a field's metadata key: numbers in it masked in the line
_IDENTITY = field(metadata={_MASKED: True})

# --- the job and the caller -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStarted:
    name: ClassVar[str] = "job_started"
    agent_name: str
    ai_mode: str
    preloaded: bool  # the code came from the forkserver, not imported again for this call
    pid: int  # the job's process: what an operator (or a test) stops to lose one call


@dataclass(frozen=True, slots=True, kw_only=True)
class NoCaller:
    name: ClassVar[str] = "no_caller"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdentified:
    name: ClassVar[str] = "caller"
    caller: Mapping[str, object]  # Caller.log_fields(): the number masked


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryLookup:
    name: ClassVar[str] = "directory"
    status: LookupStatus
    failure: FailureKind | None
    elapsed_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteChosen:
    name: ClassVar[str] = "route"
    route: str
    reason: str
    stt_model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvidersChosen:
    name: ClassVar[str] = "providers"
    stt: str
    llm: str
    tts: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResumed:
    """This job took over a call whose agent was lost (``call.resume``). Not "resumed":
    the guardian's own decision to dispatch us has that name in the same file."""

    name: ClassVar[str] = "call_resumed"
    reason: str  # the guardian's: agent_left, ...
    attempt: int
    previous_job: str | None
    record: str  # found | none (no record yet) | unavailable (not read in time)
    route: str
    turns: int  # transcript turns carried over as the model's context
    dial_attempts: int  # dials already placed, counted against the per-call limit
    pin_verified: bool
    legs: int  # legs those dials added that are still on the call, followed again


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeDeclined:
    """A resume was asked for a call that needs no agent any more (transferred, ended)."""

    name: ClassVar[str] = "resume_declined"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstWordsReady:
    """The first words' audio was made before the session started (``call.first_words``)."""

    name: ClassVar[str] = "first_words_ready"
    source: str  # "fixed" (the route's greeting, an opening, a notice) or "model"
    ready_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted:
    name: ClassVar[str] = "session_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClosed:
    name: ClassVar[str] = "session_closed"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEnded:
    name: ClassVar[str] = "job_ended"
    reason: str


# --- what happens in the room -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStatus:
    """A participant's ``sip.callStatus`` changed."""

    name: ClassVar[str] = "call_status"
    identity: str = _IDENTITY
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantLeft:
    name: ClassVar[str] = "participant_left"
    identity: str = _IDENTITY
    reason: str | None  # the server's DisconnectReason name, when it gave one
    action: str  # lifecycle.Action's value


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerLeft:
    name: ClassVar[str] = "caller_left"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomDisconnected:
    name: ClassVar[str] = "room_disconnected"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    name: ClassVar[str] = "transcript"
    role: str  # "user" or "assistant" (the framework's names)
    text: str  # key presses masked, and numbers (a caller dictating one)
    # When it began to be said (Unix time), when known.
    said_at: float | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    # The turn's figures in ms (``call.latency``); only an interrupted reply says so.
    latency: Mapping[str, float] | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    interrupted: bool | None = field(default=None, metadata={_OMIT_IF_NONE: True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", mask_numbers_in(self.text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Keypress:
    name: ClassVar[str] = "keypress"
    identity: str = _IDENTITY
    digits: str  # masked
    ignored: bool  # pressed while on hold


# --- what the agent does ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSaid:
    name: ClassVar[str] = "agent_said"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentHangup:
    name: ClassVar[str] = "agent_hangup"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderFailed:
    name: ClassVar[str] = "provider_failed"
    source: str  # the error's type: llm_error, stt_error


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownGoodbye:
    name: ClassVar[str] = "shutdown_goodbye"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownIgnored:
    """A goodbye message the call did not obey: someone other than our worker sent it."""

    name: ClassVar[str] = "shutdown_ignored"
    reason: str  # participant (a visible sender) | unsigned (no or a wrong signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class PinAttempt:
    name: ClassVar[str] = "pin_attempt"
    attempt: int
    result: str  # accepted | wrong | nothing: never the digits, nor how many


@dataclass(frozen=True, slots=True, kw_only=True)
class PinAccepted:
    name: ClassVar[str] = "pin_accepted"
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PinRefused:
    name: ClassVar[str] = "pin_refused"
    reason: str  # attempts | not_configured | locked_out
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PinLockout:
    """This call's wrong PIN locked its caller number out (``call.pin_lockout``)."""

    name: ClassVar[str] = "pin_lockout"
    until: float  # Unix time
    seconds: float  # how long it lasts
    lockouts: int  # counting this one: the back-off's step


@dataclass(frozen=True, slots=True, kw_only=True)
class PinLockedOut:
    """The caller number was locked out when the call came: no PIN was asked."""

    name: ClassVar[str] = "pin_locked_out"
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PinLockoutEnded:
    """The caller number's last lockout is over: this is its first try since."""

    name: ClassVar[str] = "pin_lockout_ended"
    ended_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled:
    name: ClassVar[str] = "tool_call"
    tool: str
    # The model's words, from the caller's: a dictated number is masked.
    arguments: Mapping[str, str] | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    result: str

    def __post_init__(self) -> None:
        if self.arguments is not None:
            masked = {k: mask_numbers_in(v) for k, v in self.arguments.items()}
            object.__setattr__(self, "arguments", masked)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFailed:
    name: ClassVar[str] = "tool_error"
    tool: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DialDecision:
    """The dial policy's decision, with its log's fields (numbers masked)."""

    name: ClassVar[str] = "dial_decision"
    allowed: bool
    reason: str | None
    policy: str
    call_id: str
    caller: str | None
    destination: str | None
    number: str | None
    region: str | None
    unsafe_override: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})


CallEvent = (
    JobStarted
    | NoCaller
    | CallerIdentified
    | DirectoryLookup
    | RouteChosen
    | ProvidersChosen
    | CallResumed
    | ResumeDeclined
    | FirstWordsReady
    | SessionStarted
    | SessionClosed
    | JobEnded
    | CallStatus
    | ParticipantLeft
    | CallerLeft
    | RoomDisconnected
    | Transcript
    | Keypress
    | AgentSaid
    | AgentHangup
    | ProviderFailed
    | ShutdownGoodbye
    | ShutdownIgnored
    | PinAttempt
    | PinAccepted
    | PinRefused
    | PinLockout
    | PinLockedOut
    | PinLockoutEnded
    | ToolCalled
    | ToolFailed
    | DialDecision
)


def wire_fields(event: CallEvent) -> dict[str, Any]:
    """The event's fields as its events-file line carries them, in declaration order."""
    return {
        f.name: mask_numbers_in(value) if f.metadata.get(_MASKED) else value
        for f in dataclasses.fields(event)
        if (value := getattr(event, f.name)) is not None or not f.metadata.get(_OMIT_IF_NONE)
    }
