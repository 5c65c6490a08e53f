"""Configuration from the environment, validated once at start.

Every variable is listed in ``ENV_VARS`` (the single source for ``.env.example`` and the
README's configuration reference). ``load_settings`` is pure: it takes a mapping, so tests
never touch ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

AiMode = Literal["keyless", "inference"]


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    default: str
    help: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("LIVEKIT_URL", "", "LiveKit server URL, e.g. wss://my-project.livekit.cloud"),
    EnvVar("LIVEKIT_API_KEY", "", "LiveKit API key (Cloud project settings, or your server)"),
    EnvVar("LIVEKIT_API_SECRET", "", "LiveKit API secret"),
    EnvVar("SWITCHBOARD_AGENT_NAME", "switchboard", "Name the dispatch rule dispatches"),
    EnvVar(
        "SWITCHBOARD_AI_MODE",
        "auto",
        "auto | inference | keyless. auto uses LiveKit Inference on LiveKit Cloud URLs, "
        "keyless (offline voice, no AI) otherwise",
    ),
    EnvVar("DEEPGRAM_API_KEY", "", "Deepgram key: speech-to-text straight from Deepgram"),
    EnvVar("SWITCHBOARD_LLM_MODEL", "openai/gpt-4.1-mini", "LLM through LiveKit Inference"),
    EnvVar("SWITCHBOARD_TTS_MODEL", "cartesia/sonic-2", "TTS through LiveKit Inference"),
    EnvVar("SWITCHBOARD_PARTICIPANT_TIMEOUT", "20", "Seconds to wait for the caller to join"),
    EnvVar("SWITCHBOARD_EVENTS_FILE", "", "Append one JSON line per call event to this file"),
    EnvVar("SWITCHBOARD_WORKER_PORT", "8081", "Worker health/HTTP port (0 picks a free one)"),
    EnvVar(
        "SWITCHBOARD_MAX_CALLS",
        "0",
        "Calls one worker takes at once; 0 = judge by CPU load instead (the framework's way, "
        "which refuses calls whenever CPU passes SWITCHBOARD_LOAD_THRESHOLD)",
    ),
    EnvVar("SWITCHBOARD_LOAD_THRESHOLD", "0.7", "Load (0-1) above which the worker takes no call"),
    EnvVar("SWITCHBOARD_CONSOLE_CALLER", "+15105550123", "console: the simulated caller's number"),
    EnvVar("SWITCHBOARD_CONSOLE_CALLED", "+15105550100", "console: the number it dialled"),
)

_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A configuration problem, worded for the person who has to fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: str
    agent_name: str
    ai_mode: AiMode
    deepgram_api_key: str | None
    llm_model: str
    tts_model: str
    participant_timeout: float
    events_file: Path | None
    worker_port: int
    max_calls: int
    load_threshold: float
    console_caller: str
    console_called: str

    @property
    def keyless(self) -> bool:
        return self.ai_mode == "keyless"


def load_settings(env: Mapping[str, str], *, need_server: bool = True) -> Settings:
    """Read and check every variable; raise one ConfigError listing every problem.

    ``need_server`` is False for console mode, which runs without a LiveKit server.
    """
    values = {v.name: (env.get(v.name) or v.default).strip() for v in ENV_VARS}
    problems: list[str] = []

    url = values["LIVEKIT_URL"]
    if need_server:
        for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            if not values[name]:
                problems.append(f"{name} is not set: {_help(name)}; put it in .env.local")
    if url and urlparse(url).scheme not in ("ws", "wss", "http", "https"):
        problems.append(f"LIVEKIT_URL={url!r} must start with wss:// (or ws:// for a local server)")

    agent_name = values["SWITCHBOARD_AGENT_NAME"]
    if not _AGENT_NAME.match(agent_name):
        problems.append(
            f"SWITCHBOARD_AGENT_NAME={agent_name!r} must be 1-64 letters, digits, '.', '_' "
            "or '-' (it must equal the agent name in your dispatch rule)"
        )

    mode = values["SWITCHBOARD_AI_MODE"]
    ai_mode: AiMode = "keyless"
    if mode == "auto":
        ai_mode = "inference" if _is_livekit_cloud(url) else "keyless"
    elif mode in ("inference", "keyless"):
        ai_mode = mode  # type: ignore[assignment]
    else:
        problems.append(f"SWITCHBOARD_AI_MODE={mode!r} must be one of auto, inference, keyless")

    timeout = _number(values, "SWITCHBOARD_PARTICIPANT_TIMEOUT", problems, low=1, high=600)
    port = _number(values, "SWITCHBOARD_WORKER_PORT", problems, low=0, high=65535)
    max_calls = _number(values, "SWITCHBOARD_MAX_CALLS", problems, low=0, high=10_000)
    threshold = _number(values, "SWITCHBOARD_LOAD_THRESHOLD", problems, low=0.05, high=0.99)

    if problems:
        raise ConfigError("configuration error:\n  - " + "\n  - ".join(problems))
    events = values["SWITCHBOARD_EVENTS_FILE"]
    return Settings(
        livekit_url=url,
        livekit_api_key=values["LIVEKIT_API_KEY"],
        livekit_api_secret=values["LIVEKIT_API_SECRET"],
        agent_name=agent_name,
        ai_mode=ai_mode,
        deepgram_api_key=values["DEEPGRAM_API_KEY"] or None,
        llm_model=values["SWITCHBOARD_LLM_MODEL"],
        tts_model=values["SWITCHBOARD_TTS_MODEL"],
        participant_timeout=timeout,
        events_file=Path(events) if events else None,
        worker_port=int(port),
        max_calls=int(max_calls),
        load_threshold=threshold,
        console_caller=values["SWITCHBOARD_CONSOLE_CALLER"],
        console_called=values["SWITCHBOARD_CONSOLE_CALLED"],
    )


def _is_livekit_cloud(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host.endswith(".livekit.cloud")


def _help(name: str) -> str:
    return next(v.help for v in ENV_VARS if v.name == name)


def _number(
    values: Mapping[str, str], name: str, problems: list[str], *, low: float, high: float
) -> float:
    raw = values[name]
    try:
        number = float(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a number ({_help(name)})")
        return low
    if not low <= number <= high:
        problems.append(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return number
