"""Warm transfer: the caller holds while the agent calls the person, briefs them, and, once
they agree, connects the two and drops out.

The framework's WarmTransferTask does the work: hold music and the caller's audio off, a
side room where a second session talks with the person, MoveParticipant to bring them into
the caller's room. We add what a phone line needs around it:
- the dial-out policy and the call's trunk, ring timeout and DTMF, as for any dial;
- the briefing starts as soon as the person answers (the framework waits for them to speak
  first; someone who picks up and waits would hear silence, and so would the caller);
- nothing is left ringing or connected when the transfer fails or the caller hangs up;
- a merge that completes where MoveParticipant does not exist (below);
- one outcome word, in the call record, with the merge's mechanism.

The merge. LiveKit Cloud moves the person's SIP leg into the caller's room
(MoveParticipant): the agent is then out of the audio path. The open-source livekit-server
(v1.13.5 checked) answers "not implemented", so there the agent bridges the two rooms: it
forwards the person's audio into the caller's room and the caller's into the person's
(``switchboard.call.bridge``), and stays until either hangs up. Why not dial the person
into the caller's own room and keep the briefing private with subscriptions instead: the
server can only unsubscribe a participant from a track that exists already
(UpdateSubscriptions takes track SIDs), the SIP service subscribes each leg to every new
audio track the moment it is published (livekit-sip v1.8.0, room.go), and only the
publisher can restrict who subscribes to its own track; so the caller would hear the
person's first words before any unsubscribe could land, and the person the caller's.
The bridge keeps each side's audio in its own room until the merge, with no race, at the
cost of the agent's process staying in the media path (the measured delay is in the
README). The mechanism is tried in that order on every transfer, so a server that gains
MoveParticipant is used as such without a setting.
"""

# No `from __future__ import annotations`, as in the other tools modules.
import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from livekit import api, rtc
from livekit.agents import AgentSession, RunContext, ToolError, get_job_context
from livekit.agents.beta.workflows import WarmTransferTask
from livekit.agents.beta.workflows.utils import WorkflowInstructions

from switchboard.call.bridge import AudioBridge
from switchboard.call.context import call_details
from switchboard.call.dial_gate import pass_dial_gate
from switchboard.call.event_types import ToolCalled
from switchboard.call.state import CallState
from switchboard.config.prompts import render_instructions
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing import outcomes as dialing
from switchboard.dialing.policy import Destination, DialPolicy, Named

logger = logging.getLogger("switchboard.tools")

HUMAN_IDENTITY = "human-agent-sip"  # the framework's identity for the person's SIP leg
# How long cleanup waits for a dial still in flight to settle, beyond the ring timeout.
SETTLE_MARGIN_S = 15.0
CONTINUE = "The caller is back on the line with you: tell them, and offer other help."


@dataclass(frozen=True, slots=True)
class WarmOutcome:
    kind: str
    spoken: str  # what the model is told happened, to tell the caller

    @property
    def result(self) -> str:
        """The call record's word for it."""
        return "warm_transferred" if self is TRANSFERRED else f"warm_failed: {self.kind}"


def _as_warm(outcome: dialing.Outcome) -> WarmOutcome:
    # A failed call to the person is a dial like any other: the same words (one table).
    return WarmOutcome(outcome.kind, outcome.spoken)


TRANSFERRED = WarmOutcome("transferred", "")
NO_ANSWER = _as_warm(dialing.NO_ANSWER)
BUSY = _as_warm(dialing.outcome_for_status(486))
REFUSED = _as_warm(dialing.outcome_for_status(603))
UNREACHABLE = _as_warm(dialing.outcome_for_status(404))
FAILED = _as_warm(dialing.FAILED)
DECLINED = WarmOutcome("declined", "They could not take the call right now.")
VOICEMAIL = WarmOutcome("voicemail", "The call reached a voicemail.")
HUMAN_LEFT = WarmOutcome("human_left", "They hung up before the caller could be connected.")
MERGE_UNAVAILABLE = WarmOutcome(
    "merge_unavailable", "They answered, but this phone system could not join the two calls."
)
MERGE_FAILED = WarmOutcome("merge_failed", "They answered, but the two calls could not be joined.")
# How a merge went through, in the record after warm_transferred.
MOVED = "moved"  # MoveParticipant: the person's leg joined the caller's room
BRIDGED = "bridged"  # the agent carries the audio between the two rooms
CALLER_LEFT = WarmOutcome("caller_left", "The caller hung up while on hold.")
CALL_ENDED = WarmOutcome("call_ended", "The call ended during the transfer.")
_BY_DIAL_KIND = {o.kind: o for o in (NO_ANSWER, BUSY, REFUSED, UNREACHABLE, FAILED)}


