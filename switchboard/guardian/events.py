"""The guardian's events: one log line each, and one JSON line in the events file.

The lines go to the same file as the agent's call events (``SWITCHBOARD_EVENTS_FILE``),
marked ``"component": "guardian"``, each with the room's SID and the caller's number
masked. Each line is written with a single ``write`` on an ``O_APPEND`` file, as the
agent's are, so both can share the file.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from switchboard.events_file import append_event

logger = logging.getLogger("switchboard.guardian")


@dataclass(frozen=True, slots=True, kw_only=True)
class Redispatched:
    """A dispatch for a caller who never had an agent."""

    name: ClassVar[str] = "redispatched"
    room_id: str
    caller_number: str | None  # masked
    dispatch_id: str
    reason: str
    attempt: int
    waited_s: float
    superseded: list[str] = field(default_factory=list)  # refused dispatches deleted first
    removed: list[str] = field(default_factory=list)  # agents judged dead, removed first


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed(Redispatched):
    """A dispatch for a caller whose agent left without ending the call."""

    name: ClassVar[str] = "resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflowed:
    """Out of budget: the caller was transferred (``action`` "transfer") or the room ended."""

    name: ClassVar[str] = "overflowed"
    room_id: str
    caller_number: str | None
    action: str  # "transfer" | "end_room"
    waited_s: float
    reason: str | None = None
    to: str | None = None  # the destination, its user part masked
    outcome: str | None = None  # of the transfer: "accepted" or "failed: <code>"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentsRemoved:
    name: ClassVar[str] = "agents_removed"
    room_id: str
    caller_number: str | None
    identities: list[str]


GuardianEvent = Redispatched | Overflowed | AgentsRemoved


class GuardianEvents:
    def __init__(self, path: Path | None) -> None:
        self._path = path

    def emit(self, event: GuardianEvent) -> None:
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        shown = {k: v for k, v in fields.items() if v is not None and k != "room_id"}
        logger.info(
            "%s: room %s, %s",
            event.name,
            event.room_id,
            ", ".join(f"{k}={v}" for k, v in shown.items()),
        )
        if self._path is None:
            return
        record = {"ts": time.time(), "event": event.name, "component": "guardian", **fields}
        append_event(self._path, record)
