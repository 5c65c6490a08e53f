"""Configuration from the environment, read and checked once, at start.

Every variable is declared once, on the field of the settings part it fills: its name,
default, help and parser (which knows its range). ``ENV_VARS`` lists those declarations;
``.env.example`` and the reference (docs/CONFIGURATION.md) are generated from them; the
parsers and the reading itself are in ``env``.
``load_settings`` is pure: it takes a mapping, so tests never touch ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast, get_type_hints
from urllib.parse import urlparse

from switchboard.config.env import (
    SOURCE,
    Choice,
    EnvVar,
    Flag,
    Folder,
    Number,
    OrNone,
    Pairs,
    Pattern,
    ReachableUri,
    Region,
    Text,
    Url,
    declarations,
    read,
)
from switchboard.config.errors import ConfigError, Problem
from switchboard.config.file_secrets import FILE_SECRETS
from switchboard.config.models import (
    INFERENCE_LLM,
    INFERENCE_TTS,
    OPENAI_LLM,
    OPENAI_TTS,
    default_llm,
    default_tts,
    is_openai,
    model_problems,
)
from switchboard.config.prompts import DEFAULT_DIR

# SWITCHBOARD_MAX_CALLS=0: measured on the lab, a 2-core machine carries about 9 AI calls
# with their dialled legs before it saturates (bench/RESULTS.md).
CALLS_PER_CPU = 4

AiMode = Literal["keyless", "inference", "openai"]
TtsProvider = Literal["espeak", "inference", "openai"]
T = TypeVar("T")

SUBJECT = "the environment"


_AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# --- the parts of the settings ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The LiveKit server and this worker's place in it."""

    url: Annotated[
        str,
        EnvVar(
            "LIVEKIT_URL",
            "",
            Url(("ws", "wss", "http", "https"), "start with wss:// (or ws:// for a local server)"),
            "LiveKit server URL, e.g. wss://my-project.livekit.cloud",
        ),
    ]
    api_key: Annotated[
        str,
        EnvVar(
            "LIVEKIT_API_KEY",
            "",
            Text(),
            "LiveKit API key (Cloud project settings, or your server)",
        ),
    ]
    api_secret: Annotated[str, EnvVar("LIVEKIT_API_SECRET", "", Text(), "LiveKit API secret")]
    agent_name: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_AGENT_NAME",
            "switchboard",
            Pattern(
                _AGENT_NAME,
                "1-64 letters, digits, '.', '_' or '-' (it must equal the agent name in your "
                "dispatch rule)",
            ),
            "Name the dispatch rule dispatches",
        ),
    ]
    worker_port: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_WORKER_PORT",
            "8081",
            Number(0, 65535, whole=True),
            "Worker health/HTTP port (0 picks a free one)",
        ),
    ]
    idle_processes: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_IDLE_PROCESSES",
            "0",
            Number(0, 64, whole=True),
            "Job processes kept warm for the next calls (each call runs in its own); 0 = the "
            "framework's default (one per CPU). Calls beyond the warm ones wait seconds for a "
            "process to start: set it to the burst of simultaneous calls you expect",
        ),
    ]
    job_executor: Annotated[
        Literal["process", "thread"],
        EnvVar(
            "SWITCHBOARD_JOB_EXECUTOR",
            "process",
            Choice(("process", "thread")),
            "How each call runs: process = its own process, forked from a preloaded one "
            "(isolated: a call that crashes ends alone; starts in a few hundred ms), thread = "
            "a thread of the worker (experimental, not for production: starts in ms, but a "
            "call that crashes the interpreter ends every call on the worker and the worker "
            "itself, a call holding the GIL silences the others, and the worker's memory "
            "drifted up 0.4-1.6 MB a call; bench/RESULTS.md, section 9)",
        ),
    ]
    load_threshold: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_LOAD_THRESHOLD",
            "0.7",
            Number(0.05, 0.99),
            "Load (0-1) above which the worker takes no call",
        ),
    ]
    metrics_port: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_METRICS_PORT",
            "0",
            Number(0, 65535, whole=True),
            "Serve Prometheus metrics (calls, turn latency, tools, providers) on this port "
            "at /metrics; 0 = off. Collected from every call's process; needs "
            "SWITCHBOARD_JOB_EXECUTOR=process (a thread's figures are not collected)",
        ),
    ]
    metrics_dir: Annotated[
        Path | None,
        EnvVar(
            "SWITCHBOARD_METRICS_DIR",
            "",
            Folder(),
            "Where the call processes write their metrics for the worker to collect (emptied "
            "at start: one per worker); empty: metrics-<agent name> in SWITCHBOARD_STATE_DIR",
        ),
    ]
    connect_timeout: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_CONNECT_TIMEOUT",
            "60",
            Number(1, 3600),
            "Seconds the worker may stay unregistered with the LiveKit server (at start, or "
            "after losing it with no call in progress) before it exits (code 1) with the "
            "reason and the fix; credentials the server refuses end it at once",
        ),
    ]


