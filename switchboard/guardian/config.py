"""The guardian's settings: read at start by the one settings reader
(``switchboard/config/settings.py``: the LiveKit server's, the agent name, the events file,
and the ``SWITCHBOARD_GUARDIAN_*`` part), so one ``.env.local`` serves the agent and the
guardian. ``load_guardian_config`` takes a mapping, so tests never touch ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from switchboard.config.env import SOURCE
from switchboard.config.errors import ConfigError, Problem
from switchboard.config.settings import SUBJECT, load_settings
from switchboard.data.leases import REFRESH_S
from switchboard.guardian.decisions import Policy

# Shorter than two refreshes, one late refresh would make a live agent "dead".
MIN_SILENCE_S = 2 * REFRESH_S


@dataclass(frozen=True, slots=True)
class GuardianConfig:
    livekit_url: str  # http(s):// form, as the server API wants
    api_key: str
    api_secret: str
    policy: Policy  # what the guardian decides with (agent name, grace, budget, ...)
    period_s: float
    bind: str
    port: int
    events_file: Path | None
    database_url: str  # where the workers' call leases are (the call records' database)


# Until 29 Nov 2026: the wait for a dispatched agent, counted from the dispatch.
RENAMED_JOIN_TIMEOUT = "SWITCHBOARD_GUARDIAN_JOIN_TIMEOUT"


def load_guardian_config(env: Mapping[str, str]) -> GuardianConfig:
    """Read and check every variable; raise one ConfigError listing every problem."""
    settings = load_settings(env)
    s, g = settings.server, settings.guardian
    problems = []
    if g.backoff_max_s < g.backoff_s:
        problems.append(
            Problem(
                SOURCE,
                "",
                "SWITCHBOARD_GUARDIAN_BACKOFF_MAX",
                "SWITCHBOARD_GUARDIAN_BACKOFF_MAX is shorter than SWITCHBOARD_GUARDIAN_BACKOFF",
                "set it to at least SWITCHBOARD_GUARDIAN_BACKOFF",
            )
        )
    if 0 < g.agent_silence_s < MIN_SILENCE_S:
        problems.append(
            Problem(
                SOURCE,
                "",
                "SWITCHBOARD_GUARDIAN_AGENT_SILENCE",
                f"SWITCHBOARD_GUARDIAN_AGENT_SILENCE={g.agent_silence_s:g} is shorter than two "
                f"lease refreshes ({MIN_SILENCE_S:g} s): a busy but live agent would be replaced",
                f"set it to 0 (off) or at least {MIN_SILENCE_S:g}",
            )
        )
    if RENAMED_JOIN_TIMEOUT in env:
        # Renamed when it changed meaning: a value tuned for the old one would mislead.
        problems.append(
            Problem(
                SOURCE,
                "",
                RENAMED_JOIN_TIMEOUT,
                f"{RENAMED_JOIN_TIMEOUT} is no longer read: it is now "
                "SWITCHBOARD_GUARDIAN_START_ALLOWANCE, counted from a worker accepting the job",
                "rename it (default 20 s; see docs/GUARDIAN.md)",
            )
        )
    if problems:
        raise ConfigError(problems, SUBJECT)
    return GuardianConfig(
        livekit_url=s.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1),
        api_key=s.api_key,
        api_secret=s.api_secret,
        policy=Policy(
            agent_name=s.agent_name,
            grace_s=g.grace_s,
            budget_s=g.budget_s,
            backoff_s=g.backoff_s,
            backoff_max_s=g.backoff_max_s,
            assign_wait_s=g.assign_wait_s,
            start_allowance_s=g.start_allowance_s,
            overflow_to=g.overflow_to or None,
            overflow_wait_s=g.overflow_wait_s,
            room_prefix=g.room_prefix,
            agent_silence_s=g.agent_silence_s,
        ),
        period_s=g.period_s,
        bind=g.bind,
        port=g.port,
        events_file=settings.data.events_file,
        database_url=settings.data.url,
    )
