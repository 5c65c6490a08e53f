"""Reading a call recording back in tests: its two channels, and where each is loud."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

WINDOW_S = 0.02
# -40 dBFS: far above Opus's rendering of digital silence, far below the lab's speech
# (-30..-15 dBFS) and its test tone (-12 dBFS).
LOUD_RMS = 0.01


@dataclass(frozen=True)
class Stereo:
    rate: int
    left: np.ndarray  # float32, -1..1
    right: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.left) / self.rate


def read_stereo(path: Path) -> Stereo:
    """Decode a recording whole; AssertionError unless it has exactly two channels."""
    chunks: list[np.ndarray] = []
    rate = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 2, f"{stream.codec_context.channels} channels"
        for frame in container.decode(stream):
            rate = frame.sample_rate
            data = frame.to_ndarray()
            if frame.format.is_packed:  # interleaved: (1, 2n)
                data = data.reshape(-1, 2).T
            chunks.append(data.astype(np.float32))
    both = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    if both.dtype != np.float32 or np.abs(both).max(initial=0) > 1.5:  # integer samples
        both = both / 32768.0
    return Stereo(rate, both[0], both[1])


def window_rms(signal: np.ndarray, rate: int, window_s: float = WINDOW_S) -> np.ndarray:
    n = int(rate * window_s)
    usable = len(signal) // n * n
    frames = signal[:usable].reshape(-1, n)
    rms: np.ndarray = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    return rms


def loud_seconds(signal: np.ndarray, rate: int, threshold: float = LOUD_RMS) -> float:
    return float((window_rms(signal, rate) > threshold).sum() * WINDOW_S)


def first_loud(signal: np.ndarray, rate: int, threshold: float = LOUD_RMS) -> float | None:
    loud = np.flatnonzero(window_rms(signal, rate) > threshold)
    return float(loud[0] * WINDOW_S) if len(loud) else None


def dominant_hz(signal: np.ndarray, rate: int) -> float:
    """The strongest frequency of the loudest second of ``signal``."""
    rms = window_rms(signal, rate, 1.0)
    start = int(rms.argmax()) * rate
    chunk = signal[start : start + rate]
    spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk))))
    return float(np.fft.rfftfreq(len(chunk), 1 / rate)[spectrum.argmax()])
