"""The worker around the calls: what is loaded once, what each call process builds before
its call, how full the worker says it is, and how it drains on a deploy.

- Preload: job processes fork from the framework's forkserver, which imports
  ``PRELOAD_MODULES`` once (every module a call runs, SQLAlchemy and its database drivers,
  the plugins); without it every job process imported all of them again with ``agent.py``,
  which took seconds per call on a busy machine and made a burst overrun the framework's
  process start timeout. ``agent.py`` itself still runs again in each job process as
  ``__mp_main__`` (Python 3.11's forkserver drops the main module's path, so ``__main__``
  cannot be preloaded), but then only reads its configuration: everything it imports is
  there already.
- Prewarm: each job process serves one call; before the call comes, it loads the VAD and
  builds what the call would otherwise build on first use, on its way to the answer: the
  HTTP client every OpenAI-compatible model of the call shares, the framework's TLS
  context, parser and hyphenation patterns (``call.warmup``).
- Load, counted in calls (``SWITCHBOARD_MAX_CALLS``): calls running plus calls accepted and
  still starting. The framework charges each starting job ``load_threshold /
  num_idle_processes`` of load instead, so two calls arriving together on an idle worker
  filled it, and the server does not retry a refused dispatch: the caller rang on.
- Logs: every line the worker writes, its job processes' and the framework's included,
  has the phone numbers in it masked (``log_masking``).
- Drain (SIGTERM): calls in progress finish or hear a goodbye (``call.shutdown``), asked
  in a message signed with a key the worker draws at start and hands to its job processes
  through the prewarm (a picklable value the framework sends to each of them).
- Retention: once a day (and at start) the worker deletes recordings past
  ``SWITCHBOARD_RECORDINGS_RETENTION_DAYS``, as `switchboard recordings prune` does.
- Registration: the health endpoint answers 503 whenever the worker is not registered
  with the LiveKit server (the framework's said 200 while it retried), and a worker that
  stays unregistered ``SWITCHBOARD_CONNECT_TIMEOUT`` seconds, or whose credentials the
  server refuses, exits with code 1 and one line saying why (``switchboard.registration``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from livekit.agents import AgentServer, JobExecutorType, JobProcess
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given
from livekit.plugins import silero

from switchboard.call.metrics import forget_dead
from switchboard.call.shutdown import (
    GOODBYE_KEY,
    goodbye_delay,
    new_goodbye_key,
    tell_calls_goodbye,
)
from switchboard.call.warmup import warm_process
from switchboard.config.settings import AiSettings, Settings, recordings_folder
from switchboard.data.db import open_database
from switchboard.data.recordings import DAY_S, prune
from switchboard.log_masking import mask_log_handlers
from switchboard.registration import Failure, give_up

logger = logging.getLogger("switchboard.worker")

EXIT_NOT_REGISTERED = 1
MIGRATE_TIMEOUT_S = 15
# How often the registration watch looks; the window itself is a setting.
WATCH_INTERVAL_S = 0.5

# Imported once in the forkserver, inherited by every job process (see the module doc):
# what agent.py imports, and the database drivers SQLAlchemy would import at first use.
PRELOAD_MODULES = [
    "dotenv",
    "switchboard.call.flow",
    "switchboard.config.pins",
    "switchboard.config.routes",
    "switchboard.config.policy",
    "switchboard.config.startup",
    "switchboard.telephony.config",
    "switchboard.worker",
    "tools",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "asyncpg",
    # What the SDKs import at first use, which a call's process did on its event loop on
    # the way to the answer (``call.warmup``): the OpenAI SDK's resources (lazy in the
    # client), httpcore's asyncio backend (at the first request), the framework's toolsets.
    "openai.resources.chat.chat",
    "openai.resources.chat.completions.completions",
    "openai.resources.models",
    "openai.resources.audio",
    "openai.pagination",
    "jiter",
    "anyio._backends._asyncio",
    "livekit.agents.llm.async_toolset",
]


class SwitchboardServer(AgentServer):
    """The framework's AgentServer with capacity counted in calls and a drain that tells
    calls goodbye."""

    def __init__(self, settings: Settings, goodbye_key: bytes, **kwargs: Any) -> None:
        window = settings.server.connect_timeout
        # The framework's own retries (2 s apart and more) outlast the window: the watch,
        # not the framework, decides when to give up.
        retries = int(window / 2) + 2
        super().__init__(drain_timeout=settings.shutdown.drain_timeout, max_retry=retries, **kwargs)
        self._settings = settings
        self._goodbye_key = goodbye_key
        self._registered = False
        self._unregistered_since = time.monotonic()
        self._connect_errors = _ConnectErrors()

    # The framework's health endpoint answers 503 only when this is true, which it sets
    # once its retries are exhausted; here it is true whenever the worker is not
    # registered: before the first registration, and while a lost connection is retried.
    @property
    def _connection_failed(self) -> bool:
        return self._gave_up or not self._registered

    @_connection_failed.setter
    def _connection_failed(self, value: bool) -> None:
        self._gave_up = value

    async def _run_ws(self, ws: Any) -> None:
        # The framework runs this once the server has accepted the registration, until
        # the connection ends.
        self._registered = True
        try:
            await super()._run_ws(ws)
        finally:
            self._registered = False
            self._unregistered_since = time.monotonic()

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        # The framework has set its log handlers up by now (cli.run_app), and its job
        # processes send their records to them.
        mask_log_handlers()
        # Here, not in agent.py's __main__: `lk agent dev` imports agent.py instead.
        await prepare_database(self._settings.data.url)
        pruning = asyncio.create_task(self._prune_daily())
        try:
            await self._run(devmode=devmode, unregistered=unregistered)
        finally:
            pruning.cancel()

    async def _run(self, *, devmode: bool, unregistered: bool) -> None:
        if unregistered:  # console: no server to register with
            await super().run(devmode=devmode, unregistered=True)
            return
        framework = logging.getLogger("livekit.agents")
        framework.addFilter(self._connect_errors)
        watches: list[asyncio.Task[None]] = []

        def started() -> None:
            # The window runs from the first connection attempt: a slow start (warm
            # processes on a busy machine) is not the server's fault.
            self._unregistered_since = time.monotonic()
            watches.append(asyncio.create_task(self._watch_registration()))

        self.once("worker_started", started)
        try:
            await super().run(devmode=devmode, unregistered=False)
        finally:
            for watch in watches:
                watch.cancel()
            framework.removeFilter(self._connect_errors)

    async def _watch_registration(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)  # a watch's period, not a synchronisation
            if self._registered:
                continue
            failure = give_up(
                error=self._connect_errors.last,
                url=self._ws_url,  # the one it dials: `lk agent dev` passes it as --url
                unregistered_for=time.monotonic() - self._unregistered_since,
                window=self._settings.server.connect_timeout,
                active_calls=len(self.active_jobs),
            )
            if failure is not None:
                await self._exit(failure)

    async def _exit(self, failure: Failure) -> None:
        """One line saying why, what is running stopped, then exit code 1 (the framework's
        CLI would exit 0 after its own shutdown)."""
        sys.stderr.write(f"switchboard: worker not registered: {failure.reason}\n")
        sys.stderr.flush()
        try:
            await asyncio.wait_for(self.aclose(), timeout=10)
        finally:
            os._exit(EXIT_NOT_REGISTERED)

    def calls_load(self) -> float:
        """Calls running and starting, as a share of ``SWITCHBOARD_MAX_CALLS``."""
        starting = self._reserved_slots  # accepted, no process yet: private, pinned API
        return min((len(self.active_jobs) + starting) / self._settings.calls.max_calls, 1.0)

    async def _prune_daily(self) -> None:
        folder = recordings_folder(self._settings.data, self._settings.recording)
        days = self._settings.recording.retention_days
        while True:
            try:
                done = await asyncio.to_thread(prune, folder, days, time.time())
            except OSError as e:  # a folder we cannot read: say so, try again tomorrow
                logger.warning("recordings not pruned: %s", e)
            else:
                if done.deleted or done.failed:
                    logger.info(
                        "recordings pruned: %d deleted, %d kept, %d not deletable",
                        len(done.deleted),
                        done.kept,
                        len(done.failed),
                    )
            await asyncio.sleep(DAY_S)  # a daily timer, not a synchronisation

    def _get_effective_load(self) -> float:
        # What the framework compares with load_threshold before it accepts a job.
        return self.calls_load()

    async def drain(self, timeout: NotGivenOr[int | None] = NOT_GIVEN) -> None:
        # None waits for ever: like a drain timeout of 0, calls are never cut.
        shutdown = self._settings.shutdown
        deadline = (timeout or 0) if is_given(timeout) else shutdown.drain_timeout
        delay = goodbye_delay(shutdown.mode, deadline)
        logger.info(
            "draining: %d call(s) in progress, shutdown mode %s, goodbye in %s s",
            len(self.active_jobs),
            shutdown.mode,
            delay,
        )
        task = asyncio.create_task(self._goodbye_after(delay)) if delay is not None else None
        try:
            await super().drain(timeout)
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _goodbye_after(self, delay: float) -> None:
        await asyncio.sleep(delay)  # a deadline to wait for, not a synchronisation
        jobs = self.active_jobs
        if jobs:
            await tell_calls_goodbye(jobs, self._settings, self._goodbye_key)


async def prepare_database(url: str) -> None:
    """Create or migrate the schema once, before any call: calls then only read and write.

    A database that is down must not stop the phone from being answered: we say so once,
    loudly, and calls go on as unknown callers without records until it is back.
    """

    async def migrate() -> None:
        db = await open_database(url)
        await db.close()

    try:
        await asyncio.wait_for(migrate(), timeout=MIGRATE_TIMEOUT_S)
    except Exception as e:
        logger.error(
            "the database is not usable; calls go on without caller lookup and records: %s",
            type(e).__name__,
        )


class _ConnectErrors(logging.Filter):
    """Keeps the error of the framework's last failed connection attempt, which it only
    logs ("failed to connect to livekit, retrying", the exception in the record's
    ``error``); lets every record through."""

    def __init__(self) -> None:
        super().__init__()
        self.last: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        error = getattr(record, "error", None)
        if isinstance(error, BaseException) and record.getMessage().startswith(
            "failed to connect to livekit"
        ):
            self.last = error
        return True


@dataclass(frozen=True)
class Prewarm:
    """Each job process, before its call: the VAD, and what the call's models share.

    A picklable value, not a closure: the framework sends it to every job process, and
    with it the worker's goodbye key (``call.shutdown``): the job processes of this
    worker, and nobody else, can check what the worker signs."""

    ai: AiSettings
    metrics_dir: Path | None = None  # the Prometheus folder, when metrics are on
    goodbye_key: bytes = field(default_factory=new_goodbye_key, repr=False)

    def __call__(self, proc: JobProcess) -> None:
        proc.userdata["vad"] = silero.VAD.load()
        proc.userdata[GOODBYE_KEY] = self.goodbye_key
        warm_process(self.ai)
        if self.metrics_dir is not None:
            forget_dead(self.metrics_dir)


def build_server(settings: Settings) -> SwitchboardServer:
    """The worker as the settings describe it, its prewarm set."""
    s = settings.server
    metrics = _metrics_dir(settings)
    prewarm = Prewarm(settings.ai, metrics)
    server = SwitchboardServer(
        settings,
        prewarm.goodbye_key,
        job_executor_type=JobExecutorType(s.job_executor),
        port=s.worker_port,
        load_threshold=s.load_threshold,
        load_fnc=_calls_load,
        preload_modules=PRELOAD_MODULES,
        # The framework's default in console and dev is DEBUG, which floods the terminal
        # with every SQL statement; --log-level or LIVEKIT_LOG_LEVEL still ask for more.
        log_level="INFO",
        **(
            {"prometheus_port": s.metrics_port, "prometheus_multiproc_dir": str(metrics)}
            if metrics
            else {}
        ),
    )

    server.setup_fnc = prewarm
    if s.idle_processes:
        # Each call runs in its own process; a call with no warm process waits for one.
        server.update_options(num_idle_processes=s.idle_processes)
    return server


def _metrics_dir(settings: Settings) -> Path | None:
    """Where the call processes write their metrics, or None: metrics off. With it, the
    framework serves its Prometheus endpoint in multiprocess mode: it sets
    PROMETHEUS_MULTIPROC_DIR before the forkserver starts, so every call process writes
    there (``call.metrics``), and it sums the folder on each scrape."""
    s = settings.server
    if not s.metrics_port:
        return None
    # A fixed default, not a temporary folder: agent.py builds the server again in each
    # job process, which must name the same folder.
    return s.metrics_dir or settings.data.state_dir / f"metrics-{s.agent_name}"


def _calls_load(worker: AgentServer) -> float:
    # Reported to the server, which sends calls to the least loaded worker: counted in
    # calls, so a CPU spike on a small machine does not turn a caller away.
    return cast(SwitchboardServer, worker).calls_load()
