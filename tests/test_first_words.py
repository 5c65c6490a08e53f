"""The first words made before the session starts (``switchboard.call.first_words``): with
the real espeak voice and the model behind the fake OpenAI-compatible endpoint (loopback),
the words and their audio are there, and a failing or slow model gives None (the call then
greets the usual way) within the budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import APIConnectOptions, function_tool
from livekit.agents.llm import ToolFlag
from livekit.plugins import openai as lk_openai

from lab.testing.fake_openai import DEFAULT, FakeOpenAI, call, say
from switchboard.call.first_words import FirstWords, prepare_first_words
from switchboard.call.keyless import EspeakTTS

pytestmark = pytest.mark.unit

NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)
INSTRUCTIONS = "You answer the phone for Acme."
GREET = "Greet the caller briefly."


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(host="127.0.0.1", port=0) as server:
        yield server


def model(fake: FakeOpenAI) -> lk_openai.LLM:
    return lk_openai.LLM(base_url=fake.base_url, api_key="test", model="fake")


async def greeting(fake: FakeOpenAI, **options: Any) -> FirstWords | None:
    """The model's greeting, asked with the call's instructions and no retry."""
    return await prepare_first_words(
        voice=EspeakTTS(),
        text=None,
        model=model(fake),
        instructions=INSTRUCTIONS,
        greet=GREET,
        conn_options=NO_RETRY,
        **options,
    )


async def drained(words: FirstWords) -> tuple[str, float]:
    """All the words' text, and the seconds of audio they made."""
    text = "".join([piece async for piece in words.text])
    seconds = 0.0
    async for frame in words.audio:
        seconds += frame.samples_per_channel / frame.sample_rate
    return text, seconds


async def test_fixed_words_are_spoken_without_asking_the_model(fake: FakeOpenAI) -> None:
    words = await prepare_first_words(
        voice=EspeakTTS(), text="Hello, this is Acme.", model=model(fake), conn_options=NO_RETRY
    )
    assert words is not None and words.source == "fixed"
    text, seconds = await drained(words)
    assert text == "Hello, this is Acme."
    assert seconds > 0.5  # the whole sentence, not only its first frame
    assert fake.requests == []


async def test_the_models_greeting_is_asked_with_the_calls_instructions(
    fake: FakeOpenAI,
) -> None:
    fake.script(DEFAULT, [say("Hi, Acme here. How can I help?")])
    words = await greeting(fake)
    assert words is not None and words.source == "model"
    text, seconds = await drained(words)
    assert text == "Hi, Acme here. How can I help?"
    assert seconds > 1.0  # both sentences were spoken
    (request,) = fake.requests
    system = [m["content"] for m in request.body["messages"] if m["role"] == "system"]
    assert system == [INSTRUCTIONS, GREET]
    assert not request.body.get("tools")  # nothing the greeting could run


async def test_a_failing_model_gives_none_so_the_call_greets_as_usual(fake: FakeOpenAI) -> None:
    fake.fail_next(1, status=500)
    words = await greeting(fake)
    assert words is None
    assert [r.status for r in fake.requests] == [500]


async def test_words_late_past_the_budget_are_still_said_when_they_come(
    fake: FakeOpenAI,
) -> None:
    fake.script(DEFAULT, [say("Sorry to keep you.")])
    fake.delay(1.5)
    started = time.monotonic()
    words = await greeting(fake, budget_s=0.3)
    assert time.monotonic() - started < 1.4  # back at the budget, not after the model
    assert words is not None and words.ready_ms is None
    text, seconds = await drained(words)
    assert text == "Sorry to keep you." and seconds > 0.5
    assert not await words.made_nothing()


async def test_late_words_that_fail_say_so_for_the_greeting_to_be_made_anew(
    fake: FakeOpenAI,
) -> None:
    fake.delay(1.0)
    fake.fail_next(1, status=500)
    words = await greeting(fake, budget_s=0.2)
    assert words is not None and words.ready_ms is None
    assert await words.made_nothing()
    assert await drained(words) == ("", 0.0)


@function_tool
async def look_up(account: str) -> str:
    """Look an account up."""
    return "found"


@function_tool(flags=ToolFlag.IGNORE_ON_ENTER)
async def hang_up() -> str:
    """End the call."""
    return "bye"


async def test_the_greeting_is_offered_the_tools_an_on_enter_reply_would_be(
    fake: FakeOpenAI,
) -> None:
    fake.script(DEFAULT, [say("Hello.")])
    words = await greeting(fake, tools=[look_up, hang_up])
    assert words is not None
    (request,) = fake.requests
    assert [t["function"]["name"] for t in request.body["tools"]] == ["look_up"]


async def test_a_greeting_that_calls_a_tool_is_left_to_the_session(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [call("look_up", {"account": "42"}, text="One moment.")])
    words = await greeting(fake, tools=[look_up])
    assert words is None  # the session asks again, and runs the tool
