"""The route's keypad menu on a call no AI can take: keyless mode, or every provider down
mid-call. The caller presses a key and is handed to the destination it names; the words
and the decisions are ``switchboard.menu``'s.

Every choice goes through the dial gate (the route's policy and its limits, the
restricted-number checks), as the agent's own transfers do: a key is never a way round
the policy. A cold destination gets a SIP REFER; a warm one (``warm = true``) has no model
to brief the person here, so the person is dialled into the caller's own room and the two
talk directly, the agent silent (either one hanging up ends the call).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from livekit import api
from livekit.agents import AgentSession, JobContext, ToolError

from switchboard.call.caller_watch import REFER_SETTLE_S, CallerWatch
from switchboard.call.dial_gate import pass_dial_gate
from switchboard.call.event_types import AgentSaid, ToolCalled
from switchboard.call.hangup import hang_up
from switchboard.call.keypad import DtmfCollector
from switchboard.call.state import CallState
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing import outcomes as dialing
from switchboard.dialing.policy import Destination, DialPolicy, Named
from switchboard.menu import (
    MISSES_ALLOWED,
    WORDS,
    Menu,
    Step,
    after_key,
    choice_result,
    menu_text,
    spoken_name as spoken,
    words_for,
)

logger = logging.getLogger("switchboard.call")

# The record's name for the menu's outcome (``menu: 1 → sales``, ``menu: no choice``).
MENU_RECORD = "menu"
CONNECTED_PREFIX = "menu-"  # the identity of a person dialled in from the menu


async def run_menu(
    ctx: JobContext,
    session: AgentSession[CallState],
    keys: DtmfCollector,
    state: CallState,
    menu: Menu,
    policy: DialPolicy,
    destinations: Mapping[str, Destination],
    history: SharedDialHistory,
) -> None:
    """Play the menu until the caller is handed over, or has missed it twice (then a
    goodbye, and the call ends). Returns with the caller handed over, or the call ended."""
    route = state.route
    words = words_for(route.language) or WORDS["en"]
    if session.input.audio is not None:
        session.input.set_audio_enabled(False)  # keys only: nothing said reaches a model
    text = menu_text(menu, route.language)
    misses = plays = 0
    try:
        while True:
            await _say(session, state, text)
            plays += 1
            key = await keys.read(state.caller.identity, 1, terminator=None, timeout_s=menu.timeout)
            step = after_key(menu, key, misses=misses, plays=plays)
            misses = step.misses
            if step.step is Step.REPEAT:
                continue
            if step.step is Step.CHOSEN and step.destination is not None:
                name = step.destination
                state.events.emit(ToolCalled(tool=MENU_RECORD, result=choice_result(key, name)))
                if await _hand_over(ctx, session, state, name, destinations, policy, history):
                    return
                await _say(session, state, words.unavailable.format(name=spoken(name)))
                misses += 1  # an unreachable choice counts: the menu is not replayed forever
                if misses < MISSES_ALLOWED:
                    continue
            else:
                state.events.emit(ToolCalled(tool=MENU_RECORD, result=choice_result(key, None)))
            await _say(session, state, words.goodbye)
            await hang_up(ctx, state, "menu", "no choice in the menu")
            return
    except RuntimeError:
        return  # the session closed under us: the caller hung up


async def _hand_over(
    ctx: JobContext,
    session: AgentSession[CallState],
    state: CallState,
    name: str,
    destinations: Mapping[str, Destination],
    policy: DialPolicy,
    history: SharedDialHistory,
) -> bool:
    """Transfer the caller to ``name``; False (nothing dialled, or nobody reached) when
    the policy refuses it or it fails."""
    target = destinations.get(name)
    if target is None:  # checked at start (policy_problems): a backstop
        logger.error("menu: no destination %s", name)
        return False
    words = words_for(state.route.language) or WORDS["en"]
    try:
        decision = await pass_dial_gate(
            state,
            Named(name),
            policy,
            {name: target},
            history,
            no_trunk="",
            needs_trunk=target.warm,
        )
    except ToolError:
        logger.info("menu: the policy refused destination %s; not dialled", name)
        return False
    await _say(session, state, words.connecting.format(name=spoken(name)))
    if target.warm:
        return await _dial_in(session, state, name, decision.target or "", decision.dtmf)
    return await _refer(ctx, state, name, target)


async def _refer(ctx: JobContext, state: CallState, name: str, target: Destination) -> bool:
    """A cold transfer: the caller's network connects them, and they leave the room."""
    watch = CallerWatch(ctx.room, state.caller.identity, on_gone=lambda: None)
    try:
        await state.server().sip.transfer_sip_participant(
            api.TransferSIPParticipantRequest(
                room_name=state.room_name,
                participant_identity=state.caller.identity,
                transfer_to=target.sip_uri or f"tel:{target.number}",
                play_dialtone=False,
            )
        )
    except Exception as e:
        # As for the transfer tool: the leg ending is the REFER's real outcome.
        if not await watch.gone_within(REFER_SETTLE_S):
            logger.warning("menu: transfer to %s failed (%s)", name, type(e).__name__)
            _transfer_record(state, name, "failed")
            return False
    finally:
        watch.close()
    state.transferred_to = name
    _transfer_record(state, name, "transferred")
    return True


async def _dial_in(
    session: AgentSession[CallState], state: CallState, name: str, to: str, dtmf: str | None
) -> bool:
    """A warm destination from the menu: the person is dialled into the caller's room,
    where the two hear each other directly; the agent goes silent and stays as the call's
    keeper (either one leaving ends the call, ``lifecycle``)."""
    identity = CONNECTED_PREFIX + name
    assert state.outbound_trunk_id  # the gate's promise for a dial that needs a trunk
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=state.outbound_trunk_id,
        sip_call_to=to,
        room_name=state.room_name,
        participant_identity=identity,
        wait_until_answered=True,
        dtmf=dtmf or "",
    )
    request.ringing_timeout.FromNanoseconds(int(state.ring_timeout * 1e9))
    # Registered before the answer: a person who hangs up at once still ends the call.
    state.connected.append(identity)
    try:
        await state.server().sip.create_sip_participant(request)
    except Exception as e:
        state.connected.remove(identity)
        outcome = dialing.outcome_for_dial_error(e, state.call_statuses.get(identity))
        logger.info("menu: the call to %s failed (%s)", name, outcome.kind)
        _transfer_record(state, name, f"warm_failed: {outcome.kind}")
        return False
    state.transferred_to = name
    state.on_hold = True  # the caller's keys are for the person now
    session.output.set_audio_enabled(False)
    _transfer_record(state, name, "warm_transferred: dialled_in")
    return True


def _transfer_record(state: CallState, name: str, result: str) -> None:
    state.events.emit(
        ToolCalled(tool="transfer_call", arguments={"destination": name}, result=result)
    )


async def _say(session: AgentSession[CallState], state: CallState, text: str) -> None:
    # Not interruptible: the caller answers with keys, which the collector keeps meanwhile.
    handle = session.say(text, allow_interruptions=False, add_to_chat_ctx=False)
    state.events.emit(AgentSaid(text=text))
    await handle.wait_for_playout()
