"""One call, from dispatch to hang-up: the flow ``agent.py`` runs for every job.

Three steps, in the order a call lives them: identify the caller (never waiting
forever), prepare the call (directory, route, record, providers), then start the session
and greet. Whatever happens after, nothing is left behind: when the caller leaves for any
reason, the session closes, the room is deleted and the job ends (``handlers``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from livekit import api, rtc
from livekit.agents import NOT_GIVEN, AgentSession, JobContext, NotGivenOr, llm, room_io, vad

import switchboard
from switchboard.call import recording as call_recording
from switchboard.call.console import leave_console
from switchboard.call.context import (
    GREET,
    CallAgent,
    build_agent,
    directory_fields,
    known_caller,
)
from switchboard.call.event_types import (
    AgentSaid,
    CallerIdentified,
    CallResumed,
    FirstWordsReady,
    JobStarted,
    NoCaller,
    ProvidersChosen,
    ResumeDeclined,
    RouteChosen,
    SessionClosed,
    SessionStarted,
)
from switchboard.call.events import EventLog
from switchboard.call.faults import LLM_OPTIONS, SESSION_OPTIONS, watch_provider_faults
from switchboard.call.first_words import FirstWords, prepare_first_words
from switchboard.call.handlers import follow_the_call, job_ended, record_transcript, usage_of
from switchboard.call.hangup import hang_up
from switchboard.call.keypad import DtmfCollector, forward_keypresses
from switchboard.call.liveness import CallLease, end_room_with_session, follow_lease, hold_call
from switchboard.call.menu import run_menu
from switchboard.call.metrics import MetricsSink
from switchboard.call.participants import NoCallerError, console_caller, wait_for_caller
from switchboard.call.pin import LockoutCheck, pin_gate
from switchboard.call.pin_lockout import CallerLockout, locked_out_line
from switchboard.call.providers import Providers, build_providers
from switchboard.call.record import Continuation, RecordSink
from switchboard.call.resume import (
    RECORD_BUDGET_S,
    RECORD_WAIT_S,
    CallOver,
    RecordRead,
    Restored,
    ResumeRequest,
    agent_done_metadata,
    apologises,
    chat_context,
    legs_still_here,
    pick_route,
    read_record,
    restore_from,
    resume_request,
    resume_status,
    resumed_line,
)
from switchboard.call.shutdown import GOODBYE_KEY, listen_for_shutdown
from switchboard.call.state import CallState
from switchboard.call.turn_taking import tune_vad, turn_handling
from switchboard.caller import Caller
from switchboard.config.pins import RoutePins
from switchboard.config.policy import PolicyConfig, route_policy
from switchboard.config.prompts import Prompts, localized
from switchboard.config.settings import Settings
from switchboard.data.db import Database, create_database
from switchboard.data.dial_history import SharedDialHistory
from switchboard.data.directory.entry import DirectoryEntry
from switchboard.data.records.model import CallRecord
from switchboard.data.records.query import get_call
from switchboard.data.records.recorder import CallRecorder
from switchboard.dialing.policy import DialHistory
from switchboard.routing import Route, RouteTable, route_for, stt_model_for

logger = logging.getLogger("switchboard.call")

# The tools a route enables (``tools.tools_for``): passed in by agent.py, so the call
# flow does not import the tools that themselves import it.
ToolsFor = Callable[[Route, PolicyConfig, SharedDialHistory], Sequence[llm.Tool | llm.Toolset]]


@dataclass(frozen=True)
class CallConfig:
    """Everything validated at start that every call reads."""

    settings: Settings
    routes: RouteTable
    policy: PolicyConfig
    tools_for: ToolsFor
    prompts: Prompts
    pins: RoutePins  # route name → PIN, read at start; never logged
    # Per job process; a process serves one call at a time, so this bounds one call.
    dial_history: DialHistory = field(default_factory=DialHistory, compare=False)


@dataclass
class Call:
    """A call once prepared: who, which route, and what it runs with."""

    state: CallState
    entry: DirectoryEntry | None
    providers: Providers
    db: Database
    record: RecordSink
    restored: Restored | None = None  # a resumed call's carry-over (``call.resume``)
    opening: str | None = None  # said instead of the greeting (a resumed call's apology)
    lease: CallLease | None = None  # held since the job met its caller (``call.liveness``)


async def handle_call(ctx: JobContext, config: CallConfig, vad_model: vad.VAD) -> None:
    settings = config.settings
    # The room's SID, not its name: dispatch rules put the caller's number in room names.
    events = EventLog(settings.data.events_file, job_id=ctx.job.id, room_id=ctx.job.room.sid)
    ctx.log_context_fields = {"job_id": ctx.job.id}
    ctx.add_shutdown_callback(lambda reason: job_ended(events, reason))
    metrics = MetricsSink()
    events.listeners.append(metrics)
    preloaded = os.getpid() != switchboard.IMPORTED_IN
    agent_name, ai_mode = settings.server.agent_name, settings.ai.mode
    events.emit(
        JobStarted(agent_name=agent_name, ai_mode=ai_mode, preloaded=preloaded, pid=os.getpid())
    )

    caller = await identify_caller(ctx, settings, events)
    if caller is None:
        return
    db = create_database(settings.data.url)  # no I/O until first use
    lease = hold_call(ctx, caller.call_id, db)  # "alive" from here, while the call is prepared
    resume = resume_request(ctx.job.metadata, caller)
    call = await prepare_call(ctx, config, caller, events, resume, db=db, lease=lease)
    if call is None:
        return
    await start_and_greet(ctx, config, call, vad_model, metrics)


async def identify_caller(ctx: JobContext, settings: Settings, events: EventLog) -> Caller | None:
    """The caller (a simulated one in console mode), or None: the job has been ended."""
    try:
        caller = (
            console_caller(settings, run_id=ctx.job.id)
            if ctx.is_fake_job()
            else await wait_for_caller(ctx, settings.calls.participant_timeout)
        )
    except NoCallerError as e:
        logger.warning("%s; ending the job", e)
        events.emit(NoCaller(reason=str(e)))
        ctx.delete_room()
        ctx.shutdown(str(e))
        return None
    events.emit(CallerIdentified(caller=caller.log_fields()))
    return caller


async def prepare_call(
    ctx: JobContext,
    config: CallConfig,
    caller: Caller,
    events: EventLog,
    resume: ResumeRequest | None = None,
    *,
    db: Database,
    lease: CallLease | None = None,
) -> Call | None:
    """Look the caller up (within its budget), route the call, open its record, and build
    the providers the route asks for: all before the first word. A resumed call also reads
    what its record carries over; None: the call needs no agent any more (job ended)."""
    settings = config.settings
    # Read beside the directory's lookup: the caller has waited since their agent was lost.
    read = asyncio.ensure_future(get_call(db, resume.call_id)) if resume else None
    entry = await known_caller(db, caller, settings, events)
    decision = route_for(caller, config.routes, directory_fields(entry))
    route, reason = decision.route, decision.reason
    restored: Restored | None = None
    continues: Continuation | None = None
    found: RecordRead = "none"
    if resume is not None and read is not None:
        record, found = await read_record(read, RECORD_BUDGET_S)
        outcome = restore_from(record)
        if isinstance(outcome, CallOver):
            await _decline(ctx, db, read, events, outcome.why, lease)
            return None
        restored = outcome
        route = pick_route(route, config.routes, restored.route)
        if route is not decision.route:
            reason = f"resumed: the call's record says route {route.name!r}"
        continues = Continuation(read, resume_status(resume.reason), RECORD_WAIT_S)
    stt_model = stt_model_for(route, caller)  # the decision's, unless the record's route
    events.emit(RouteChosen(route=route.name, reason=reason, stt_model=stt_model))
    logger.info("route %s chosen: %s", route.name, reason)
    record_sink = RecordSink(CallRecorder(db), caller, continues)
    events.listeners.append(record_sink)

    providers = build_providers(settings, caller, route)
    events.emit(ProvidersChosen(**providers.describe()))
    state = CallState(
        caller=caller,
        route=route,
        room_name=ctx.room.name,
        agent_identity=ctx.room.local_participant.identity if not ctx.is_fake_job() else "",
        events=events,
        # ctx.api needs a server (console has none: LIVEKIT_URL may be empty there).
        lk=None if ctx.is_fake_job() else ctx.api,
        outbound_trunk_id=settings.calls.outbound_trunk_id,
        ring_timeout=settings.calls.ring_timeout,
        prompts=config.prompts,
    )
    if resume is not None and restored is not None:
        _carry_over(ctx, state, restored, config.dial_history)
        events.emit(
            CallResumed(
                reason=resume.reason,
                attempt=resume.attempt,
                previous_job=resume.previous_job,
                record=found,
                route=route.name,
                turns=len(restored.transcript),
                dial_attempts=restored.dial_attempts,
                pin_verified=restored.pin_verified,
                legs=len(state.dialled),
            )
        )
    opening = None
    if restored is not None and apologises(restored, found):
        opening = resumed_line(config.prompts, route)
    return Call(
        state, entry, providers, db, record_sink, restored=restored, opening=opening, lease=lease
    )


MARK_DONE_TIMEOUT_S = 5.0


def _carry_over(
    ctx: JobContext, state: CallState, restored: Restored, dial_history: DialHistory
) -> None:
    """What the lost job had done that still binds the call: the dials placed (against
    the per-call limit), the legs they added still on the call, and a PIN the record says
    was verified."""
    state.dial_attempts = restored.dial_attempts
    state.pin_verified = restored.pin_verified
    sip = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
    present = {p.identity: p.kind == sip for p in ctx.room.remote_participants.values()}
    state.dialled = legs_still_here(present, restored.dial_attempts)
    call_key = state.caller.call_id or state.room_name  # as the dial gate keys it
    dial_history.carry_over(call_key, restored.dial_attempts, time.time())


async def _decline(
    ctx: JobContext,
    db: Database,
    read: asyncio.Future[CallRecord | None],
    events: EventLog,
    why: str,
    lease: CallLease | None,
) -> None:
    """End a resumed job whose call is over: the room is left as it is (a transferred
    caller may still be in it, with the person they were handed to), marked so that the
    guardian sends no other agent after this one."""
    logger.warning("resume declined: %s; ending the job", why)
    events.emit(ResumeDeclined(reason=why))
    read.cancel()
    update = api.UpdateRoomMetadataRequest(
        room=ctx.room.name, metadata=agent_done_metadata(ctx.room.metadata)
    )
    try:
        await asyncio.wait_for(ctx.api.room.update_room_metadata(update), MARK_DONE_TIMEOUT_S)
    except Exception as e:  # the guardian then tries again, within its budget
        logger.warning("could not mark the room done (%s)", type(e).__name__)
    if lease is not None:
        await lease.close()  # before its database is closed
    await db.close()
    ctx.shutdown(f"resume declined: {why}")


async def start_and_greet(
    ctx: JobContext,
    config: CallConfig,
    call: Call,
    vad_model: vad.VAD,
    metrics: MetricsSink | None = None,
) -> None:
    """Start the session on the caller's audio, pass the PIN gate if the route has one,
    then greet (or, keyless, say so and hang up)."""
    settings, state = config.settings, call.state
    caller, route, events = state.caller, state.route, state.events
    tune_vad(vad_model, route.turn)  # the route's turn-taking (routes.toml [route.turn])
    session: AgentSession[CallState] = AgentSession(
        stt=call.providers.stt or NOT_GIVEN,
        llm=call.providers.llm or NOT_GIVEN,
        tts=call.providers.tts,
        vad=vad_model,
        turn_handling=turn_handling(route.turn),
        userdata=state,
        conn_options=SESSION_OPTIONS,
    )
    follow_the_call(ctx, session, state)
    if metrics is not None:
        metrics.follow(ctx, session, call.providers)
    keys = DtmfCollector(ctx.room)  # from here on, every participant's key presses are kept
    history = SharedDialHistory(call.db, config.dial_history)
    keypad: list[asyncio.Task[None]] = []  # the keypad forwarder, once it runs
    menu = _menu_runner(ctx, session, keys, state, config, history, keypad)
    watch_provider_faults(ctx, session, state, fallback=menu)
    session.on("close", lambda ev: events.emit(SessionClosed(reason=str(ev.reason))))
    session.on("conversation_item_added", lambda ev: record_transcript(events, ev.item))
    session.on("close", lambda _ev: end_room_with_session(ctx, state))
    if call.lease is not None:
        follow_lease(ctx, state, call.lease)

    recording: call_recording.CallRecording | None = None

    async def close_record(reason: str) -> None:
        # The lease was released first (its own shutdown callback, added earlier).
        if recording is not None:
            await recording.close()  # first: the record then says the file is whole
        if state.replaced:
            call.record.abandon()  # the agent that took the call over continues it
        else:
            await call.record.finish(usage_of(session))
        await call.db.close()
        if ctx.is_fake_job():
            leave_console(reason)

    ctx.add_shutdown_callback(close_record)
    tools = () if settings.ai.keyless else config.tools_for(route, config.policy, history)
    # A resumed call whose record says the PIN was verified does not ask for it again.
    needs_pin = bool(route.pin_env) and not state.pin_verified
    # Greeted on entering, unless a PIN comes first, the call is recorded (the greeting
    # waits for the recording to start, and for its consent line), or there is no model
    # to talk with.
    greets = not needs_pin and not settings.ai.keyless
    greet_now = greets and not route.record
    restored = call.restored
    agent = build_agent(
        caller,
        route,
        config.prompts,
        call.entry,
        tools,
        greet_on_enter=greet_now,
        history=chat_context(restored.transcript) if restored else None,
        opening=call.opening,
    )
    # The first words are made while the caller still hears ringing (``first_words``).
    first = await _first_words(config, call, agent, greets)
    if greets:
        agent.first_words = first
    if needs_pin:
        # Nothing the caller says reaches the model before the PIN is right (pin_gate turns
        # it back on); off before start, so there is no gap while the session starts.
        session.input.set_audio_enabled(False)
    await session.start(
        agent=agent,
        room=ctx.room,
        # The room is deleted when the session closes (``end_room_with_session``), unless
        # another agent took the call over.
        room_options=room_io.RoomOptions(participant_identity=caller.identity),
        record=False,
    )
    events.emit(SessionStarted())
    if not ctx.is_fake_job():  # console has no worker to shut down under it
        listen_for_shutdown(ctx, session, state, ctx.proc.userdata.get(GOODBYE_KEY))
    call.record.start(room=ctx.room.name, route=route.name, providers=call.providers.describe())
    recorder = call.record.recorder
    recording = call_recording.prepare(
        session,
        ctx.room,
        route=route,
        settings=settings,
        recorder=recorder,
        events=events,
        caller_identity=caller.identity,
        pin_gate=needs_pin,
    )
    # The agent's recorder starts before the PIN gate (the caller's side held silent over
    # it); an egress, which cannot be silenced, only after.
    record_first = recording is not None or not needs_pin
    call_id = caller.call_id or ctx.job.id  # never the room name: it holds the number

    async def begin_recording() -> None:
        if ctx.is_fake_job():
            return  # console: no call audio to keep, and no server (ctx.api) for an egress
        await call_recording.begin(
            session,
            ctx.api,
            recording,
            route=route,
            settings=settings,
            recorder=recorder,
            events=events,
            room=ctx.room.name,
            call_id=call_id,
        )

    if record_first:
        await begin_recording()
    if needs_pin and not await _pin_ok(ctx, session, keys, state, config, call.db):
        return
    if recording is not None:
        recording.hold_caller(False)
    if not record_first:
        await begin_recording()
    if settings.ai.keyless:
        await (menu() if menu else _keyless_call(ctx, session, state, first))
        return
    keypad.append(_forward_keys(ctx, session, keys, state))
    if not greet_now:
        agent.greet()  # after the PIN gate, or once the recording has started


def _menu_runner(
    ctx: JobContext,
    session: AgentSession[CallState],
    keys: DtmfCollector,
    state: CallState,
    config: CallConfig,
    history: SharedDialHistory,
    keypad: list[asyncio.Task[None]],
) -> Callable[[], Awaitable[None]] | None:
    """The route's keypad menu, for when no AI takes the call; None: the route has none."""
    route_menu = state.route.menu
    if route_menu is None:
        return None
    policy = route_policy(state.route, config.policy)

    async def run() -> None:
        for task in keypad:  # the caller's keys are the menu's now, not the model's
            task.cancel()
        await run_menu(
            ctx, session, keys, state, route_menu, policy, config.policy.destinations, history
        )

    return run


