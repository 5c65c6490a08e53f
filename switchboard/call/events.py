"""Call events: one structured log line each, and optionally one JSON line in a file.

The file is how an operator (and our lab tests) see what the agent observed, without
scraping logs; the events themselves, and the fields of their lines, are in
``event_types``. Each line is written with a single ``write`` on an ``O_APPEND`` file, so
job processes of one worker can share the file without interleaving lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchboard.call.event_types import CallEvent, wire_fields
from switchboard.events_file import append_event

Listener = Callable[[CallEvent], None]

logger = logging.getLogger("switchboard.events")


class EventLog:
    def __init__(self, path: Path | None, **context: Any) -> None:
        self._path = path
        self._context = context
        self.listeners: list[Listener] = []

    def emit(self, event: CallEvent) -> None:
        record = {"ts": time.time(), "event": event.name, **self._context, **wire_fields(event)}
        logger.info(event.name, extra={"switchboard": record})
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("an event listener failed", extra={"event": event.name})
        if self._path is None:
            return
        append_event(self._path, record)
