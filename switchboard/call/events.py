"""Call events: one structured log line each, and optionally one JSON line in a file.

The file is how an operator (and our lab tests) see what the agent observed, without
scraping logs. Each line is written with a single ``write`` on an ``O_APPEND`` file, so
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

Listener = Callable[[str, dict[str, Any]], None]

logger = logging.getLogger("switchboard.events")


class EventLog:
    def __init__(self, path: Path | None, **context: Any) -> None:
        self._path = path
        self._context = context
        self.listeners: list[Listener] = []

    def emit(self, event: str, **fields: Any) -> None:
        record = {"ts": time.time(), "event": event, **self._context, **fields}
        logger.info(event, extra={"switchboard": record})
        for listener in self.listeners:
            try:
                listener(event, fields)
            except Exception:
                logger.exception("an event listener failed", extra={"event": event})
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
