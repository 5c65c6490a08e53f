"""Call events: one structured log line each, and optionally one JSON line in a file.

The file is how an operator (and our lab tests) see what the agent observed, without
scraping logs; the events themselves, and the fields of their lines, are in
``event_types``. Each line is written with a single ``write`` on an ``O_APPEND`` file, so
job processes of one worker can share the file without interleaving lines.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchboard.call.event_types import CallEvent, wire_fields

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
        line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            # Losing an event line must never break a call; say so once per failure.
            logger.exception("could not append to the events file", extra={"path": str(self._path)})