@dataclass(frozen=True, slots=True)
class AiSettings:
    """Who listens, thinks and speaks: the providers and their models."""

    # "auto" (for the mode and the voice) is made concrete by load_settings.
    mode: Annotated[
        AiMode,
        EnvVar(
            "SWITCHBOARD_AI_MODE",
            "auto",
            Choice(("auto", "inference", "openai", "keyless")),
            "auto | inference | openai | keyless. auto: openai when SWITCHBOARD_OPENAI_BASE_URL is "
            "set, LiveKit Inference on LiveKit Cloud URLs, else keyless (offline voice, no AI)",
        ),
    ]
    openai_base_url: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_OPENAI_BASE_URL",
            "",
            Url(("http", "https"), "start with http(s)://", optional=True),
            "An OpenAI-compatible endpoint (vLLM, Ollama, a Whisper server...), e.g. "
            "http://127.0.0.1:8000/v1: LLM and speech-to-text go there",
        ),
    ]
    openai_api_key: Annotated[
        str | None,
        EnvVar(
            "OPENAI_API_KEY",
            "",
            OrNone(),
            "Key for SWITCHBOARD_OPENAI_BASE_URL (if it needs one)",
        ),
    ]
    deepgram_api_key: Annotated[
        str | None,
        EnvVar(
            "DEEPGRAM_API_KEY",
            "",
            OrNone(),
            "Deepgram key: speech-to-text straight from Deepgram. When set, it wins over the "
            "mode's own speech-to-text (LiveKit Inference, or openai mode's Whisper model); "
            "the worker says which it uses when it starts",
        ),
    ]
    deepgram_base_url: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_DEEPGRAM_BASE_URL",
            "",
            Url(("http", "https", "ws", "wss"), "start with http(s):// or ws(s)://", optional=True),
            "With DEEPGRAM_API_KEY: the streaming endpoint to use instead of Deepgram's cloud "
            "(a self-hosted Deepgram, e.g. wss://deepgram.internal/v1/listen; the lab's "
            "double). Empty: wss://api.deepgram.com/v1/listen",
        ),
    ]
    llm_model: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_LLM_MODEL",
            "",
            Text(),
            "LLM model, named as the mode names it: LiveKit Inference provider/model (empty: "
            f"{INFERENCE_LLM}); openai mode, the name the server serves (empty: {OPENAI_LLM} "
            "on api.openai.com; required for other servers, e.g. llama3.1:8b on Ollama). A "
            "name of the other mode is refused at start",
        ),
    ]
    llm_fallback_model: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_LLM_FALLBACK_MODEL",
            "",
            OrNone(),
            "A second LLM model on the same provider, used when the first fails mid-call",
        ),
    ]
    stt_model: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_STT_MODEL",
            "whisper-1",
            Text(),
            "openai mode: the speech-to-text (Whisper) model at SWITCHBOARD_STT_BASE_URL; "
            "unused when DEEPGRAM_API_KEY is set",
        ),
    ]
    stt_base_url: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_STT_BASE_URL",
            "",
            Url(("http", "https"), "start with http(s)://", optional=True),
            "openai mode: an OpenAI-compatible transcription endpoint (POST "
            "/audio/transcriptions: a Whisper server, or vLLM serving a Whisper model) when "
            "the LLM's has none (Ollama). Empty: SWITCHBOARD_OPENAI_BASE_URL",
        ),
    ]
    stt_api_key: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_STT_API_KEY",
            "",
            OrNone(),
            "Key for SWITCHBOARD_STT_BASE_URL (empty: OPENAI_API_KEY)",
        ),
    ]
    tts: Annotated[
        TtsProvider,
        EnvVar(
            "SWITCHBOARD_TTS",
            "auto",
            Choice(("auto", "inference", "openai", "espeak")),
            "auto | inference | openai | espeak: the voice. auto: LiveKit Inference in "
            "inference mode; in openai mode, the OpenAI-compatible speech endpoint when there "
            "is one (SWITCHBOARD_TTS_BASE_URL, or api.openai.com), else espeak, since vLLM and "
            "Ollama have no speech. espeak is offline, and always stands by as the fallback",
        ),
    ]
    tts_model: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_TTS_MODEL",
            "",
            Text(),
            f"Voice model, named as the voice's provider names it (empty: {INFERENCE_TTS} on "
            f"LiveKit Inference, {OPENAI_TTS} on an OpenAI-compatible speech endpoint)",
        ),
    ]
    tts_base_url: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_TTS_BASE_URL",
            "",
            Url(("http", "https"), "start with http(s)://", optional=True),
            "An OpenAI-compatible speech endpoint (POST /audio/speech), when the LLM's has "
            "none (vLLM, Ollama): e.g. https://api.openai.com/v1, or a local Kokoro-FastAPI "
            "at http://127.0.0.1:8880/v1. Empty: SWITCHBOARD_OPENAI_BASE_URL",
        ),
    ]
    tts_api_key: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_TTS_API_KEY",
            "",
            OrNone(),
            "Key for SWITCHBOARD_TTS_BASE_URL (empty: OPENAI_API_KEY)",
        ),
    ]
    tts_voice: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_TTS_VOICE", "alloy", Text(), "TTS voice on the OpenAI-compatible endpoint"
        ),
    ]

    @property
    def keyless(self) -> bool:
        return self.mode == "keyless"


