"""A worker shutting down (SIGTERM during a deploy) never cuts a call silently.

The framework drains on SIGTERM: it takes no new call and waits up to the drain timeout
for the calls in progress, then stops their processes, whatever they were saying. Job
processes hear nothing of the drain, so the worker tells each call itself, through the
server: a data message on ``GOODBYE_TOPIC`` to the call's agent, which says the goodbye
prompt, lets it play out and hangs up.

- ``finish`` (default): calls go on; those still running ``GOODBYE_LEAD_S`` before the
  drain timeout ends hear the goodbye, so none is cut mid-sentence.
- ``goodbye``: every call in progress hears it at once; the worker stops soon after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from livekit import api, rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.job import RunningJobInfo

from switchboard.call.event_types import ShutdownGoodbye
from switchboard.call.hangup import say_then_hang_up_soon
from switchboard.call.state import CallState
from switchboard.config.settings import Settings

logger = logging.getLogger("switchboard.shutdown")

GOODBYE_TOPIC = "switchboard.shutdown-goodbye"
# Long enough for the goodbye (about 6 s in the offline voice) and the hang-up.
GOODBYE_LEAD_S = 15.0


def goodbye_delay(mode: str, drain_timeout: float) -> float | None:
    """Seconds after the drain starts at which calls still running hear the goodbye;
    None when they never do (``finish`` with no drain deadline: they may run forever)."""
    if mode == "goodbye":
        return 0.0
    if drain_timeout <= 0:
        return None
    return max(0.0, drain_timeout - GOODBYE_LEAD_S)


def is_shutdown_request(topic: str | None, sender: object | None) -> bool:
    """Only the server API sends data from no participant: a message from anyone in the
    room (a caller's app, a dialled leg) is never obeyed, whatever its topic."""
    return topic == GOODBYE_TOPIC and sender is None


async def tell_calls_goodbye(jobs: Sequence[RunningJobInfo], settings: Settings) -> None:
    """Ask every call's agent, through the server, to say goodbye and hang up."""
    s = settings.server
    async with api.LiveKitAPI(s.url, s.api_key, s.api_secret) as lk:
        results = await asyncio.gather(*(_ask(lk, job) for job in jobs), return_exceptions=True)
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, BaseException):
            # The call may have just ended; otherwise it is cut when the drain times out.
            logger.warning(
                "could not tell a call goodbye: %s",
                result,
                extra={"room": job.job.room.name, "job_id": job.job.id},
            )
        else:
            logger.info(
                "told a call goodbye", extra={"room": job.job.room.name, "job_id": job.job.id}
            )


async def _ask(lk: api.LiveKitAPI, job: RunningJobInfo) -> None:
    await lk.room.send_data(
        api.SendDataRequest(
            room=job.job.room.name,
            data=b"worker shutting down",
            kind=api.DataPacket.Kind.RELIABLE,
            destination_identities=[job.accept_arguments.identity],
            topic=GOODBYE_TOPIC,
        )
    )


def listen_for_shutdown(
    ctx: JobContext, session: AgentSession[CallState], state: CallState
) -> None:
    """In the call's process: say goodbye and hang up when the worker asks."""

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic != GOODBYE_TOPIC:
            return
        if not is_shutdown_request(packet.topic, packet.participant):
            who = packet.participant.identity if packet.participant else "?"
            logger.warning("ignored a shutdown message from participant %s", who)
            return
        if state.ended:
            return  # already ending
        state.ended = True
        state.events.emit(ShutdownGoodbye())
        say_then_hang_up_soon(ctx, session, state, state.prompts["shutdown_goodbye"], "shutdown")

    ctx.room.on("data_received", on_data)
