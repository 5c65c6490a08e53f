"""A route's turn-taking (``switchboard.turn_taking``) as the framework takes it: the
session's turn-handling options and the voice-activity detector's silence."""

from __future__ import annotations

from livekit.agents import vad
from livekit.agents.voice.turn import TurnHandlingOptions
from livekit.plugins import silero

from switchboard.turn_taking import TurnTaking


def turn_handling(turn: TurnTaking) -> TurnHandlingOptions:
    """The session's options. "model" leaves the detector to the framework, which picks
    its end-of-turn model; interruptions are detected from the voice (``"vad"``) always:
    the framework's other mode needs LiveKit Cloud and turns itself on in dev mode only,
    so a lab run and production would otherwise behave differently."""
    options = TurnHandlingOptions(
        endpointing={
            "min_delay": turn.min_endpointing_delay,
            "max_delay": turn.max_endpointing_delay,
        },
        interruption={
            "enabled": turn.allow_interruptions,
            "mode": "vad",
            "min_duration": turn.min_interruption_duration,
            "min_words": turn.min_interruption_words,
            "false_interruption_timeout": turn.false_interruption_timeout,
            "resume_false_interruption": turn.resume_false_interruption,
        },
        preemptive_generation={"enabled": turn.preemptive_generation},
    )
    if turn.detection == "vad":
        options["turn_detection"] = "vad"
    return options


def tune_vad(vad_model: vad.VAD, turn: TurnTaking) -> None:
    """Set the call's end-of-speech silence on its process's detector. A job process
    serves one call, so the prewarmed detector is this call's alone; streams opened
    after this (the session's) take the value."""
    if isinstance(vad_model, silero.VAD):
        vad_model.update_options(min_silence_duration=turn.vad_min_silence)
