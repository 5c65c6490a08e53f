"""The fake OpenAI-compatible endpoint, driven through the real livekit-plugins-openai objects
and a real (headless, text-only) AgentSession: no LiveKit server, no network beyond loopback."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    RunContext,
    RunResult,
    function_tool,
)
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import openai as lk_openai

from lab.testing.fake_openai import DEFAULT, FakeOpenAI, call, say, scenario_of

pytestmark = pytest.mark.unit

NO_RETRY = APIConnectOptions(max_retry=0)


class Desk(Agent):
    """A small agent whose tools record how they were called."""

    def __init__(self, scenario: str | None = None) -> None:
        custom = f"\n- custom: {{'scenario': '{scenario}', 'lang': 'en'}}" if scenario else ""
        super().__init__(instructions="You answer the phone for Acme." + custom)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @function_tool
    async def transfer(self, context: RunContext[None], department: str, priority: int) -> str:
        """Transfer the caller to a department."""
        self.calls.append(("transfer", {"department": department, "priority": priority}))
        return f"transferred to {department}"

    @function_tool
    async def lookup(self, context: RunContext[None], name: str) -> str:
        """Look a person up in the directory."""
        self.calls.append(("lookup", {"name": name}))
        return f"{name}: extension 42"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(host="127.0.0.1", port=0) as server:
        yield server


@asynccontextmanager
async def session_on(
    fake: FakeOpenAI, agent: Agent, llm_conn: APIConnectOptions = NO_RETRY
) -> AsyncIterator[AgentSession[None]]:
    llm = lk_openai.LLM(base_url=fake.base_url, api_key="test", model="fake")
    try:
        session: AgentSession[None] = AgentSession(
            llm=llm, conn_options=SessionConnectOptions(llm_conn_options=llm_conn)
        )
        async with session:
            await session.start(agent)
            yield session
    finally:
        await llm.aclose()


async def ask(session: AgentSession[None], text: str) -> RunResult[None]:
    result: RunResult[None] = await session.run(user_input=text)
    return result


def chat_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path == "/v1/chat/completions"]


def pcm_frame(seconds: float = 0.1, rate: int = 16000) -> rtc.AudioFrame:
    return rtc.AudioFrame.create(rate, 1, int(rate * seconds))  # silence is enough here


# -- LLM through AgentSession ---------------------------------------------------------------


async def test_scripted_tool_call_runs_the_real_tool_and_its_result_reaches_the_model(
    fake: FakeOpenAI,
) -> None:
    fake.script(
        "dial_sales",
        [
            call("transfer", {"department": "sales", "priority": 2}, text="One moment."),
            say("You are through to sales."),
        ],
    )
    agent = Desk("dial_sales")
    async with session_on(fake, agent) as session:
        result = await ask(session, "sales please")

    assert agent.calls == [("transfer", {"department": "sales", "priority": 2})]
    first_said = result.expect.next_event().is_message(role="assistant").event().item
    assert first_said.text_content == "One moment."
    result.expect.next_event().is_function_call(
        name="transfer", arguments={"department": "sales", "priority": 2}
    )
    result.expect.next_event().is_function_call_output(output="transferred to sales")
    said = result.expect.next_event().is_message(role="assistant").event().item
    assert said.text_content == "You are through to sales."
    result.expect.no_more_events()

    [returned] = fake.tool_results("dial_sales")
    assert returned["name"] == "transfer"
    assert returned["content"] == "transferred to sales"
    assert [(r.scenario, r.step, r.status) for r in fake.requests] == [
        ("dial_sales", 0, 200),
        ("dial_sales", 1, 200),
    ]
    first = chat_requests(fake)[0]
    # what the plugin sends: a streamed request asking for a usage chunk, with our tool schema
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["lookup", "transfer"]


async def test_parallel_tool_calls_in_one_step_all_execute(fake: FakeOpenAI) -> None:
    fake.script(
        DEFAULT,
        [
            call("lookup", {"name": "Ada"}).and_call(
                "transfer", {"department": "it", "priority": 1}
            ),
            say("Done."),
        ],
    )
    agent = Desk()
    async with session_on(fake, agent) as session:
        result = await ask(session, "find Ada and put me through to IT")

    assert sorted(agent.calls) == [
        ("lookup", {"name": "Ada"}),
        ("transfer", {"department": "it", "priority": 1}),
    ]
    result.expect.contains_message(role="assistant")
    results = {r["name"]: r["content"] for r in fake.tool_results()}
    assert results == {"lookup": "Ada: extension 42", "transfer": "transferred to it"}


async def test_text_replies_follow_the_script_then_say_done(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [say("Hello, Acme here."), say("Anything else?")])
    async with session_on(fake, Desk()) as session:
        replies = []
        for text in ("hi", "no", "bye"):
            result = await ask(session, text)
            replies.append(result.expect.next_event().is_message(role="assistant").event().item)
    assert [m.text_content for m in replies] == [
        "Hello, Acme here.",
        "Anything else?",
        "(fake) done",
    ]
    # the step comes from the request: how many assistant messages it already holds
    assert [r.step for r in fake.requests] == [0, 1, 2]


async def test_without_any_script_the_reply_is_a_plain_hello(fake: FakeOpenAI) -> None:
    async with session_on(fake, Desk()) as session:
        result = await ask(session, "hi")
    said = result.expect.next_event().is_message(role="assistant").event().item
    assert said.text_content == "(fake) hello"


async def test_scenario_is_chosen_from_the_instructions(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [say("default script")])
    fake.script("billing", [say("billing script")])
    fake.script("support", [say("support script")])
    heard = {}
    for scenario in ("billing", "support", None, "unregistered"):
        async with session_on(fake, Desk(scenario)) as session:
            result = await ask(session, "hello")
        heard[scenario] = result.expect.next_event().is_message().event().item.text_content
    assert heard == {
        "billing": "billing script",
        "support": "support script",
        None: "default script",
        "unregistered": "default script",  # an unknown name falls back to the default
    }
    assert [r.scenario for r in fake.requests] == ["billing", "support", DEFAULT, DEFAULT]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- custom: {'scenario': 'dial_sales', 'lang': 'en'}", "dial_sales"),
        ('- custom: {"scenario": "dial.v2-b"}', "dial.v2-b"),
        ("scenario: 'x_1'", "x_1"),
        ('scenario="quoted"', "quoted"),
        ("in this scenario: be brief", None),  # prose is not a scenario name
    ],
)
def test_scenario_patterns(text: str, expected: str | None) -> None:
    assert scenario_of([{"role": "system", "content": text}]) == expected
    assert scenario_of([{"role": "developer", "content": [{"type": "text", "text": text}]}]) == (
        expected
    )
    # only instructions choose the scenario: a caller saying it changes nothing
    assert scenario_of([{"role": "user", "content": text}]) is None


async def test_fail_next_surfaces_as_an_api_error_then_recovers(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [say("back again")])
    async with session_on(fake, Desk()) as session:
        fake.fail_next(1, status=503)
        with pytest.raises(APIStatusError) as failure:
            await ask(session, "hello")
        assert failure.value.status_code == 503
        result = await ask(session, "hello?")
    said = result.expect.next_event().is_message(role="assistant").event().item
    assert said.text_content == "back again"
    assert [r.status for r in fake.requests] == [503, 200]


async def test_a_failure_the_framework_retries_is_invisible_to_the_caller(
    fake: FakeOpenAI,
) -> None:
    fake.script(DEFAULT, [say("fine")])
    retry_once = APIConnectOptions(max_retry=1, retry_interval=0.0)
    async with session_on(fake, Desk(), llm_conn=retry_once) as session:
        fake.fail_next(1, status=500)
        result = await ask(session, "hello")
    assert result.expect.next_event().is_message().event().item.text_content == "fine"
    assert [(r.status, r.step) for r in fake.requests] == [(500, 0), (200, 0)]


async def test_delay_beyond_the_timeout_surfaces_as_a_timeout(fake: FakeOpenAI) -> None:
    fake.delay(1.0)
    async with session_on(fake, Desk(), llm_conn=APIConnectOptions(max_retry=0, timeout=0.2)) as s:
        with pytest.raises(APITimeoutError):
            await ask(s, "hello")


# -- the OpenAI SDK directly: the non-streaming form -----------------------------------------


async def test_non_streaming_completion(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [call("lookup", {"name": "Ada"}, text="Checking."), say("Found her.")])
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test") as client:
        first = await client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "find Ada"}]
        )
        message = first.choices[0].message
        assert first.choices[0].finish_reason == "tool_calls"
        assert message.content == "Checking."
        [tool_call] = message.tool_calls or []
        assert tool_call.type == "function"
        assert tool_call.function.name == "lookup"
        assert json.loads(tool_call.function.arguments) == {"name": "Ada"}
        assert first.usage is not None and first.usage.total_tokens > 0

        second = await client.chat.completions.create(
            model="fake",
            messages=[
                {"role": "user", "content": "find Ada"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [tool_call.to_dict()]},  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": tool_call.id, "content": "ext 42"},
            ],
        )
    assert second.choices[0].message.content == "Found her."
    assert second.choices[0].finish_reason == "stop"
    assert fake.tool_results() == [
        {"role": "tool", "tool_call_id": tool_call.id, "content": "ext 42", "name": "lookup"}
    ]


# -- STT: the transcriptions endpoint ----------------------------------------------------------


async def test_stt_returns_the_scripted_utterances_in_order_then_nothing(
    fake: FakeOpenAI,
) -> None:
    fake.hear(["I want to talk to sales", "thanks, bye"])
    stt = lk_openai.STT(base_url=fake.base_url, api_key="test", use_realtime=False)
    try:
        texts = [
            (await stt.recognize(pcm_frame(), conn_options=NO_RETRY)).alternatives[0].text
            for _ in range(3)
        ]
    finally:
        await stt.aclose()
    assert texts == ["I want to talk to sales", "thanks, bye", ""]
    # a WAV file: 44-byte header + 0.1 s of 16-bit mono 16 kHz
    assert fake.audio_sizes == [44 + 3200] * 3
    body = fake.requests[0].body
    assert body["model"] == "gpt-4o-mini-transcribe"
    assert (body["language"], body["response_format"]) == ("en", "json")


async def test_stt_whisper_gets_verbose_json_with_the_language(fake: FakeOpenAI) -> None:
    fake.hear(["bonjour"])
    stt = lk_openai.STT(
        base_url=fake.base_url, api_key="test", use_realtime=False, model="whisper-1", language="fr"
    )
    try:
        event = await stt.recognize(pcm_frame(0.5, rate=8000), conn_options=NO_RETRY)
    finally:
        await stt.aclose()
    assert (event.alternatives[0].text, event.alternatives[0].language) == ("bonjour", "fr")
    assert fake.requests[0].body["response_format"] == "verbose_json"


async def test_stt_fault_and_latency(fake: FakeOpenAI) -> None:
    fake.hear(["late but here"])
    stt = lk_openai.STT(base_url=fake.base_url, api_key="test", use_realtime=False)
    try:
        fake.fail_next(1, status=500)
        with pytest.raises(APIStatusError):
            await stt.recognize(pcm_frame(), conn_options=NO_RETRY)
        fake.delay(0.3)
        started = time.monotonic()
        event = await stt.recognize(pcm_frame(), conn_options=NO_RETRY)
        assert time.monotonic() - started >= 0.3
    finally:
        await stt.aclose()
    # the failed request did not consume the queued utterance
    assert event.alternatives[0].text == "late but here"
    assert [r.status for r in fake.requests] == [500, 200]


# -- lifecycle ---------------------------------------------------------------------------------


def fetch(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_works_without_any_event_loop_and_frees_its_port() -> None:
    with FakeOpenAI() as first, FakeOpenAI() as second:
        assert first.base_url != second.base_url
        hello = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
        reply = fetch(f"{first.base_url}/chat/completions", hello)
        assert reply["choices"][0]["message"]["content"] == "(fake) hello"
        assert fetch(f"{second.base_url}/models")["data"][0]["id"] == "fake"
    assert second.requests == []  # /models is the plugin's warm-up ping, not a model request
    with pytest.raises(urllib.error.URLError):
        fetch(f"{first.base_url}/models")


async def test_concurrent_requests_are_all_answered_and_recorded(fake: FakeOpenAI) -> None:
    fake.script(DEFAULT, [say("hi")])
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test") as client:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="fake", messages=[{"role": "user", "content": str(i)}]
                )
                for i in range(20)
            )
        )
    assert [r.choices[0].message.content for r in replies] == ["hi"] * 20
    assert len(fake.requests) == 20