@dataclass(frozen=True, slots=True)
class CallSettings:
    """How calls run: how many at once, their timeouts, and where they dial out."""

    participant_timeout: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_PARTICIPANT_TIMEOUT",
            "20",
            Number(1, 600),
            "Seconds to wait for the caller to join",
        ),
    ]
    ring_timeout: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_RING_TIMEOUT",
            "25",
            Number(1, 120),
            "Seconds a dialled party may ring before we give up",
        ),
    ]
    max_calls: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_MAX_CALLS",
            "0",
            Number(0, 10_000, whole=True),
            "Calls one worker takes at once, counting those still starting; 0 = "
            f"{CALLS_PER_CPU} per CPU core. The worker's load is calls/this, and at "
            "SWITCHBOARD_LOAD_THRESHOLD it takes no more (a CPU-based load would turn callers "
            "away during any CPU spike)",
        ),
    ]
    outbound_trunk_id: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_OUTBOUND_TRUNK_ID",
            "",
            OrNone(),
            "Outbound SIP trunk for dial-out (ST_...; `switchboard provision --json` prints it)",
        ),
    ]
    default_region: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_DEFAULT_REGION",
            "US",
            Region(),
            "Country (ISO code) for numbers that arrive without a +country prefix",
        ),
    ]


@dataclass(frozen=True, slots=True)
class DataSettings:
    """Where calls are looked up and recorded."""

    database_url: Annotated[
        str,
        EnvVar(
            "DATABASE_URL",
            "",
            Text(),
            "Caller directory and call records: postgresql://user:pass@host/db, or empty for "
            "the SQLite file in SWITCHBOARD_STATE_DIR",
        ),
    ] = field(repr=False)  # its password must never reach a log through a repr
    state_dir: Annotated[
        Path,
        EnvVar(
            "SWITCHBOARD_STATE_DIR",
            ".switchboard",
            Folder(Path(".switchboard")),
            "Where the default SQLite database lives",
        ),
    ]
    directory_timeout: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_DIRECTORY_TIMEOUT_MS",
            "150",
            Number(10, 5000, scale=1 / 1000),
            "Longest the caller lookup may delay the greeting; past it the caller is unknown "
            "(read in milliseconds, kept in seconds)",
        ),
    ]
    events_file: Annotated[
        Path | None,
        EnvVar(
            "SWITCHBOARD_EVENTS_FILE",
            "",
            Folder(),
            "Append one JSON line per call event to this file",
        ),
    ]

    @property
    def url(self) -> str:
        """``DATABASE_URL``, or the SQLite file in the state directory."""
        return self.database_url or f"sqlite:///{self.state_dir / 'switchboard.db'}"


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """Call recordings (routes with ``record = true``): where they go, how long they stay."""

    folder: Annotated[
        Path | None,
        EnvVar(
            "SWITCHBOARD_RECORDINGS_DIR",
            "",
            Folder(),
            "Where call recordings are written (created 0700, files 0600); empty: "
            "recordings/ in SWITCHBOARD_STATE_DIR",
        ),
    ]
    retention_days: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_RECORDINGS_RETENTION_DAYS",
            "30",
            Number(1, 3650, whole=True),
            "Days a recording is kept; older ones are deleted by `switchboard recordings "
            "prune` and by the worker once a day",
        ),
    ]
    mode: Annotated[
        Literal["agent", "egress"],
        EnvVar(
            "SWITCHBOARD_RECORDING_MODE",
            "agent",
            Choice(("agent", "egress")),
            "Who records: agent = the agent itself, into SWITCHBOARD_RECORDINGS_DIR (any "
            "LiveKit server); egress = a room-composite audio egress started through the API "
            "(needs LiveKit Egress, e.g. LiveKit Cloud, and its storage)",
        ),
    ]


