"""A worker shutting down (SIGTERM during a deploy) never cuts a call silently.

The framework drains on SIGTERM: it takes no new call and waits up to the drain timeout
for the calls in progress, then stops their processes, whatever they were saying. Job
processes hear nothing of the drain, so the worker tells each call itself, through the
server: a data message on ``GOODBYE_TOPIC`` to the call's agent, which says the goodbye
prompt, lets it play out and hangs up.

- ``finish`` (default): calls go on; those still running ``GOODBYE_LEAD_S`` before the
  drain timeout ends hear the goodbye, so none is cut mid-sentence.
- ``goodbye``: every call in progress hears it at once; the worker stops soon after.

Who may ask: the message is signed (``goodbye_message``). "Sent by no participant" is not
proof that the server sent it: the SDK reports no sender for a *hidden* participant too,
and any token with a room-admin grant can call the server's SendData. So the worker signs
each message with HMAC-SHA256 under a key it draws at random when it starts and hands
to its job processes in their prewarm (``Prewarm``), over the call's room SID, its job ID
and the time. Not a key derived from ``LIVEKIT_API_SECRET``: every holder of the
project's secret (other services, operators minting tokens) could sign with that, and
the secret sits in the environment; the random key never leaves this worker and its
own processes, and is gone when the worker stops. The room SID and job ID bind a
message to one call, and ``GOODBYE_VALID_S`` bounds how long one stays good: a message
is sent only to the call's agent, so no participant sees one to replay it anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence

from livekit import api, rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.job import RunningJobInfo

from switchboard.call.event_types import ShutdownGoodbye, ShutdownIgnored
from switchboard.call.hangup import say_then_hang_up_soon
from switchboard.call.state import CallState
from switchboard.config.settings import Settings

logger = logging.getLogger("switchboard.shutdown")

GOODBYE_TOPIC = "switchboard.shutdown-goodbye"
# Long enough for the goodbye (about 6 s in the offline voice) and the hang-up.
GOODBYE_LEAD_S = 15.0
# A signed message is good this long (either way: the worker and its jobs share a clock,
# so this only absorbs the delivery through the server on a busy machine).
GOODBYE_VALID_S = 30.0
# A message longer than this is not ours: not even parsed.
_MAX_MESSAGE = 512
# Ignored messages reported per call: enough to see an attempt, too few to fill a disk.
_REPORTED = 20
# Where the prewarm leaves the worker's key in each job process's ``proc.userdata``.
GOODBYE_KEY = "switchboard.goodbye_key"


def goodbye_delay(mode: str, drain_timeout: float) -> float | None:
    """Seconds after the drain starts at which calls still running hear the goodbye;
    None when they never do (``finish`` with no drain deadline: they may run forever)."""
    if mode == "goodbye":
        return 0.0
    if drain_timeout <= 0:
        return None
    return max(0.0, drain_timeout - GOODBYE_LEAD_S)


def new_goodbye_key() -> bytes:
    """A worker's signing key: random, drawn at start, never written anywhere."""
    return secrets.token_bytes(32)


def _signature(key: bytes, room_sid: str, job_id: str, at: float) -> str:
    signed = json.dumps([GOODBYE_TOPIC, room_sid, job_id, at]).encode()
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def goodbye_message(key: bytes, room_sid: str, job_id: str, at: float) -> bytes:
    """The signed message that asks one call (its room SID and job ID) to say goodbye."""
    sig = _signature(key, room_sid, job_id, at)
    return json.dumps({"room": room_sid, "job": job_id, "at": at, "sig": sig}).encode()


def is_genuine_goodbye(
    key: bytes | None, data: bytes, *, room_sid: str, job_id: str, now: float
) -> bool:
    """Whether ``data`` was signed by our worker for this very call, recently."""
    if key is None or len(data) > _MAX_MESSAGE:
        return False
    try:
        message = json.loads(data)
        at, sig = message["at"], message["sig"]
        ours = message["room"] == room_sid and message["job"] == job_id
    except (ValueError, TypeError, KeyError):
        return False
    if not (ours and isinstance(at, float | int) and isinstance(sig, str)):
        return False
    if abs(now - at) > GOODBYE_VALID_S:
        return False
    return hmac.compare_digest(sig, _signature(key, room_sid, job_id, float(at)))


def is_shutdown_request(topic: str | None, sender: object | None) -> bool:
    """A candidate only: the server API sends data from no participant, so a message
    from a participant the SDK can see (a caller's app, a dialled leg) is never obeyed.
    A hidden participant looks like the server here: the signature decides."""
    return topic == GOODBYE_TOPIC and sender is None


async def tell_calls_goodbye(
    jobs: Sequence[RunningJobInfo], settings: Settings, key: bytes
) -> None:
    """Ask every call's agent, through the server, to say goodbye and hang up."""
    s = settings.server
    async with api.LiveKitAPI(s.url, s.api_key, s.api_secret) as lk:
        results = await asyncio.gather(
            *(_ask(lk, job, key) for job in jobs), return_exceptions=True
        )
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


async def _ask(lk: api.LiveKitAPI, job: RunningJobInfo, key: bytes) -> None:
    await lk.room.send_data(
        api.SendDataRequest(
            room=job.job.room.name,
            data=goodbye_message(key, job.job.room.sid, job.job.id, time.time()),
            kind=api.DataPacket.Kind.RELIABLE,
            destination_identities=[job.accept_arguments.identity],
            topic=GOODBYE_TOPIC,
        )
    )


def listen_for_shutdown(
    ctx: JobContext, session: AgentSession[CallState], state: CallState, key: bytes | None
) -> None:
    """In the call's process: say goodbye and hang up when the worker asks.

    ``key`` is the worker's (``GOODBYE_KEY`` in the process's userdata); without one,
    no message is obeyed."""
    room_sid, job_id = ctx.job.room.sid, ctx.job.id
    ignored = 0

    def ignore(reason: str) -> None:
        nonlocal ignored
        ignored += 1
        if ignored <= _REPORTED:
            logger.warning("ignored a shutdown message (%s)", reason)
            state.events.emit(ShutdownIgnored(reason=reason))

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic != GOODBYE_TOPIC:
            return
        if not is_shutdown_request(packet.topic, packet.participant):
            ignore("participant")
            return
        if not is_genuine_goodbye(
            key, packet.data, room_sid=room_sid, job_id=job_id, now=time.time()
        ):
            ignore("unsigned")  # a hidden participant, or a room admin's SendData
            return
        if state.ended:
            return  # already ending
        state.ended = True
        state.events.emit(ShutdownGoodbye())
        say_then_hang_up_soon(ctx, session, state, state.prompts["shutdown_goodbye"], "shutdown")

    ctx.room.on("data_received", on_data)
