"""Run by tests/test_recordings.py in a process of its own, which the test then kills:
the call recorder (``CallRecording``'s taps and the framework's encoder) records a
caller who sends a 440 Hz tone, in real time, until the process dies."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any, cast

from livekit import rtc
from livekit.agents import io
from livekit.agents.voice.recorder_io import RecorderIO

from switchboard.call.recording import SAMPLE_RATE, Muting

FRAME = 320  # 20 ms at 16 kHz


class Tone(io.AudioInput):
    """A caller's audio: a 440 Hz tone, one 20 ms frame every 20 ms."""

    def __init__(self) -> None:
        super().__init__(label="tone")
        self._n = 0
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    async def __anext__(self) -> rtc.AudioFrame:
        # Paced like a live track: frame n is due at n * 20 ms.
        await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - self._loop.time()))
        first = self._n * FRAME
        samples = (
            round(8000 * math.sin(2 * math.pi * 440 * (first + i) / SAMPLE_RATE))
            for i in range(FRAME)
        )
        self._n += 1
        data = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
        return rtc.AudioFrame(data, SAMPLE_RATE, 1, FRAME)


class Silent(io.AudioOutput):
    def __init__(self) -> None:
        super().__init__(label="silent", capabilities=io.AudioOutputCapabilities(pause=False))

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)

    def flush(self) -> None:
        super().flush()

    def clear_buffer(self) -> None:
        pass


async def main(path: Path) -> None:
    recorder = RecorderIO(agent_session=cast(Any, None), sample_rate=SAMPLE_RATE)
    source = recorder.record_input(Muting(Tone(), lambda: False))
    recorder.record_output(Silent())
    await recorder.start(output_path=path)
    print("recording", flush=True)
    async for _frame in source:  # the session's reading of the caller's audio
        pass


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