@dataclass(frozen=True, slots=True)
class WebSettings:
    """`switchboard web`, the read-only call console."""

    token: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_WEB_TOKEN",
            "",
            Text(),
            "The console's password (at least 16 characters); `switchboard web` refuses to "
            "start without one",
        ),
    ]
    host: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_WEB_HOST",
            "127.0.0.1",
            Text(),
            "Address the console listens on (put it behind a TLS proxy before exposing it)",
        ),
    ]
    port: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_WEB_PORT",
            "8090",
            Number(1, 65535, whole=True),
            "Port the console listens on",
        ),
    ]
    allow_unmasked: Annotated[
        bool,
        EnvVar(
            "SWITCHBOARD_WEB_ALLOW_UNMASKED",
            "false",
            Flag(),
            "Let the console show stored full numbers when asked (?unmasked=1); numbers are "
            "masked otherwise",
        ),
    ]


@dataclass(frozen=True, slots=True)
class FileSettings:
    """The configuration files, all read and checked at start."""

    routes: Annotated[
        Path, EnvVar("SWITCHBOARD_ROUTES", "routes.toml", Folder(), "The route table")
    ]
    policy: Annotated[
        Path,
        EnvVar(
            "SWITCHBOARD_POLICY",
            "policy.toml",
            Folder(),
            "Dial-out policies and named destinations",
        ),
    ]
    telephony: Annotated[
        Path,
        EnvVar(
            "SWITCHBOARD_TELEPHONY",
            "telephony.toml",
            Folder(),
            "The SIP setup; its trunks' numbers are the line's own, which the agent never "
            "dials (a loop). A missing file is fine: the number each call came in on is "
            "refused anyway",
        ),
    ]
    prompts: Annotated[
        Path,
        EnvVar(
            "SWITCHBOARD_PROMPTS_DIR",
            "",
            Folder(DEFAULT_DIR),
            "The folder of prompt files (*.md); empty: the prompts/ folder shipped with the code",
        ),
    ]


@dataclass(frozen=True, slots=True)
class ShutdownSettings:
    """What a deploy's SIGTERM does to calls in progress."""

    drain_timeout: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_DRAIN_TIMEOUT",
            "1800",
            Number(0, 86400, whole=True),
            "On SIGTERM (a deploy), seconds calls in progress may run on before the worker stops",
        ),
    ]
    mode: Annotated[
        Literal["finish", "goodbye"],
        EnvVar(
            "SWITCHBOARD_SHUTDOWN_MODE",
            "finish",
            Choice(("finish", "goodbye")),
            "On SIGTERM: finish = calls in progress go on, and any still running 15 s before "
            "SWITCHBOARD_DRAIN_TIMEOUT ends hear prompts/shutdown_goodbye.md and are ended; "
            "goodbye = every call in progress hears it at once and is ended",
        ),
    ]


