"""How a route's calls take turns: when the caller is judged finished, and when the
caller's voice stops the agent. Pure values; the call builds the session from them
(``call.turn_taking``), routes.toml sets them per route (``config.turn_taking``).

The defaults are for phone calls and were chosen from the lab's turn benchmark
(bench/RESULTS.md, section 10), not from the framework's, which are tuned for wide-band
web audio and wait up to 2.5 s whenever the end-of-turn model is unsure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Detection = Literal["model", "vad"]
DETECTIONS: tuple[Detection, ...] = ("model", "vad")


@dataclass(frozen=True, slots=True)
class TurnTaking:
    """One route's turn-taking; every figure in seconds."""

    # "model": the end-of-turn model reads what was said and waits longer when the caller
    # sounds unfinished; "vad": silence alone ends the turn (fastest, cuts more callers off).
    detection: Detection = "model"
    # After the caller's last sound: the shortest wait before the turn ends, and the
    # longest (used when the model judges the caller unfinished).
    min_endpointing_delay: float = 0.2
    max_endpointing_delay: float = 1.6
    # Silence the voice-activity detector needs before it reports the end of speech: the
    # floor under every turn (the speech-to-text request starts only then).
    vad_min_silence: float = 0.3
    # Barge-in: the caller's voice stops the agent after this much speech (and words,
    # when counted by speech-to-text); shorter noise (a cough) does not.
    allow_interruptions: bool = True
    min_interruption_duration: float = 0.5
    min_interruption_words: int = 0
    # An interruption followed by this much silence with no words was a false one: the
    # agent resumes its reply if ``resume_false_interruption``.
    false_interruption_timeout: float = 1.5
    resume_false_interruption: bool = True
    # Start the reply from the transcript before the turn is confirmed.
    preemptive_generation: bool = True


# The framework's own values (livekit-agents 1.8.9 with its end-of-turn model and Silero
# VAD defaults): what the benchmark compares the defaults with.
FRAMEWORK_DEFAULT = TurnTaking(
    detection="model",
    min_endpointing_delay=0.3,
    max_endpointing_delay=2.5,
    vad_min_silence=0.55,
    allow_interruptions=True,
    min_interruption_duration=0.5,
    min_interruption_words=0,
    false_interruption_timeout=2.0,
    resume_false_interruption=True,
    preemptive_generation=True,
)

# The end-of-turn model scores the caller's audio once the voice detector has heard 0.2 s
# of silence; livekit-agents refuses to start a session whose detector would report the
# end of speech sooner than 0.25 s (a call on such a route would fail as it is answered).
MODEL_MIN_VAD_SILENCE = 0.25

# Bounds routes.toml is checked against: outside them a call either talks over the caller
# or leaves dead air no caller waits through.
BOUNDS: dict[str, tuple[float, float]] = {
    "min_endpointing_delay": (0.0, 2.0),
    "max_endpointing_delay": (0.2, 6.0),
    "vad_min_silence": (0.1, 2.0),
    "min_interruption_duration": (0.05, 3.0),
    "min_interruption_words": (0, 10),
    "false_interruption_timeout": (0.2, 10.0),
}
