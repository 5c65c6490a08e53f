"""Deepgram's streaming speech-to-text, as the lab's double speaks it (``FakeOpenAI`` serves
it at ``/v1/listen``, a WebSocket, beside the OpenAI-compatible routes).

``livekit.plugins.deepgram.STT`` streams the caller's audio (16-bit PCM) as it arrives and
reads back JSON results; it needs nothing but a final result per utterance. Real Deepgram
ends an utterance with its own model after ``endpointing`` ms of silence; the double ends
it with a level meter (``Endpointer``) after at least ``MIN_ENDPOINT_S``, because a level
meter hears the short gaps inside words as silence where Deepgram's model does not. The
text comes from the test (``FakeOpenAI.hear`` / ``transcribe_with``), as for the batch
transcriptions, and is sent at once: an instant provider, like the rest of the doubles.

What matters for the turn benchmark is the shape, not the timing of a real provider: a
streaming recogniser's transcript is ready as the caller stops, not after the voice
detector's silence plus an upload, which is the batch path's (``stt.StreamAdapter``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.audio import SILENCE_RMS

MIN_ENDPOINT_S = 0.15
BLOCK_S = 0.01  # the meter's resolution


@dataclass(frozen=True)
class Segment:
    """One stretch of speech, in seconds of the stream's audio."""

    start: float
    end: float


@dataclass
class Endpointer:
    """Speech segments of a PCM16 mono stream, each reported once ``endpoint_s`` of
    silence follows it (``push``), or when the client asks (``flush``)."""

    sample_rate: int
    endpoint_s: float
    _pending: bytes = b""
    _at: int = 0  # samples consumed (counted, not summed as seconds: no drift)
    _start: int | None = None  # first sample of the speech being heard
    _last_loud: int = 0  # end of its last loud block
    _block: int = field(init=False)  # samples

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {self.sample_rate}")
        self._block = max(1, int(self.sample_rate * BLOCK_S))

    def push(self, pcm: bytes) -> list[Segment]:
        data, out = self._pending + pcm, []
        whole = len(data) - len(data) % (2 * self._block)
        self._pending = data[whole:]
        samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float64)
        for i in range(0, len(samples), self._block):
            loud = float(np.sqrt(np.mean(samples[i : i + self._block] ** 2))) > SILENCE_RMS
            if loud and self._start is None:
                self._start = self._at
            self._at += self._block
            if loud:
                self._last_loud = self._at
            elif self._start is not None and self._at - self._last_loud >= self._endpoint:
                out.append(self._segment())
        return out

    def flush(self) -> list[Segment]:
        return [] if self._start is None else [self._segment()]

    @property
    def _endpoint(self) -> float:
        return self.endpoint_s * self.sample_rate

    def _segment(self) -> Segment:
        assert self._start is not None
        segment = Segment(self._start / self.sample_rate, self._last_loud / self.sample_rate)
        self._start = None
        return segment


def results(text: str, segment: Segment, *, request_id: str) -> dict[str, Any]:
    """A final ``Results`` message for ``text`` spoken over ``segment``, its words spread
    evenly (the plugin reads the words' times, the transcript and the request id)."""
    words = text.split()
    step = (segment.end - segment.start) / max(1, len(words))
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(segment.end - segment.start, 3),
        "start": round(segment.start, 3),
        "is_final": True,
        "speech_final": True,
        "from_finalize": False,
        "channel": {
            "alternatives": [
                {
                    "transcript": text,
                    "confidence": 0.99,
                    "words": [
                        {
                            "word": w.strip(".,?!").lower(),
                            "punctuated_word": w,
                            "start": round(segment.start + i * step, 3),
                            "end": round(segment.start + (i + 1) * step, 3),
                            "confidence": 0.99,
                        }
                        for i, w in enumerate(words)
                    ],
                }
            ]
        },
        "metadata": {"request_id": request_id, "model_uuid": str(uuid.uuid4())},
    }
