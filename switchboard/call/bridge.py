"""Two people in two rooms who hear each other: the agent carries each one's audio into
the other's room. A warm transfer's merge where the server cannot move a participant
between rooms (the open-source livekit-server has no MoveParticipant; ``tools.warm_transfer``
says why this and not the alternatives).

Each direction subscribes to one person's microphone in one room and publishes it, frame
by frame, as a track of the agent's in the other room; the phones' SIP legs mix it like
any other track. Nothing is decoded to words or kept: audio in, audio out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from livekit import rtc

logger = logging.getLogger("switchboard.call")

SAMPLE_RATE = 48000
# The agent forwards in real time; a short queue bounds the delay a slow moment could add
# (the source's default of one second would keep it, once built up, for the whole call).
QUEUE_MS = 200
TRACK_WAIT_S = 10.0


class BridgeError(RuntimeError):
    """A person's audio could not be found or forwarded."""


class AudioBridge:
    """``a`` in ``room_a`` and ``b`` in ``room_b`` hear each other through the agent's
    connection to each room, until ``close``."""

    def __init__(self, room_a: rtc.Room, a: str, room_b: rtc.Room, b: str) -> None:
        self._ends = ((room_a, a, room_b), (room_b, b, room_a))
        self._tasks: list[asyncio.Task[None]] = []
        self._published: list[tuple[rtc.Room, str]] = []

    async def open(self) -> None:
        """Both directions flowing; BridgeError (with nothing left open) otherwise."""
        try:
            for source_room, identity, target_room in self._ends:
                track = await _microphone(source_room, identity)
                source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=QUEUE_MS)
                local = rtc.LocalAudioTrack.create_audio_track(f"bridge-{identity}", source)
                options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
                published = await target_room.local_participant.publish_track(local, options)
                self._published.append((target_room, published.sid))
                stream = rtc.AudioStream.from_track(
                    track=track, sample_rate=SAMPLE_RATE, num_channels=1
                )
                self._tasks.append(asyncio.create_task(_forward(stream, source)))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        for room, sid in self._published:
            if room.isconnected():
                with contextlib.suppress(Exception):
                    await room.local_participant.unpublish_track(sid)
        self._published.clear()


async def _microphone(room: rtc.Room, identity: str) -> rtc.RemoteAudioTrack:
    """``identity``'s audio track in ``room``, subscribed; waits for it a little."""
    subscribed = asyncio.Event()

    def on_subscribed(_t: rtc.Track, _p: rtc.RemoteTrackPublication, who: rtc.Participant) -> None:
        if who.identity == identity:
            subscribed.set()

    room.on("track_subscribed", on_subscribed)
    try:
        async with asyncio.timeout(TRACK_WAIT_S):
            while True:
                participant = room.remote_participants.get(identity)
                for pub in participant.track_publications.values() if participant else ():
                    if isinstance(pub.track, rtc.RemoteAudioTrack):
                        return pub.track
                    if pub.kind == rtc.TrackKind.KIND_AUDIO and not pub.subscribed:
                        pub.set_subscribed(True)
                subscribed.clear()
                await subscribed.wait()
    except TimeoutError:
        raise BridgeError(f"no audio from {identity} in room {room.name}") from None
    finally:
        room.off("track_subscribed", on_subscribed)


async def _forward(stream: rtc.AudioStream, source: rtc.AudioSource) -> None:
    try:
        async for event in stream:
            await source.capture_frame(event.frame)
    finally:
        await stream.aclose()
        await source.aclose()