def _forward_keys(
    ctx: JobContext, session: AgentSession[CallState], keys: DtmfCollector, state: CallState
) -> asyncio.Task[None]:
    """Key presses become the caller's words, until the job ends."""
    keypad = asyncio.create_task(
        forward_keypresses(
            session, keys, state.caller.identity, events=state.events, on_hold=lambda: state.on_hold
        )
    )

    async def stop_keypad(_reason: str) -> None:
        keypad.cancel()

    ctx.add_shutdown_callback(stop_keypad)
    return keypad


async def _pin_ok(
    ctx: JobContext,
    session: AgentSession[CallState],
    keys: DtmfCollector,
    state: CallState,
    config: CallConfig,
    db: Database,
) -> bool:
    """The route's PIN gate; a caller who fails it (or whose number is locked out) is told
    goodbye and the call ends."""
    route, events, s = state.route, state.events, config.settings
    verified = await pin_gate(
        session,
        keys,
        state.caller.identity,
        expected=config.pins.get(route.name),
        attempts=route.pin_attempts,
        prompt=route.pin_prompt,
        events=events,
        lockout=LockoutCheck(
            CallerLockout(db, state.caller.phone_number, s.server.api_secret, s.pin_lockout),
            locked_out_line(config.prompts, route),
        ),
    )
    if verified:
        state.pin_verified = True
        return True
    await hang_up(ctx, state, "pin", "PIN not verified")
    return False


