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
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlparse

AiMode = Literal["keyless", "inference", "openai"]
TtsProvider = Literal["espeak", "inference", "openai"]


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
        "auto | inference | openai | keyless. auto: openai when SWITCHBOARD_OPENAI_BASE_URL is "
        "set, LiveKit Inference on LiveKit Cloud URLs, else keyless (offline voice, no AI)",
    ),
    EnvVar(
        "SWITCHBOARD_OPENAI_BASE_URL",
        "",
        "An OpenAI-compatible endpoint (vLLM, Ollama, a Whisper server...), e.g. "
        "http://127.0.0.1:8000/v1: LLM and speech-to-text go there",
    ),
    EnvVar("OPENAI_API_KEY", "", "Key for SWITCHBOARD_OPENAI_BASE_URL (if it needs one)"),
    EnvVar("DEEPGRAM_API_KEY", "", "Deepgram key: speech-to-text straight from Deepgram"),
    EnvVar(
        "SWITCHBOARD_LLM_MODEL",
        "openai/gpt-4.1-mini",
        "LLM model: a LiveKit Inference name, or the model your OpenAI-compatible server serves",
    ),
    EnvVar(
        "SWITCHBOARD_LLM_FALLBACK_MODEL",
        "",
        "A second LLM model on the same provider, used when the first fails mid-call",
    ),
    EnvVar("SWITCHBOARD_STT_MODEL", "whisper-1", "Speech-to-text model on the OpenAI endpoint"),
    EnvVar(
        "SWITCHBOARD_TTS",
        "auto",
        "auto | inference | openai | espeak: the voice (auto: the AI mode's own; espeak is "
        "offline, and always stands by as the fallback voice)",
    ),
    EnvVar("SWITCHBOARD_TTS_MODEL", "cartesia/sonic-2", "TTS model (LiveKit Inference name)"),
    EnvVar("SWITCHBOARD_TTS_VOICE", "alloy", "TTS voice on the OpenAI-compatible endpoint"),
    EnvVar("SWITCHBOARD_RING_TIMEOUT", "25", "Seconds a dialled party may ring before we give up"),
    EnvVar(
        "DATABASE_URL",
        "",
        "Caller directory and call records: postgresql://user:pass@host/db, or empty for "
        "the SQLite file in SWITCHBOARD_STATE_DIR",
    ),
    EnvVar("SWITCHBOARD_STATE_DIR", ".switchboard", "Where the default SQLite database lives"),
    EnvVar(
        "SWITCHBOARD_DIRECTORY_TIMEOUT_MS",
        "150",
        "Longest the caller lookup may delay the greeting; past it the caller is unknown",
    ),
    EnvVar(
        "SWITCHBOARD_DEFAULT_REGION",
        "US",
        "Country (ISO code) for numbers that arrive without a +country prefix",
    ),
    EnvVar("SWITCHBOARD_ROUTES", "routes.toml", "The route table"),
    EnvVar("SWITCHBOARD_POLICY", "policy.toml", "Dial-out policies and named destinations"),
    EnvVar(
        "SWITCHBOARD_OUTBOUND_TRUNK_ID",
        "",
        "Outbound SIP trunk for dial-out (ST_...; `switchboard provision --json` prints it)",
    ),
    EnvVar("SWITCHBOARD_PARTICIPANT_TIMEOUT", "20", "Seconds to wait for the caller to join"),
    EnvVar("SWITCHBOARD_EVENTS_FILE", "", "Append one JSON line per call event to this file"),
    EnvVar("SWITCHBOARD_WORKER_PORT", "8081", "Worker health/HTTP port (0 picks a free one)"),
    EnvVar(
        "SWITCHBOARD_MAX_CALLS",
        "0",
        "Calls one worker takes at once; 0 = judge by CPU load instead (the framework's way, "
        "which refuses calls whenever CPU passes SWITCHBOARD_LOAD_THRESHOLD)",
    ),
    EnvVar(
        "SWITCHBOARD_IDLE_PROCESSES",
        "0",
        "Job processes kept warm for the next calls (each call runs in its own); 0 = the "
        "framework's default (one per CPU). Calls beyond the warm ones wait seconds for a "
        "process to start: set it to the burst of simultaneous calls you expect",
    ),
    EnvVar(
        "SWITCHBOARD_JOB_EXECUTOR",
        "process",
        "How each call runs: process = its own process (isolated; each takes seconds of CPU "
        "to start, so bursts queue), thread = a thread of the worker (experimental: starts in "
        "milliseconds but shares one Python process and its GIL; measured only by bench.load)",
    ),
    EnvVar(
        "SWITCHBOARD_DRAIN_TIMEOUT",
        "1800",
        "On SIGTERM (a deploy), seconds calls in progress may run on before the worker stops",
    ),
    EnvVar(
        "SWITCHBOARD_SHUTDOWN_MODE",
        "finish",
        "On SIGTERM: finish = calls in progress go on, and any still running 15 s before "
        "SWITCHBOARD_DRAIN_TIMEOUT ends hear prompts/shutdown_goodbye.md and are ended; "
        "goodbye = every call in progress hears it at once and is ended",
    ),
    EnvVar("SWITCHBOARD_LOAD_THRESHOLD", "0.7", "Load (0-1) above which the worker takes no call"),
    EnvVar("SWITCHBOARD_CONSOLE_CALLER", "+15105550123", "console: the simulated caller's number"),
    EnvVar("SWITCHBOARD_CONSOLE_CALLED", "+15105550100", "console: the number it dialled"),
    EnvVar(
        "SWITCHBOARD_CONSOLE_ATTRIBUTES",
        "",
        "console: the simulated caller's custom attributes, e.g. lang=es,customer_id=42",
    ),
)


