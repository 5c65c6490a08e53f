"""The guardian's settings, read from the environment once at start.

Kept apart from ``switchboard/config/settings.py`` for now (that module is being
reworked); both read the same LIVEKIT_* and SWITCHBOARD_AGENT_NAME variables, so one
``.env.local`` serves the agent and the guardian. ``load_guardian_config`` is pure: it
takes a mapping, so tests never touch ``os.environ``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

_AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Where a caller may be sent when no agent can be found: a SIP or tel URI, as REFER needs.
_TRANSFER_TARGET = re.compile(r"(sips?:[^\s<>\"]+@[^\s<>\"]+|tel:\+?[0-9*#-]{3,32})")

# (name, default, help): the single list the error messages and `--help` are made from.
ENV_VARS: tuple[tuple[str, str, str], ...] = (
    ("LIVEKIT_URL", "", "LiveKit server URL (ws://, wss://, http:// or https://)"),
    ("LIVEKIT_API_KEY", "", "API key; also the key the server signs its webhooks with"),
    ("LIVEKIT_API_SECRET", "", "API secret"),
    ("SWITCHBOARD_AGENT_NAME", "switchboard", "the agent name the guardian dispatches"),
    ("SWITCHBOARD_GUARDIAN_GRACE", "2", "seconds a caller may wait for an agent before we act"),
    ("SWITCHBOARD_GUARDIAN_BUDGET", "30", "seconds of re-dispatch attempts before overflow"),
    ("SWITCHBOARD_GUARDIAN_BACKOFF", "1", "seconds before the second attempt; then doubled"),
    ("SWITCHBOARD_GUARDIAN_BACKOFF_MAX", "8", "longest wait between two attempts, seconds"),
    ("SWITCHBOARD_GUARDIAN_JOIN_TIMEOUT", "10", "seconds an accepted job has to join the room"),
    ("SWITCHBOARD_GUARDIAN_OVERFLOW", "", "sip:/tel: URI callers go to when out of budget"),
    ("SWITCHBOARD_GUARDIAN_OVERFLOW_WAIT", "15", "seconds a transfer gets before the room ends"),
    ("SWITCHBOARD_GUARDIAN_PERIOD", "2", "seconds between two reconciliations with the server"),
    ("SWITCHBOARD_GUARDIAN_ROOM_PREFIX", "", "also guard rooms named so (none: dispatched ones)"),
    ("SWITCHBOARD_GUARDIAN_BIND", "127.0.0.1", "address the webhook receiver listens on"),
    ("SWITCHBOARD_GUARDIAN_PORT", "8090", "port of the webhook receiver (POST /webhook)"),
    ("SWITCHBOARD_EVENTS_FILE", "", "append one JSON line per decision to this file"),
)


class GuardianConfigError(ValueError):
    """Every problem found in the environment, one per line, each saying what to set."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("guardian configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class GuardianConfig:
    livekit_url: str  # http(s):// form, as the server API wants
    api_key: str
    api_secret: str
    agent_name: str
    grace_s: float
    budget_s: float
    backoff_s: float
    backoff_max_s: float
    join_timeout_s: float
    overflow_to: str | None
    overflow_wait_s: float
    period_s: float
    room_prefix: str | None
    bind: str
    port: int
    events_file: Path | None


def load_guardian_config(env: Mapping[str, str]) -> GuardianConfig:
    """Read and check every variable; raise one GuardianConfigError listing every problem."""
    values = {name: (env.get(name) or default).strip() for name, default, _ in ENV_VARS}
    problems: list[str] = []
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        if not values[name]:
            problems.append(f"{name} is not set: {_help(name)}")
    url = values["LIVEKIT_URL"]
    scheme = urlparse(url).scheme
    if url and scheme not in ("ws", "wss", "http", "https"):
        problems.append(f"LIVEKIT_URL={url!r} must start with wss://, ws://, https:// or http://")
    agent_name = values["SWITCHBOARD_AGENT_NAME"]
    if not _AGENT_NAME.fullmatch(agent_name):
        problems.append(
            f"SWITCHBOARD_AGENT_NAME={agent_name!r} must be 1-64 letters, digits, '.', '_' or "
            "'-', the agent name of your dispatch rule"
        )

    def seconds(name: str, low: float, high: float) -> float:
        raw = values[name]
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also false for nan
            problems.append(f"{name}={raw!r} must be a number of seconds in [{low:g}, {high:g}]")
            return low
        return value

    grace = seconds("SWITCHBOARD_GUARDIAN_GRACE", 0, 300)
    budget = seconds("SWITCHBOARD_GUARDIAN_BUDGET", 1, 3600)
    backoff = seconds("SWITCHBOARD_GUARDIAN_BACKOFF", 0.2, 60)
    backoff_max = seconds("SWITCHBOARD_GUARDIAN_BACKOFF_MAX", 0.2, 600)
    if backoff_max < backoff:
        problems.append("SWITCHBOARD_GUARDIAN_BACKOFF_MAX must be >= SWITCHBOARD_GUARDIAN_BACKOFF")
    join_timeout = seconds("SWITCHBOARD_GUARDIAN_JOIN_TIMEOUT", 1, 120)
    overflow_wait = seconds("SWITCHBOARD_GUARDIAN_OVERFLOW_WAIT", 1, 300)
    period = seconds("SWITCHBOARD_GUARDIAN_PERIOD", 0.2, 300)
    overflow = values["SWITCHBOARD_GUARDIAN_OVERFLOW"] or None
    if overflow is not None and not _TRANSFER_TARGET.fullmatch(overflow):
        problems.append(
            f"SWITCHBOARD_GUARDIAN_OVERFLOW={overflow!r} must be a SIP or tel URI, e.g. "
            "sip:+15105550199@pbx.example.com or tel:+15105550199"
        )
    port_raw = values["SWITCHBOARD_GUARDIAN_PORT"]
    port = int(port_raw) if port_raw.isdigit() else -1
    if not 0 <= port <= 65535:
        problems.append(f"SWITCHBOARD_GUARDIAN_PORT={port_raw!r} must be a port, 0-65535")
    if problems:
        raise GuardianConfigError(problems)
    http_url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return GuardianConfig(
        livekit_url=http_url,
        api_key=values["LIVEKIT_API_KEY"],
        api_secret=values["LIVEKIT_API_SECRET"],
        agent_name=agent_name,
        grace_s=grace,
        budget_s=budget,
        backoff_s=backoff,
        backoff_max_s=backoff_max,
        join_timeout_s=join_timeout,
        overflow_to=overflow,
        overflow_wait_s=overflow_wait,
        period_s=period,
        room_prefix=values["SWITCHBOARD_GUARDIAN_ROOM_PREFIX"] or None,
        bind=values["SWITCHBOARD_GUARDIAN_BIND"],
        port=port,
        events_file=Path(values["SWITCHBOARD_EVENTS_FILE"])
        if values["SWITCHBOARD_EVENTS_FILE"]
        else None,
    )


def _help(name: str) -> str:
    return next(text for key, _, text in ENV_VARS if key == name)
