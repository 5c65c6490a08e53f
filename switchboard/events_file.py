"""The events file: one JSON line per event, shared by the worker's calls and the guardian.

Each line is written with a single ``write`` on an ``O_APPEND`` file, so processes can
share the file without interleaving lines. Losing a line must never break a call or
stop the guardian: a failure is logged and the caller goes on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from switchboard.private_files import private_folder

logger = logging.getLogger("switchboard.events")


def append_event(path: Path, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line (values JSON cannot hold as their ``str``)."""
    line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
    try:
        private_folder(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        logger.exception("could not append to the events file", extra={"path": str(path)})