def env_example() -> str:
    """The text of ``.env.example``: every variable, its meaning and its default."""
    lines = [
        "# Copy to .env.local and fill in. Every variable the agent reads is here.",
        "# The real environment wins over .env.local. Never commit .env.local.",
        "# Generated by `switchboard env-example`; edit switchboard/config/settings.py instead.",
        "",
    ]
    for var in ENV_VARS:
        lines += [f"# {var.help}", f"{var.name}={var.default}", ""]
    return "\n".join(lines)


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
    openai_base_url: str | None
    openai_api_key: str | None
    deepgram_api_key: str | None
    llm_model: str
    llm_fallback_model: str | None
    stt_model: str
    tts: TtsProvider
    tts_model: str
    tts_voice: str
    ring_timeout: float
    database_url: str
    directory_timeout: float
    default_region: str
    routes_file: Path
    policy_file: Path
    outbound_trunk_id: str | None
    participant_timeout: float
    events_file: Path | None
    worker_port: int
    max_calls: int
    drain_timeout: int
    job_executor: Literal["process", "thread"]
    shutdown_mode: Literal["finish", "goodbye"]
    idle_processes: int
    load_threshold: float
    console_caller: str
    console_called: str
    console_attributes: Mapping[str, str]

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

    base_url = values["SWITCHBOARD_OPENAI_BASE_URL"]
    if base_url and urlparse(base_url).scheme not in ("http", "https"):
        problems.append(f"SWITCHBOARD_OPENAI_BASE_URL={base_url!r} must start with http(s)://")
    ai_mode = _ai_mode(values["SWITCHBOARD_AI_MODE"], url, base_url, problems)
    tts = values["SWITCHBOARD_TTS"]
    if tts == "auto":
        tts = "espeak" if ai_mode == "keyless" else ai_mode
    elif tts not in ("espeak", "inference", "openai"):
        problems.append(f"SWITCHBOARD_TTS={tts!r} must be one of auto, inference, openai, espeak")
    if tts == "openai" and not base_url:
        problems.append("SWITCHBOARD_TTS=openai needs SWITCHBOARD_OPENAI_BASE_URL")

    timeout = _number(values, "SWITCHBOARD_PARTICIPANT_TIMEOUT", problems, low=1, high=600)
    port = _number(values, "SWITCHBOARD_WORKER_PORT", problems, low=0, high=65535)
    lookup_ms = _number(values, "SWITCHBOARD_DIRECTORY_TIMEOUT_MS", problems, low=10, high=5000)
    ring_timeout = _number(values, "SWITCHBOARD_RING_TIMEOUT", problems, low=1, high=120)
    max_calls = _number(values, "SWITCHBOARD_MAX_CALLS", problems, low=0, high=10_000)
    idle = _number(values, "SWITCHBOARD_IDLE_PROCESSES", problems, low=0, high=64)
    drain = _number(values, "SWITCHBOARD_DRAIN_TIMEOUT", problems, low=0, high=86400)
    threshold = _number(values, "SWITCHBOARD_LOAD_THRESHOLD", problems, low=0.05, high=0.99)
    job_executor = values["SWITCHBOARD_JOB_EXECUTOR"]
    if job_executor not in ("process", "thread"):
        problems.append(f"SWITCHBOARD_JOB_EXECUTOR={job_executor!r} must be process or thread")
    shutdown_mode = values["SWITCHBOARD_SHUTDOWN_MODE"]
    if shutdown_mode not in ("finish", "goodbye"):
        problems.append(f"SWITCHBOARD_SHUTDOWN_MODE={shutdown_mode!r} must be finish or goodbye")

    console_attributes = _pairs(values["SWITCHBOARD_CONSOLE_ATTRIBUTES"], problems)
    if problems:
        raise ConfigError("configuration error:\n  - " + "\n  - ".join(problems))
    events = values["SWITCHBOARD_EVENTS_FILE"]
    return Settings(
        livekit_url=url,
        livekit_api_key=values["LIVEKIT_API_KEY"],
        livekit_api_secret=values["LIVEKIT_API_SECRET"],
        agent_name=agent_name,
        ai_mode=ai_mode,
        openai_base_url=base_url or None,
        openai_api_key=values["OPENAI_API_KEY"] or None,
        deepgram_api_key=values["DEEPGRAM_API_KEY"] or None,
        llm_model=values["SWITCHBOARD_LLM_MODEL"],
        llm_fallback_model=values["SWITCHBOARD_LLM_FALLBACK_MODEL"] or None,
        stt_model=values["SWITCHBOARD_STT_MODEL"],
        tts="espeak" if ai_mode == "keyless" else tts,  # type: ignore[arg-type]
        tts_model=values["SWITCHBOARD_TTS_MODEL"],
        tts_voice=values["SWITCHBOARD_TTS_VOICE"],
        ring_timeout=ring_timeout,
        database_url=database_url(values),
        directory_timeout=lookup_ms / 1000,
        default_region=values["SWITCHBOARD_DEFAULT_REGION"].upper(),
        routes_file=Path(values["SWITCHBOARD_ROUTES"]),
        policy_file=Path(values["SWITCHBOARD_POLICY"]),
        outbound_trunk_id=values["SWITCHBOARD_OUTBOUND_TRUNK_ID"] or None,
        participant_timeout=timeout,
        events_file=Path(events) if events else None,
        worker_port=int(port),
        max_calls=int(max_calls),
        drain_timeout=int(drain),
        job_executor=job_executor,  # type: ignore[arg-type]  # checked above
        shutdown_mode=shutdown_mode,  # type: ignore[arg-type]  # checked above
        idle_processes=int(idle),
        load_threshold=threshold,
        console_caller=values["SWITCHBOARD_CONSOLE_CALLER"],
        console_called=values["SWITCHBOARD_CONSOLE_CALLED"],
        console_attributes=console_attributes,
    )