@dataclass(frozen=True, slots=True)
class PinLockoutSettings:
    """Wrong PINs counted per caller number across calls, by every worker (the database):
    too many lock the number out, for longer each time (``call.pin_lockout``)."""

    attempts: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_PIN_LOCKOUT_ATTEMPTS",
            "5",
            Number(1, 100, whole=True),
            "Wrong PINs from one caller number, over all its calls, that lock it out",
        ),
    ]
    window_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_PIN_LOCKOUT_WINDOW",
            "3600",
            Number(60, 7 * 86400),
            "Seconds a wrong PIN counts towards a lockout",
        ),
    ]
    lockout_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_PIN_LOCKOUT",
            "900",
            Number(10, 7 * 86400),
            "Seconds of a caller number's first lockout; each further one (within a week, "
            "without a right PIN between) lasts twice the one before",
        ),
    ]
    lockout_max_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_PIN_LOCKOUT_MAX",
            "86400",
            Number(10, 7 * 86400),
            "Longest a lockout lasts, seconds",
        ),
    ]


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The simulated caller of ``agent.py console``."""

    caller: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_CONSOLE_CALLER",
            "+15105550123",
            Text(),
            "console: the simulated caller's number",
        ),
    ]
    called: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_CONSOLE_CALLED", "+15105550100", Text(), "console: the number it dialled"
        ),
    ]
    attributes: Annotated[
        Mapping[str, str],
        EnvVar(
            "SWITCHBOARD_CONSOLE_ATTRIBUTES",
            "",
            Pairs(),
            "console: the simulated caller's custom attributes, e.g. lang=es,customer_id=42",
        ),
    ]


# A SIP or tel URI, as REFER needs; empty: no overflow destination.
_TRANSFER_TARGET = re.compile(r"|sips?:[^\s<>\"]+@[^\s<>\"]+|tel:\+?[0-9*#-]{3,32}")


@dataclass(frozen=True, slots=True)
class GuardianSettings:
    """``switchboard guardian``: when it dispatches the agent again, and where callers go
    when it cannot (docs/GUARDIAN.md)."""

    grace_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_GRACE",
            "2",
            Number(0, 300),
            "guardian: seconds a caller may wait for an agent before it acts",
        ),
    ]
    budget_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_BUDGET",
            "30",
            Number(1, 3600),
            "guardian: seconds of re-dispatch attempts before the overflow",
        ),
    ]
    backoff_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_BACKOFF",
            "1",
            Number(0.2, 60),
            "guardian: seconds before the second attempt; then doubled",
        ),
    ]
    backoff_max_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_BACKOFF_MAX",
            "8",
            Number(0.2, 600),
            "guardian: longest wait between two attempts, seconds",
        ),
    ]
    assign_wait_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_ASSIGN_WAIT",
            "5",
            Number(0.5, 60),
            "guardian: seconds a dispatch no worker has taken yet may still be taken (a "
            "loaded worker answers the server late) before it counts as refused",
        ),
    ]
    start_allowance_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_START_ALLOWANCE",
            "20",
            Number(1, 300),
            "guardian: seconds a job a worker accepted has to start and join the room "
            "before the caller gets another dispatch",
        ),
    ]
    overflow_to: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_OVERFLOW",
            "",
            ReachableUri(
                Pattern(_TRANSFER_TARGET, "a SIP or tel URI, e.g. sip:+15105550199@pbx.example.com")
            ),
            "guardian: where callers go (REFER) when no agent can be found; empty: none",
        ),
    ]
    overflow_wait_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_OVERFLOW_WAIT",
            "15",
            Number(1, 300),
            "guardian: seconds a transfer gets before the room is ended",
        ),
    ]
    agent_silence_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_AGENT_SILENCE",
            "2.5",
            Number(0, 60),
            "guardian: seconds an agent's call lease (in the database) may go unrefreshed "
            "before the agent counts as dead and is replaced; 0: wait for the server",
        ),
    ]
    period_s: Annotated[
        float,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_PERIOD",
            "2",
            Number(0.2, 300),
            "guardian: seconds between two reconciliations with the server",
        ),
    ]
    room_prefix: Annotated[
        str | None,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_ROOM_PREFIX",
            "",
            OrNone(),
            "guardian: also guard rooms named so (unset: the rooms dispatched to the agent)",
        ),
    ]
    bind: Annotated[
        str,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_BIND",
            "127.0.0.1",
            Text(),
            "guardian: address the webhook receiver listens on",
        ),
    ]
    port: Annotated[
        int,
        EnvVar(
            "SWITCHBOARD_GUARDIAN_PORT",
            "8090",
            Number(0, 65535, whole=True),
            "guardian: port of the webhook receiver (POST /webhook)",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything read from the environment, by part; the reference lists the parts in
    this order."""

    server: ServerSettings
    ai: AiSettings
    calls: CallSettings
    data: DataSettings
    files: FileSettings
    shutdown: ShutdownSettings
    console: ConsoleSettings
    guardian: GuardianSettings
    recording: RecordingSettings
    web: WebSettings
    pin_lockout: PinLockoutSettings


