"""A throwaway agent for ``bench.executor``'s isolation run: every call hears a tone, and a
call can be told to fail, to see what that does to the other calls on the same worker.

Not switchboard: no session, no models, nothing of the product, so that only the job
executor (``SWITCHBOARD_JOB_EXECUTOR``: process or thread) differs between two runs.  Each
call connects, publishes a 400 Hz tone from its job's own event loop (what a voice agent's
TTS does: if that loop stops, the caller hears silence), then reads the SIP header
X-Scenario (the lab's AI trunk maps it to the attribute ``scenario``):

- none: the tone plays until the caller hangs up;
- ``fault-raise``: the entrypoint raises, ``FAULT_AFTER`` s after the caller joined;
- ``fault-cpu``: pure-Python CPU for ``BLOCK_SECONDS`` on the job's loop (the interpreter
  still hands the GIL to other threads every 5 ms);
- ``fault-gil``: one C call holding the GIL for about ``BLOCK_SECONDS`` (as a long regex
  or a big ``json.loads`` would);
- ``fault-exit``: ``os._exit(1)``; ``fault-segv``: a segmentation fault (``ctypes``).

It runs against the lab's AI number (agent name LAB_AI_AGENT_NAME):

    python bench/fault_agent.py start
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import os
import time
from array import array
from collections.abc import Callable

from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType, cli

logger = logging.getLogger("bench.fault_agent")
SAMPLE_RATE = 16000
FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms
FAULT_AFTER = 3.0  # seconds after the caller joined, so both calls are up and heard
BLOCK_SECONDS = 6.0


def _tone() -> rtc.AudioFrame:
    samples = array(
        "h",
        (int(8000 * math.sin(2 * math.pi * 400 * i / SAMPLE_RATE)) for i in range(FRAME_SAMPLES)),
    )
    return rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)


async def _play(source: rtc.AudioSource) -> None:
    frame = _tone()  # 400 Hz: 8 whole periods per 20 ms frame, so frames join smoothly
    while True:
        await source.capture_frame(frame)  # waits while the source's 1 s queue is full


def _busy_python() -> None:
    end = time.monotonic() + BLOCK_SECONDS
    while time.monotonic() < end:
        pass


def _calibrated_sum() -> int:
    """How many integers ``sum(range(n))`` adds in ``BLOCK_SECONDS``: one C call that never
    returns to the interpreter's loop, so it never lets another thread take the GIL."""
    n = 2_000_000
    start = time.perf_counter()
    sum(range(n))
    return int(n * BLOCK_SECONDS / max(time.perf_counter() - start, 1e-6))


def _hold_gil() -> None:
    sum(range(_calibrated_sum()))


def _raise() -> None:
    raise RuntimeError("bench.fault_agent: a call's entrypoint failed (on purpose)")


def _exit() -> None:
    os._exit(1)


def _segv() -> None:
    ctypes.string_at(0)


FAULTS: dict[str, Callable[[], None]] = {
    "fault-raise": _raise,
    "fault-cpu": _busy_python,
    "fault-gil": _hold_gil,
    "fault-exit": _exit,
    "fault-segv": _segv,
}

server = AgentServer(
    job_executor_type=JobExecutorType(os.environ.get("SWITCHBOARD_JOB_EXECUTOR", "process")),
    port=int(os.environ.get("SWITCHBOARD_WORKER_PORT", "0")),
    load_threshold=0.99,
    load_fnc=lambda worker: min(len(worker.active_jobs) / 10, 1.0),
)
server.update_options(num_idle_processes=2)


@server.rtc_session(agent_name=os.environ.get("SWITCHBOARD_AGENT_NAME", "fault"))
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await ctx.room.local_participant.publish_track(track, options)
    tone = asyncio.create_task(_play(source))
    ctx.add_shutdown_callback(lambda: _cancel(tone))
    caller = await ctx.wait_for_participant()
    # The caller hanging up ends the job (the room would outlive it with the agent in it).
    ctx.room.on("participant_disconnected", lambda p: ctx.shutdown("caller left"))
    fault = FAULTS.get(caller.attributes.get("scenario", ""))
    if fault is None:
        return
    await asyncio.sleep(FAULT_AFTER)  # the scenario's schedule, not a synchronisation
    logger.warning("fault %s now (pid %d)", caller.attributes["scenario"], os.getpid())
    fault()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()


if __name__ == "__main__":
    cli.run_app(server)
