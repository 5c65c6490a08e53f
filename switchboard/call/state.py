"""What the agent's tools know about the call they act on (the session's userdata)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from switchboard.call.events import EventLog
from switchboard.caller import Caller
from switchboard.config.prompts import Prompts
from switchboard.routing import Route

if TYPE_CHECKING:
    from livekit import api


@dataclass
class CallState:
    """Mutable per-call state, owned by one job; tools read and update it."""

    caller: Caller
    route: Route
    room_name: str
    agent_identity: str
    events: EventLog
    lk: api.LiveKitAPI | None  # None in console mode: there is no server to ask
    prompts: Prompts  # read at start: a call never reads the disk for its words
    outbound_trunk_id: str | None = None
    ring_timeout: float = 25.0
    dialled: list[str] = field(default_factory=list)  # legs we added that answered
    dial_attempts: int = 0
    transferred_to: str | None = None
    # people the caller was handed to in their own room: either one leaving ends the call
    connected: list[str] = field(default_factory=list)
    on_hold: bool = False  # a warm transfer holds the caller while it briefs the person
    ended: bool = False
    pin_verified: bool = False  # the route's PIN gate let the caller through
    # Another agent took the call over (``call.liveness``): leave the room and the record
    # to it.
    replaced: bool = False
    dtmf_sent: int = 0  # keys pressed on dialled legs, bounded per call (switchboard.dtmf)
    # the last sip.callStatus of every participant (a ringing leg is reachable)
    call_statuses: dict[str, str] = field(default_factory=dict)

    def server(self) -> api.LiveKitAPI:
        """The LiveKit server's API, for the telephony tools; console mode has none."""
        if self.lk is None:
            raise NoServerError("console mode has no LiveKit server: telephony is not available")
        return self.lk


class NoServerError(RuntimeError):
    """A telephony action in console mode, where no LiveKit server exists."""
