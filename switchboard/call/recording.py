"""A route's call recording, made by the agent itself: it works on any LiveKit server.

One stereo file per call (per job, for a resumed call): the caller on the left, the agent
on the right, on one timeline. The taps are the session's own audio chain: the caller's
audio as the session reads it (``session.input.audio``, the caller's remote track already
decoded and resampled by the framework), the agent's as it is played into the room
(``session.output.audio``), placed where the room says it played, so an interrupted reply
is cut where the caller stopped hearing it. The framework's ``RecorderIO`` does the
placing and encoding, in a thread of its own: the event loop that carries the call only
queues frames.

Ogg Opus, not FLAC: Opus is made for speech (about 0.6 MB a minute as the framework
encodes it, where 16 kHz stereo FLAC takes about three times that), every browser plays
it in an ``<audio>`` element, and an Ogg stream is written as pages that each stand
alone, so a job that dies leaves a file that plays up to its last few seconds. Libopus
comes with PyAV, which the framework already needs.

What is never in the file: the caller's side while the PIN gate is open (``hold_caller``,
silence from the first prompt to the verified PIN), and the half second after each key
the caller presses (RFC 4733 keys reach the room as data, not audio; a phone that also
plays them in-band is muted over them). A route's consent line is spoken before the
recording starts, which is only once it has been heard. A folder that cannot be written
or a full disk never touches the call: the record says why there is no recording.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from livekit import api, rtc
from livekit.agents import AgentSession, io
from livekit.agents.voice.recorder_io import RecorderIO

from switchboard.call.event_types import AgentSaid
from switchboard.call.events import EventLog
from switchboard.config.settings import Settings, recordings_folder
from switchboard.data.recordings import RecordingUnavailableError, create_file, safe_id
from switchboard.data.records.model import Recording, StatusChange
from switchboard.data.records.recorder import CallRecorder
from switchboard.routing import Route

logger = logging.getLogger("switchboard.recording")

SAMPLE_RATE = 16_000  # wide-band: a phone call is 8 kHz, a web caller's speech fits in 16
KEY_MUTE_S = 0.5  # a keypad tone lasts 100-250 ms; muted with a margin after each key
CLOSE_TIMEOUT_S = 5.0
# Timeline entries (never a sip.callStatus value, nor "identity: ...": unforgeable).
RECORDING_STARTED = "recording started"
RECORDING_UNAVAILABLE = (
    "recording unavailable"  # the encoder's last pages; the record is finished after it anyway
)


class Muting(io.AudioInput):
    """The caller's audio, with silence in place of the frames ``muted()`` says to hide.
    Below the recorder in the chain: what it hides never reaches the file."""

    def __init__(self, source: io.AudioInput, muted: Callable[[], bool]) -> None:
        super().__init__(label="SwitchboardMuting", source=source)
        self._muted = muted

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await super().__anext__()
        if not self._muted():
            return frame
        return rtc.AudioFrame(
            data=bytes(len(frame.data) * 2),  # int16 samples: two bytes each
            sample_rate=frame.sample_rate,
            num_channels=frame.num_channels,
            samples_per_channel=frame.samples_per_channel,
        )


class EgressApi(Protocol):
    async def start_room_composite_egress(
        self, start: api.RoomCompositeEgressRequest
    ) -> api.EgressInfo: ...


class CallRecording:
    """The recording of one call: ``attach`` after the session has started (before any
    word), ``start`` once the consent line has been heard, ``close`` when the job ends."""

    def __init__(
        self,
        *,
        folder: Path,
        recorder: CallRecorder,
        events: EventLog,
        caller_identity: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self._recorder = recorder
        self._events = events
        self._caller = caller_identity
        self._clock = clock
        self._io: RecorderIO | None = None
        self._held = False
        self._keys_until = 0.0
        self._room: rtc.Room | None = None
        self.path: Path | None = None

    # --- what is muted ----------------------------------------------------------------------

    def hold_caller(self, held: bool) -> None:
        """Silence the caller's side (the PIN gate is open) or give it back."""
        self._held = held

    def caller_muted(self) -> bool:
        return self._held or time.monotonic() < self._keys_until

    def _on_key(self, event: rtc.SipDTMF) -> None:
        who = event.participant.identity if event.participant is not None else ""
        if who == self._caller:
            self._keys_until = time.monotonic() + KEY_MUTE_S

    # --- the recording ----------------------------------------------------------------------

    def attach(self, session: AgentSession[Any], room: rtc.Room) -> None:
        """Put the taps in the session's audio chain; nothing is written before ``start``."""
        if session.input.audio is None or session.output.audio is None:
            logger.warning("no audio in the session: nothing to record")
            return
        recorder = RecorderIO(agent_session=session, sample_rate=SAMPLE_RATE)
        session.input.audio = recorder.record_input(Muting(session.input.audio, self.caller_muted))
        session.output.audio = recorder.record_output(session.output.audio)
        self._io = recorder
        self._room = room
        room.on("sip_dtmf_received", self._on_key)

    async def start(self, call_id: str, *, consent: bool) -> bool:
        """Start writing; False (and the record says why) when it cannot."""
        now = self._clock()
        if self._io is None:
            self._unavailable(now, "no audio in the session", consent)
            return False
        try:
            self.path = await asyncio.to_thread(create_file, self.folder, call_id, now)
            await self._io.start(output_path=self.path)
        except (RecordingUnavailableError, OSError) as e:
            self._unavailable(now, str(e), consent)
            return False
        self._recorder.add_recording(Recording(self.path.name, now, consent=consent))
        self._recorder.add_status(StatusChange(RECORDING_STARTED, now))
        logger.info("recording to %s", self.path.name)
        return True

    def _unavailable(self, now: float, why: str, consent: bool) -> None:
        logger.warning("no recording: %s (the call goes on)", why)
        self._recorder.add_recording(Recording(None, now, error=why, consent=consent))
        self._recorder.add_status(StatusChange(RECORDING_UNAVAILABLE, now))

    async def close(self) -> None:
        """Write the last pages and mark the recording whole in the record."""
        if self._room is not None:
            self._room.off("sip_dtmf_received", self._on_key)
        if self._io is None or not self._io.recording:
            return
        try:
            await asyncio.wait_for(self._io.aclose(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("recording not closed in time; it keeps what was written")
            return
        self._recorder.end_recording(self._clock())


async def say_consent(session: AgentSession[Any], text: str, events: EventLog) -> None:
    """The route's consent line, heard whole before the recording starts."""
    handle = session.say(text, allow_interruptions=False, add_to_chat_ctx=False)
    events.emit(AgentSaid(text=text))
    await handle.wait_for_playout()


async def start_egress(
    egress: EgressApi, recorder: CallRecorder, room: str, call_id: str, *, consent: bool
) -> None:
    """``SWITCHBOARD_RECORDING_MODE=egress``: a room-composite, audio-only egress records the
    room instead (LiveKit Cloud, or a server with Egress); the file goes to the storage
    the egress is configured with, named after the call. Failing is like a full disk: the
    record says why and the call goes on."""
    now = time.time()
    name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{safe_id(call_id)}.ogg"
    request = api.RoomCompositeEgressRequest(
        room_name=room,
        audio_only=True,
        file_outputs=[
            api.EncodedFileOutput(file_type=api.EncodedFileType.OGG, filepath=f"recordings/{name}")
        ],
    )
    try:
        info = await egress.start_room_composite_egress(request)
    except Exception as e:  # the egress service's error, whatever it is: never the call's
        why = f"egress not started: {type(e).__name__}"
        logger.warning("no recording: %s (the call goes on)", why)
        recorder.add_recording(Recording(None, now, error=why, consent=consent))
        return
    recorder.add_recording(Recording(name, now, consent=consent, egress_id=info.egress_id))


# --- in the call flow -----------------------------------------------------------------------


def prepare(
    session: AgentSession[Any],
    room: rtc.Room,
    *,
    route: Route,
    settings: Settings,
    recorder: CallRecorder,
    events: EventLog,
    caller_identity: str,
    pin_gate: bool,
) -> CallRecording | None:
    """The call's recording, its taps in place (right after the session started), or None:
    the route records nothing, or LiveKit Egress records it (``begin``)."""
    if not route.record or settings.recording.mode != "agent":
        return None
    folder = recordings_folder(settings.data, settings.recording)
    recording = CallRecording(
        folder=folder, recorder=recorder, events=events, caller_identity=caller_identity
    )
    recording.hold_caller(pin_gate)  # released by ``pin_passed``
    recording.attach(session, room)
    return recording


async def begin(
    session: AgentSession[Any],
    lk: api.LiveKitAPI,
    recording: CallRecording | None,
    *,
    route: Route,
    settings: Settings,
    recorder: CallRecorder,
    events: EventLog,
    room: str,
    call_id: str,
) -> None:
    """Say the route's consent line, then start recording: the agent's own recorder, or
    an egress (started later, once any PIN gate is passed: an egress records the room as
    it is, and could not be silenced over the PIN)."""
    if not route.record:
        return
    consent = route.record_consent
    if consent:
        try:
            await say_consent(session, consent, events)
        except RuntimeError:
            return  # the session closed under us: the caller hung up
    if recording is not None:
        await recording.start(call_id, consent=bool(consent))
    elif settings.recording.mode == "egress":
        await start_egress(lk.egress, recorder, room, call_id, consent=bool(consent))
