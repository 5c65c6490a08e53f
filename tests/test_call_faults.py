"""An AI provider giving up mid-call: the caller hears an apology, once, and the call
ends; anything the framework still retries or survives changes nothing."""

from __future__ import annotations

import time

import pytest
from livekit.agents import ErrorEvent, llm, stt, tts

from switchboard.call.event_types import AgentHangup, AgentSaid, ProviderFailed
from switchboard.call.faults import watch_provider_faults
from switchboard.config.prompts import load_prompts
from tests.call_fakes import Call, new_call

pytestmark = pytest.mark.unit


def watched(call: Call) -> Call:
    watch_provider_faults(call.job.context, call.session, call.state)
    return call


Fault = type[llm.LLMError] | type[stt.STTError] | type[tts.TTSError] | type[llm.RealtimeModelError]


def fault(kind: Fault, *, recoverable: bool) -> ErrorEvent:
    error = kind(
        timestamp=time.time(),
        label=kind.__name__,
        error=RuntimeError("503"),
        recoverable=recoverable,
    )
    return ErrorEvent(error=error, source=None)


async def assert_apologised_and_hung_up(call: Call, source: str) -> None:
    assert await call.job.ended() == "provider_failed"
    apology = load_prompts()["provider_down"]
    assert call.asked.interrupts == [{"force": True}]  # the apology replaces what was said
    assert call.asked.said == [(apology, {"allow_interruptions": False, "add_to_chat_ctx": False})]
    assert call.events == [
        ProviderFailed(source=source),
        AgentSaid(text=apology),
        AgentHangup(reason="provider_failed"),
    ]
    assert call.job.rooms_deleted == 1 and call.job.shutdowns == ["provider_failed"]


@pytest.mark.parametrize(
    ("kind", "source"), [(llm.LLMError, "llm_error"), (stt.STTError, "stt_error")]
)
async def test_a_provider_giving_up_means_an_apology_and_a_hang_up(
    monkeypatch: pytest.MonkeyPatch, kind: Fault, source: str
) -> None:
    call = watched(new_call(monkeypatch))
    call.session.emit("error", fault(kind, recoverable=False))
    await assert_apologised_and_hung_up(call, source)


async def test_a_second_fatal_error_does_not_apologise_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = watched(new_call(monkeypatch))
    call.session.emit("error", fault(llm.LLMError, recoverable=False))
    call.session.emit("error", fault(stt.STTError, recoverable=False))  # while the apology plays
    await assert_apologised_and_hung_up(call, "llm_error")
    call.session.emit("error", fault(llm.LLMError, recoverable=False))  # after the hang-up
    assert len(call.asked.said) == 1 and call.job.shutdowns == ["provider_failed"]


async def test_errors_the_call_survives_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    call = watched(new_call(monkeypatch))
    survivable = [
        fault(llm.LLMError, recoverable=True),  # the framework retries
        fault(stt.STTError, recoverable=True),
        fault(tts.TTSError, recoverable=False),  # only the LLM or STT giving up ends a call
        fault(llm.RealtimeModelError, recoverable=False),
    ]
    for error in survivable:
        call.session.emit("error", error)
    # The handler decides synchronously: had it acted, the call would be ending already.
    assert not call.state.ended
    assert call.events == [] and call.asked.said == [] and call.asked.interrupts == []
    # Still watching: the first fatal error is the one apologised for.
    call.session.emit("error", fault(stt.STTError, recoverable=False))
    await assert_apologised_and_hung_up(call, "stt_error")


async def test_no_apology_once_the_call_is_ending(monkeypatch: pytest.MonkeyPatch) -> None:
    call = watched(new_call(monkeypatch))
    call.state.ended = True  # e.g. the end_call tool, or a worker shutting down
    call.session.emit("error", fault(llm.LLMError, recoverable=False))
    assert call.events == [] and call.asked.said == []