async def _first_words(
    config: CallConfig, call: Call, agent: CallAgent, greet_now: bool
) -> FirstWords | None:
    """What the caller hears first, made before the session starts: the greeting (fixed,
    or the model's), or a keyless call's notice. A PIN route asks for the PIN first,
    which the PIN gate says itself."""
    settings, providers = config.settings, call.providers
    if settings.ai.keyless and call.state.route.menu is not None:
        return None  # the route's menu is said instead, built when it is needed
    if settings.ai.keyless:
        text: str | None = localized(call.state.prompts, "keyless", call.state.route.language)
    elif greet_now:
        text = agent.greeting
    else:
        return None
    words = await prepare_first_words(
        voice=providers.tts,
        text=text,
        model=providers.llm,
        instructions=agent.instructions,
        greet=GREET,
        tools=agent.tools,
        conn_options=LLM_OPTIONS,
    )
    if words is not None and words.ready_ms is not None:
        call.state.events.emit(FirstWordsReady(source=words.source, ready_ms=words.ready_ms))
    return words


async def _keyless_call(
    ctx: JobContext, session: AgentSession[CallState], state: CallState, first: FirstWords | None
) -> None:
    """No AI configured: say so honestly, then hang up once the words have been heard."""
    # In the route's language (keyless_es.md for a Spanish route), else English: the
    # same text _first_words made the audio of.
    text, events = localized(state.prompts, "keyless", state.route.language), state.events
    audio: NotGivenOr[AsyncIterator[rtc.AudioFrame]] = NOT_GIVEN
    if first is not None and first.ready_ms is not None:
        audio = first.audio
    elif first is not None:  # late: the session's own voice says it instead
        await first.cancel()
    handle = session.say(text, audio=audio, allow_interruptions=False)
    events.emit(AgentSaid(text=text))
    await handle.wait_for_playout()
    if state.ended:
        return  # cut short by a shutdown goodbye, which hangs up itself
    await hang_up(ctx, state, "keyless", "keyless call complete")