def outcome_for_dial_error(error: BaseException, last_call_status: str | None) -> WarmOutcome:
    """What a failed call to the person means: as for any dial (switchboard.dialing)."""
    return _BY_DIAL_KIND.get(dialing.outcome_for_dial_error(error, last_call_status).kind, FAILED)


def outcome_for_task_error(message: str) -> WarmOutcome:
    """The framework ends the task with a ToolError whose text says why; ours say it
    first (WarmTransfer.outcome), so this reads only the framework's own endings."""
    if message.startswith("human agent declined"):
        return DECLINED
    if message.startswith("voicemail"):
        return VOICEMAIL
    if message.startswith("room closed"):  # the person hung up: their side room closed
        return HUMAN_LEFT
    if message.startswith("AgentTask") and message.endswith("cancelled"):
        return CALL_ENDED  # the caller's session closed under the task
    return FAILED


def is_merge_unsupported(error: BaseException) -> bool:
    """livekit-server answers MoveParticipant with "not implemented" (an internal error)."""
    return "not implemented" in str(error).lower() or getattr(error, "code", "") == "unimplemented"


class WarmTransfer(WarmTransferTask):
    """WarmTransferTask with our policy around it; ``outcome`` says how it ended when one
    of our own checks ended it (else the framework's ToolError text does)."""

    def __init__(
        self,
        *,
        caller_identity: str,
        sip_call_to: str,
        sip_trunk_id: str,
        dtmf: str | None,
        ring_timeout: float,
        instructions: WorkflowInstructions,
    ) -> None:
        super().__init__(
            sip_call_to=sip_call_to,
            sip_trunk_id=sip_trunk_id,
            dtmf=dtmf,
            ringing_timeout=ring_timeout,
            instructions=instructions,
        )
        self.outcome: WarmOutcome | None = None
        self._caller_identity = caller_identity
        self._ring_timeout = ring_timeout
        self._side_room: str | None = None
        self._side_connection: rtc.Room | None = None  # our own, in the side room
        self._dialling: asyncio.Future[None] | None = None
        self._hangup: asyncio.Future[None] | None = None
        self._merged = False
        self._watched: rtc.Room | None = None
        self._person_status: str | None = None  # the person's last sip.callStatus
        self.mechanism: str | None = None  # how the merge went through: MOVED or BRIDGED
        self._bridge: AudioBridge | None = None
        self._side_session: AgentSession[Any] | None = None  # kept open while bridged

    def _on_side_attributes(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        # A leg that rang and timed out was not answered; one that never rang is unreachable.
        if participant.identity == HUMAN_IDENTITY and "sip.callStatus" in changed:
            self._person_status = changed["sip.callStatus"]

    async def on_enter(self) -> None:
        job = get_job_context()
        self._watched = job.room
        job.room.on("participant_disconnected", self._on_caller_room_left)
        job.room.on("disconnected", self._on_caller_room_closed)
        # Whatever ends this job (the caller hanging up, the room deleted, the worker
        # stopping), the person's leg must not outlive it.
        job.add_shutdown_callback(self._on_job_shutdown)
        await super().on_enter()  # returns once the person answered, or the dial failed
        if not self.done() and self._human_agent_sess is not None:
            # Product choice: brief as soon as they answer. The framework waits for the
            # person to speak first; someone who picks up and waits would hear silence.
            self._human_agent_sess.generate_reply()

    def detach(self) -> None:
        """Stop watching the caller's room (the transfer is over, one way or another)."""
        if self._watched is not None:
            self._watched.off("participant_disconnected", self._on_caller_room_left)
            self._watched.off("disconnected", self._on_caller_room_closed)
            self._watched = None

    async def _originate_human_agent(
        self, *, room_name: str, identity: str, room: rtc.Room
    ) -> None:
        self._side_room, self._side_connection = room_name, room
        room.on("participant_attributes_changed", self._on_side_attributes)
        # Shielded: if the call ends while the phone rings, this task is cancelled but the
        # SIP service goes on dialling; cleanup waits for the dial to settle, then hangs up.
        dial = asyncio.ensure_future(
            super()._originate_human_agent(room_name=room_name, identity=identity, room=room)
        )
        dial.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
        self._dialling = dial
        try:
            await asyncio.shield(dial)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.outcome = self.outcome or outcome_for_dial_error(e, self._person_status)
            logger.info("warm transfer: the call to the person failed (%s)", self.outcome.kind)
            raise

    async def _merge_calls(self) -> None:
        try:
            await super()._merge_calls()
            self.mechanism = MOVED
        except Exception as e:
            if not is_merge_unsupported(e):
                await self._merge_failed(MERGE_FAILED, f"MoveParticipant failed ({e})")
            logger.info("warm transfer: no MoveParticipant on this server; bridging the rooms")
            try:
                await self._open_bridge()
            except Exception as bridge_error:
                await self._merge_failed(MERGE_UNAVAILABLE, f"the bridge failed ({bridge_error})")
            self.mechanism = BRIDGED
        self._merged = True

    async def _merge_failed(self, outcome: WarmOutcome, why: str) -> None:
        self.outcome = outcome
        logger.error("warm transfer: %s", why)
        await self.hang_up_human()
        self._set_result(ToolError(outcome.spoken))
        # Raised, so that connect_to_caller stops here: what follows it in the framework
        # (deleting the caller's room when anyone leaves) is for a merged call only.
        raise ToolError("The calls could not be joined.") from None

    async def _open_bridge(self) -> None:
        side = self._side_connection
        caller_room = get_job_context().room
        if side is None or self._human_agent_sess is None:
            raise RuntimeError("no side room to bridge")
        bridge = AudioBridge(caller_room, self._caller_identity, side, HUMAN_IDENTITY)
        await bridge.open()
        self._bridge = bridge
        # The side session stays open (closing it deletes the side room, and the person's
        # leg with it) but silent and deaf: the framework's completion would close it.
        session, self._human_agent_sess = self._human_agent_sess, None
        session.input.set_audio_enabled(False)
        session.output.set_audio_enabled(False)
        self._side_session = session
        # The person hanging up ends the call for the caller, as after a move.
        side.on("participant_disconnected", self._on_person_left)

    def _on_person_left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == HUMAN_IDENTITY:
            logger.info("warm transfer: the person hung up; ending the call")
            get_job_context().delete_room()

    def _on_caller_room_left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._caller_identity:
            self._call_over(CALLER_LEFT)

    def _on_caller_room_closed(self, reason: rtc.DisconnectReason.ValueType) -> None:
        # The server closes a room once no caller-side participant is left in it (agents do
        # not hold a room open), which can come before the caller's own leaving event.
        closed = reason == rtc.DisconnectReason.ROOM_CLOSED
        self._call_over(CALLER_LEFT if closed else CALL_ENDED)

    def _call_over(self, outcome: WarmOutcome) -> None:
        if self.done():
            return
        self.outcome = self.outcome or outcome
        self.detach()
        self._start_hang_up()
        with contextlib.suppress(Exception):  # the caller's session may be closing already
            self._set_result(ToolError(outcome.spoken))

    async def _on_job_shutdown(self, _reason: str) -> None:
        if self._bridge is not None:
            await self._bridge.close()
        if not self._merged or self._bridge is not None:
            await self.hang_up_human()

    async def hang_up_human(self) -> None:
        """Delete the side room, which ends the person's SIP leg (a BYE, or a CANCEL while
        it rings). Idempotent; concurrent callers wait for the same hang-up."""
        await asyncio.shield(self._start_hang_up())

    def _start_hang_up(self) -> "asyncio.Future[None]":
        if self._hangup is None:
            self._hangup = asyncio.ensure_future(self._hang_up())
        return self._hangup

    async def _hang_up(self) -> None:
        if self._side_room is None:
            return  # nobody was dialled: the side room holds only our own connection
        if self._side_connection is not None:
            # Our own connection leaves first, so that the deletion does not tear it down
            # under the side session (which logs that as an error).
            with contextlib.suppress(Exception):
                await self._side_connection.disconnect()
        await _delete_room(self._side_room)
        dial = self._dialling
        if dial is not None and not dial.done():
            # The SIP participant joins the side room before it dials; a dial started just
            # before the deletion could re-create the room and be answered in it. Once the
            # dial has settled, delete again so that no answer is left on its own.
            await asyncio.wait({dial}, timeout=self._ring_timeout + SETTLE_MARGIN_S)
            await _delete_room(self._side_room)


async def _delete_room(name: str) -> None:
    try:
        await get_job_context().api.room.delete_room(api.DeleteRoomRequest(room=name))
    except api.TwirpError as e:
        if e.code != api.TwirpErrorCode.NOT_FOUND:
            logger.warning("warm transfer: could not delete the side room (%s)", e.code)
    except Exception as e:
        logger.warning("warm transfer: could not delete the side room (%s)", type(e).__name__)


def briefing(state: CallState, destination: Destination) -> WorkflowInstructions:
    """What the side session is told: our briefing, with the call's details as data (the
    framework's template adds the conversation so far)."""
    details = call_details(state.caller, state.route)
    text = state.prompts["warm_transfer"].replace("{destination}", destination.description)
    return WorkflowInstructions(extra=render_instructions(text, details))


async def warm_transfer(
    context: RunContext[CallState],
    name: str,
    destination: Destination,
    policy: DialPolicy,
    history: SharedDialHistory,
) -> None:
    """Run one warm transfer from the transfer_call tool. Returns when the caller and the
    person are connected (the agent then stays silent); raises ToolError otherwise."""
    state = context.userdata
    if context.session.llm is None:  # keyless mode builds no tools; this is a backstop
        raise ToolError("I can't transfer you there right now.")
    no_trunk = "I can't transfer you there from this line."
    decision = await pass_dial_gate(
        state, Named(name), policy, {name: destination}, history, no_trunk=no_trunk
    )
    assert decision.target is not None and state.outbound_trunk_id  # the gate's promise
    context.disallow_interruptions()
    await context.session.say(
        f"I'm calling {destination.description} for you. "
        "Please hold while I tell them what you need.",
        allow_interruptions=False,
    )
    task = WarmTransfer(
        caller_identity=state.caller.identity,
        sip_call_to=decision.target,
        sip_trunk_id=state.outbound_trunk_id,
        dtmf=decision.dtmf,
        ring_timeout=state.ring_timeout,
        instructions=briefing(state, destination),
    )
    outcome: WarmOutcome | None = None
    state.on_hold = True  # the caller's key presses are not the task's to act on
    try:
        await task
        outcome = TRANSFERRED
    except ToolError as e:
        outcome = task.outcome or outcome_for_task_error(str(e))
    except Exception:
        logger.exception("warm transfer failed")
        outcome = task.outcome or FAILED
    finally:
        state.on_hold = False
        task.detach()
        # Cancelled (the call ended under us): still one record of how the transfer ended.
        outcome = outcome or task.outcome or CALL_ENDED
        result = outcome.result
        if outcome is TRANSFERRED and task.mechanism:
            result += f": {task.mechanism}"
        state.events.emit(
            ToolCalled(tool="transfer_call", arguments={"destination": name}, result=result)
        )
    if outcome is not TRANSFERRED:
        raise ToolError(
            f"The transfer to {destination.description} did not go through. "
            f"{outcome.spoken} {CONTINUE}"
        )
    state.transferred_to = name
    state.on_hold = True  # handed over: the caller's keys are for the person now, not us
    # The caller and the person talk now. The agent goes silent rather than closing its
    # session: the session deletes the room when it closes (call.py), which would end the
    # call it has just connected. It leaves with the room, when either of them hangs up.
    context.session.input.set_audio_enabled(False)
    context.session.output.set_audio_enabled(False)
