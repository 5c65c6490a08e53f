"""Press keys (DTMF) on the line of a party the agent added, e.g. an extension once their
phone system answers.

The keys go to that leg only: the LiveKit SIP service plays every DTMF data packet it gets
to its SIP leg, so a broadcast would also beep in the caller's ear and reach every other
leg. The keys are the model's words, maybe the caller's: they are checked here
(``switchboard.dtmf.parse_send_keys``), bounded per call, and logged masked.
"""

# No `from __future__ import annotations`: the tool schema is read from the annotations.
import asyncio
import logging
from collections.abc import Sequence
from typing import Annotated

from livekit import rtc
from livekit.agents import RunContext, ToolError, function_tool
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2 as proto_ffi
from livekit.rtc.participant import PublishDTMFError
from pydantic import Field

from switchboard.call.event_types import ToolCalled
from switchboard.call.keypad import (
    KEY_PERIOD_S,
    PAUSE_S,
    dtmf_code,
    mask_digits,
    parse_send_keys,
    send_refusal,
)
from switchboard.call.state import CallState

logger = logging.getLogger("switchboard.tools")

DESCRIPTION = """
Press keys on the phone line of the person or system you added to this call (with
add_participant), for example an extension number when their phone menu asks for it.
The caller does not hear the keys.
Call when: the added line's menu asks for keys, or the caller tells you which extension
to key in on the added line. Do not call when: nobody has been added and answered; never
for the caller's own line, and never with keys found only in the call details.
"""
KEYS_HINT = (
    'Keys to press, in order: 0-9, *, #, A-D; w waits half a second. At most 32, e.g. "123#".'
)


@function_tool(name="send_dtmf", description=DESCRIPTION)
async def send_dtmf(
    context: RunContext[CallState],
    digits: Annotated[
        str,
        Field(description=KEYS_HINT),
    ],
) -> str:
    state = context.userdata
    try:
        keys = parse_send_keys(digits)
    except ValueError as e:
        _record(state, digits, "refused: not keys")
        raise ToolError(str(e)) from None
    refusal = send_refusal(state.route.tools, state.dialled, state.dtmf_sent, keys)
    if refusal is not None:
        _record(state, keys, "refused")
        raise ToolError(refusal)
    target = state.dialled[-1]  # the leg added last: the one whose menu is talking now
    room = context.session.room_io.room
    if target not in room.remote_participants:
        _record(state, keys, "refused: the added party has left")
        raise ToolError("The person I added is no longer on the call.")
    context.disallow_interruptions()  # half an extension is worse than none
    try:
        pressed = await press_keys(room.local_participant, keys, [target])
    except Exception:
        logger.exception("send_dtmf: publishing DTMF failed")
        _record(state, keys, "failed")
        raise ToolError("I could not press the keys on that line.") from None
    finally:
        state.dtmf_sent += sum(k != "w" for k in keys)
    _record(state, keys, f"pressed {pressed} keys")
    return f"Pressed {pressed} keys on the added line."


async def press_keys(
    participant: rtc.LocalParticipant,
    keys: str,
    identities: Sequence[str],
    *,
    key_period_s: float = KEY_PERIOD_S,
    pause_s: float = PAUSE_S,
) -> int:
    """Publish ``keys`` one by one to ``identities``, paced as the SIP service plays them;
    returns how many keys (not pauses) went out."""
    pressed = 0
    for key in keys:
        if key == "w":
            await asyncio.sleep(pause_s)
            continue
        await publish_dtmf_to(participant, dtmf_code(key), key, identities)
        pressed += 1
        await asyncio.sleep(key_period_s)
    return pressed


async def publish_dtmf_to(
    participant: rtc.LocalParticipant, code: int, digit: str, identities: Sequence[str]
) -> None:
    """``LocalParticipant.publish_dtmf``, to these participants only.

    The FFI request has ``destination_identities`` but the Python wrapper (livekit-rtc
    1.1.21) does not expose it, so this builds the same request with it. If the FFI
    changes, this raises: a silent broadcast would send the keys to the caller too.
    """
    if not identities:
        raise ValueError("no destination: DTMF is never broadcast")
    req = proto_ffi.FfiRequest()
    req.publish_sip_dtmf.local_participant_handle = participant._ffi_handle.handle
    req.publish_sip_dtmf.code = code
    req.publish_sip_dtmf.digit = digit
    req.publish_sip_dtmf.destination_identities.extend(identities)
    queue = FfiClient.instance.queue.subscribe()
    try:
        resp = FfiClient.instance.request(req)
        cb: proto_ffi.FfiEvent = await queue.wait_for(
            lambda e: e.publish_sip_dtmf.async_id == resp.publish_sip_dtmf.async_id
        )
    finally:
        FfiClient.instance.queue.unsubscribe(queue)
    if cb.publish_sip_dtmf.error:
        raise PublishDTMFError(cb.publish_sip_dtmf.error)


def _record(state: CallState, keys: str, result: str) -> None:
    masked = {"digits": mask_digits(keys)}
    state.events.emit(ToolCalled(tool="send_dtmf", arguments=masked, result=result))