def _declared() -> tuple[EnvVar, ...]:
    parts = get_type_hints(Settings)
    return tuple(
        replace(var, part=part)
        for part in (f.name for f in fields(Settings))
        for var in declarations(parts[part]).values()
    )


ENV_VARS: tuple[EnvVar, ...] = _declared()
_BY_NAME = {v.name: v for v in ENV_VARS}
_SERVER_VARS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


def env_example() -> str:
    """The text of ``.env.example``: every variable, its meaning and its default."""
    lines = [
        "# Copy to .env.local and fill in. Every variable the agent reads is here.",
        "# The real environment wins over .env.local. Never commit .env.local.",
        "# Generated by `switchboard env-example`; edit switchboard/config/settings.py instead.",
        "",
    ]
    for var in ENV_VARS:
        accepts = f" ({var.accepts})" if var.accepts else ""
        lines += [f"# {var.help}{accepts}", f"{var.name}={var.default}", ""]
    lines += ["# --- secrets the configuration files name (not read by the worker) ---", ""]
    for name, meaning in FILE_SECRETS:
        lines += [f"# {meaning}", f"{name}=", ""]
    return "\n".join(lines)


# --- reading ----------------------------------------------------------------------------


def _part(cls: type[T], env: Mapping[str, str], problems: list[Problem]) -> T:
    values = {name: read(var, env, problems) for name, var in declarations(cls).items()}
    return cls(**values)


def load_settings(env: Mapping[str, str], *, need_server: bool = True) -> Settings:
    """Read and check every variable; raise one ConfigError listing every problem.

    ``need_server`` is False for console mode, which runs without a LiveKit server.
    """
    problems: list[Problem] = []
    server = _part(ServerSettings, env, problems)
    ai = _part(AiSettings, env, problems)
    if need_server:
        _require(_SERVER_VARS, env, problems)
    settings = Settings(
        server=server,
        ai=_resolve_ai(ai, server.url, problems),
        calls=_sized_to_the_machine(_part(CallSettings, env, problems)),
        data=_part(DataSettings, env, problems),
        files=_part(FileSettings, env, problems),
        shutdown=_part(ShutdownSettings, env, problems),
        console=_part(ConsoleSettings, env, problems),
        guardian=_part(GuardianSettings, env, problems),
        recording=_part(RecordingSettings, env, problems),
        web=_part(WebSettings, env, problems),
        pin_lockout=_part(PinLockoutSettings, env, problems),
    )
    if problems:
        raise ConfigError(problems, SUBJECT)
    return settings


def _sized_to_the_machine(calls: CallSettings) -> CallSettings:
    if calls.max_calls:
        return calls
    return replace(calls, max_calls=CALLS_PER_CPU * (os.cpu_count() or 1))


def _require(names: tuple[str, ...], env: Mapping[str, str], problems: list[Problem]) -> None:
    for name in names:
        if not env.get(name, "").strip():
            fix = f"put {name}=... in .env.local ({_BY_NAME[name].help})"
            problems.append(Problem(SOURCE, "", name, f"{name} is not set", fix))


