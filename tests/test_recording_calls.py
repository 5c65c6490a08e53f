"""Recorded calls on the lab: the agent writes one stereo file per call, the caller's
audio on the left and its own on the right, after the route's consent line; over a PIN
gate the caller's side is silence, whatever the caller's phone sent.

Routes ``lab-record`` and ``lab-record-pin`` of lab/routes.toml; the caller's "speech" is
a 440 Hz tone, easy to tell from the agent's espeak voice by its frequency.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lab.audio import silence_pcmu, tone_pcmu
from lab.testing.calls import call_ai, caller_event
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab
from lab.testing.recordings import dominant_hz, first_loud, loud_seconds, read_stereo
from lab.testing.records import lab_database, wait_record
from switchboard.data.records.model import CallRecord

pytestmark = pytest.mark.lab

PIN = "48151623"  # LAB_TEST_PIN of the ai_lab fixture
TONE_HZ = 440.0


def recordings_dir(ai_lab: AiLab) -> Path:
    # The AI worker keeps SWITCHBOARD_STATE_DIR beside the lab's database: recordings/ in it.
    return Path(ai_lab.env["LAB_DATABASE_URL"].removeprefix("sqlite:///")).parent / "recordings"


async def recorded(ai_lab: AiLab, call_id: str) -> tuple[CallRecord, Path]:
    async with lab_database(ai_lab.lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=30)
    (part,) = record.summary.recordings
    assert part.error is None, part.error
    assert part.file is not None and part.ended_at is not None, part
    return record, recordings_dir(ai_lab) / part.file


async def test_a_recorded_call_has_the_caller_left_and_the_agent_right(ai_lab: AiLab) -> None:
    greeting = "Hello, this is the recorded line. How can I help?"
    ai_lab.fake.script("record", [say(greeting)])
    # Silence while the consent line and the greeting play, then 3 s of tone.
    audio = silence_pcmu(9.0) + tone_pcmu(3.0, TONE_HZ)
    # The phone hangs up some seconds after the first sound it hears: long after the tone.
    result = await call_ai(ai_lab, "record", send_audio=audio, hangup=24.0, timeout=60)
    assert result.answered, result.sipp_log_tail
    caller = caller_event(ai_lab.lab, result)
    job, call_id = caller["job_id"], caller["caller"]["call_id"]
    consent = ai_lab.lab.wait_event(event="agent_said", job_id=job, text="This call is recorded.")
    record, path = await recorded(ai_lab, call_id)
    part = record.summary.recordings[0]
    assert part.consent and part.started_at >= consent["ts"], "recorded before the consent"

    mode = os.stat(path).st_mode
    assert stat.S_IMODE(mode) == 0o600, oct(mode)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700

    audio_file = read_stereo(path)
    call_s = part.ended_at - part.started_at  # type: ignore[operator]
    assert call_s - 3 < audio_file.seconds < call_s + 1, (audio_file.seconds, call_s)
    # Left: the caller's tone, about 3 s of it, and nothing of the agent's voice.
    assert 2.0 < loud_seconds(audio_file.left, audio_file.rate) < 4.0
    assert abs(dominant_hz(audio_file.left, audio_file.rate) - TONE_HZ) < 10
    # Right: the agent's greeting (espeak, well over a second), first, and not the tone.
    assert loud_seconds(audio_file.right, audio_file.rate) > 1.0
    agent_at = first_loud(audio_file.right, audio_file.rate)
    caller_at = first_loud(audio_file.left, audio_file.rate)
    assert agent_at is not None and caller_at is not None and agent_at < caller_at
    assert abs(dominant_hz(audio_file.right, audio_file.rate) - TONE_HZ) > 20
    assert any(t.role == "assistant" and t.text == greeting for t in record.transcript)


async def test_without_a_consent_line_the_greeting_is_recorded_whole(ai_lab: AiLab) -> None:
    """The greeting is made while the caller still rings (``call.first_words``), and
    waits for the recording to start: it is in the file from its first word."""
    greeting = "Hello, you are through to the recorded line. How can I help?"
    ai_lab.fake.script("record-plain", [say(greeting)])
    result = await call_ai(ai_lab, "record-plain", hangup=12.0, timeout=60)
    assert result.answered, result.sipp_log_tail
    caller = caller_event(ai_lab.lab, result)
    said = ai_lab.lab.wait_event(
        event="transcript", job_id=caller["job_id"], role="assistant", text=greeting
    )
    record, path = await recorded(ai_lab, caller["caller"]["call_id"])
    audio_file = read_stereo(path)
    agent_at = first_loud(audio_file.right, audio_file.rate)
    assert agent_at is not None and agent_at < 3.0, agent_at
    # About 4 s of espeak; a greeting cut at its start would be shorter.
    assert loud_seconds(audio_file.right, audio_file.rate) > 2.5
    assert loud_seconds(audio_file.left, audio_file.rate) == 0.0  # the caller said nothing
    assert said["ts"] > record.summary.recordings[0].started_at


async def test_the_pin_gate_is_silent_in_the_recording(ai_lab: AiLab) -> None:
    ai_lab.fake.script("record-pin", [say("You are verified. How can I help?")])
    # The caller's phone is loud all through the PIN prompt (a tone), keys the PIN in,
    # then sends the tone again once through the gate.
    audio = tone_pcmu(5.0, TONE_HZ) + silence_pcmu(8.0) + tone_pcmu(3.0, TONE_HZ)
    result = await call_ai(
        ai_lab,
        "record-pin",
        send_audio=audio,
        send_dtmf=PIN + "#",
        dtmf_delay=6.0,
        hangup=26.0,
        timeout=60,
    )
    assert result.answered, result.sipp_log_tail
    caller = caller_event(ai_lab.lab, result)
    job, call_id = caller["job_id"], caller["caller"]["call_id"]
    accepted = ai_lab.lab.wait_event(event="pin_accepted", job_id=job)
    record, path = await recorded(ai_lab, call_id)
    part = record.summary.recordings[0]
    assert part.started_at < accepted["ts"], "the recording should cover the PIN gate"

    audio_file = read_stereo(path)
    gate_s = accepted["ts"] - part.started_at
    rate = audio_file.rate
    during, after = audio_file.left[: int(gate_s * rate)], audio_file.left[int(gate_s * rate) :]
    # The caller sent 5 s of tone and the PIN's keys while the gate was open: none of it
    # is in the file. After the gate, the caller's tone is.
    assert loud_seconds(during, rate) == 0.0
    assert loud_seconds(after, rate) > 2.0
    assert abs(dominant_hz(after, rate) - TONE_HZ) < 10
    # The agent's side of the gate (its PIN prompt) is recorded.
    assert loud_seconds(audio_file.right[: int(gate_s * rate)], rate) > 1.0