def database_url(env: Mapping[str, str]) -> str:
    """``DATABASE_URL``, or the SQLite file in the state directory."""
    url = env.get("DATABASE_URL", "").strip()
    if url:
        return url
    state_dir = env.get("SWITCHBOARD_STATE_DIR", "").strip() or ".switchboard"
    return f"sqlite:///{Path(state_dir) / 'switchboard.db'}"


def _ai_mode(mode: str, url: str, base_url: str, problems: list[str]) -> AiMode:
    if mode == "auto":
        if base_url:
            return "openai"
        return "inference" if _is_livekit_cloud(url) else "keyless"
    if mode == "openai" and not base_url:
        problems.append("SWITCHBOARD_AI_MODE=openai needs SWITCHBOARD_OPENAI_BASE_URL")
    if mode in ("inference", "keyless", "openai"):
        return mode  # type: ignore[return-value]
    problems.append(f"SWITCHBOARD_AI_MODE={mode!r} must be one of auto, inference, openai, keyless")
    return "keyless"


def _is_livekit_cloud(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host.endswith(".livekit.cloud")


def _pairs(raw: str, problems: list[str]) -> Mapping[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(
                f"SWITCHBOARD_CONSOLE_ATTRIBUTES: {item!r} is not name=value (e.g. lang=es)"
            )
            continue
        pairs[key.strip()] = value.strip()
    return MappingProxyType(pairs)


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