def livekit_access(env: Mapping[str, str]) -> tuple[str, str, str]:
    """URL, API key and secret of the LiveKit server, for commands that talk to it alone
    (`switchboard provision`); ConfigError naming each one unset or bad."""
    problems: list[Problem] = []
    url, key, secret = (read(_BY_NAME[name], env, problems) for name in _SERVER_VARS)
    _require(_SERVER_VARS, env, problems)
    if problems:
        raise ConfigError(problems, SUBJECT)
    return url, key, secret


def _resolve_ai(ai: AiSettings, url: str, problems: list[Problem]) -> AiSettings:
    """``auto`` and empty models made concrete, and the choices that need an endpoint or
    a model name of their mode checked."""
    mode: str = ai.mode
    if mode == "auto":
        mode = "openai" if ai.openai_base_url else "inference" if _is_cloud(url) else "keyless"
    if mode == "keyless":  # nobody to pay for a voice, so always the offline one
        return replace(ai, mode="keyless", tts="espeak")
    tts: str = ai.tts
    if tts == "auto":
        speaks = ai.tts_base_url or is_openai(ai.openai_base_url)
        tts = "inference" if mode == "inference" else "openai" if speaks else "espeak"
    fix = "set SWITCHBOARD_OPENAI_BASE_URL to your endpoint, e.g. http://127.0.0.1:8000/v1"
    if mode == "openai" and not ai.openai_base_url:
        problem = "SWITCHBOARD_AI_MODE=openai needs SWITCHBOARD_OPENAI_BASE_URL"
        problems.append(Problem(SOURCE, "", "SWITCHBOARD_AI_MODE", problem, fix))
    if tts == "openai" and not (ai.tts_base_url or ai.openai_base_url):
        problem = "SWITCHBOARD_TTS=openai needs SWITCHBOARD_TTS_BASE_URL"
        fix = "set SWITCHBOARD_TTS_BASE_URL to a speech endpoint, e.g. https://api.openai.com/v1"
        problems.append(Problem(SOURCE, "", "SWITCHBOARD_TTS", problem, fix))
    llm_model = ai.llm_model or default_llm(mode, ai.openai_base_url)
    if llm_model is None:
        problem = (
            "SWITCHBOARD_LLM_MODEL is not set, and SWITCHBOARD_OPENAI_BASE_URL is not "
            "api.openai.com: only you know the model your server serves"
        )
        fix = "set SWITCHBOARD_LLM_MODEL to it (GET <base URL>/models lists them)"
        problems.append(Problem(SOURCE, "", "SWITCHBOARD_LLM_MODEL", problem, fix))
    tts_model = ai.tts_model or default_tts(tts)
    given = (
        ("SWITCHBOARD_LLM_MODEL", ai.llm_model),
        ("SWITCHBOARD_LLM_FALLBACK_MODEL", ai.llm_fallback_model or ""),
    )
    problems += model_problems(mode, tts, [(v, n) for v, n in given if n], ai.tts_model)
    return replace(
        ai,
        mode=cast(AiMode, mode),
        tts=cast(TtsProvider, tts),
        llm_model=llm_model or "",
        tts_model=tts_model,
    )


def _is_cloud(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host.endswith(".livekit.cloud")


def read_one(name: str, env: Mapping[str, str]) -> Any:
    """One declared variable, for commands that need only it; ConfigError when bad."""
    problems: list[Problem] = []
    value = read(_BY_NAME[name], env, problems)
    if problems:
        raise ConfigError(problems, SUBJECT)
    return value


def recordings_folder(data: DataSettings, recording: RecordingSettings) -> Path:
    """``SWITCHBOARD_RECORDINGS_DIR``, or recordings/ in the state directory."""
    return recording.folder or data.state_dir / "recordings"


def database_url(env: Mapping[str, str]) -> str:
    """``DATABASE_URL``, or the SQLite file in the state directory (for `switchboard calls`)."""
    data = DataSettings(
        database_url=read_one("DATABASE_URL", env),
        state_dir=read_one("SWITCHBOARD_STATE_DIR", env),
        directory_timeout=0.0,
        events_file=None,
    )
    return data.url
