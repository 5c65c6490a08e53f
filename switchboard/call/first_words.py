"""The call's first words, made while the caller still hears ringing.

livekit-sip answers an inbound call (200 OK) the moment the caller's leg subscribes to a
track of the room, which is the agent's audio as the session starts (sip v1.8.0,
pkg/sip/inbound.go: ``waitSubscribe``, then ``acceptCall``). A greeting made only after
the session has started is heard as silence after the pick-up: the model's text and the
voice's first audio, one after the other. So the words are made first (the route's fixed
greeting, or the model's, asked with the call's instructions and no tools) and their first
audio is waited for before the session starts; the session then plays them at once. The
caller rings that much longer instead of hearing dead air, and the first word comes no
later than before.

Bounded: if the first audio is not there within ``FIRST_WORDS_BUDGET_S``, the session
starts anyway and the words are said when they come. If the model or the voice fails
before any audio, nothing is lost: the greeting is made the usual way, after the start
(``CallAgent.greet``), with the session's retries, fallback models and honest apology.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, llm, tokenize, tts, utils
from livekit.agents.llm.chat_context import Instructions

logger = logging.getLogger("switchboard.call")

# Longer than a cloud model's greeting and a cloud voice's first audio take (about
# 0.5-1.5 s), short enough that a caller is not left ringing for a stuck provider.
FIRST_WORDS_BUDGET_S = 2.0


@dataclass
class FirstWords:
    """Words to be said: their text and their audio as they are made."""

    text: AsyncIterator[str]
    audio: AsyncIterator[rtc.AudioFrame]
    source: str  # "fixed" or "model"
    # From the start of the making to the first audio; None: still being made when the
    # budget ran out (the session started anyway, and they are said when they come).
    ready_ms: float | None
    _first: asyncio.Future[None]
    _making: asyncio.Task[None]

    async def made_nothing(self) -> bool:
        """Whether the making ended (failed, or no audio) before its first audio: nothing
        was heard, so the caller must be greeted another way."""
        either: set[asyncio.Future[Any]] = {self._first, self._making}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        return not self._first.done()

    async def cancel(self) -> None:
        await utils.aio.cancel_and_wait(self._making)


async def prepare_first_words(
    *,
    voice: tts.TTS[Any],
    text: str | None,
    model: llm.LLM[Any] | None = None,
    instructions: str | Instructions = "",
    greet: str = "",
    tools: Sequence[llm.Tool | llm.Toolset] = (),
    conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    budget_s: float = FIRST_WORDS_BUDGET_S,
) -> FirstWords | None:
    """``text`` made into audio, or, without text, the model's greeting (``instructions``
    as its system prompt and ``greet`` as the turn's instruction, as the session's own
    ``generate_reply(instructions=greet)`` asks it, offered the same ``tools``: a model
    that wants one for its greeting gets it from the session's greeting instead, so the
    words are given up before any audio). As in the session, the model's words
    go to the voice as they come and a voice that cannot stream speaks sentence by
    sentence, so the first audio is the first sentence's.

    Returns once the first audio is there, or at ``budget_s`` with the words still being
    made (``ready_ms`` None). None: it failed before (logged); the caller of this then
    greets the usual way."""
    started = time.perf_counter()
    words, frames = utils.aio.Chan[str](), utils.aio.Chan[rtc.AudioFrame]()
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    speaker = _streaming(voice)

    async def write(stream: tts.SynthesizeStream) -> None:
        try:
            pieces = (
                _one(text)
                if text is not None
                else _model_text(model, instructions, greet, tools, conn_options)
            )
            async for piece in pieces:
                stream.push_text(piece)
                words.send_nowait(piece)
            stream.end_input()
        finally:
            words.close()

    async def read(stream: tts.SynthesizeStream) -> None:
        async for audio in stream:
            if not first.done():
                first.set_result(None)
            frames.send_nowait(audio.frame)

    async def make() -> None:
        try:
            async with speaker.stream() as stream:
                # Either failing ends both: a model that fails leaves the voice waiting.
                both = [asyncio.create_task(write(stream)), asyncio.create_task(read(stream))]
                try:
                    await asyncio.gather(*both)
                finally:
                    await utils.aio.cancel_and_wait(*both)
        finally:
            frames.close()

    task = asyncio.create_task(make(), name="first_words")
    either: set[asyncio.Future[Any]] = {first, task}
    await asyncio.wait(either, timeout=budget_s, return_when=asyncio.FIRST_COMPLETED)
    source = "fixed" if text is not None else "model"
    if first.done() or not task.done():
        ready_ms = (time.perf_counter() - started) * 1000 if first.done() else None
        if ready_ms is None:
            logger.info("first words not ready within %.1f s; the call starts anyway", budget_s)
        return FirstWords(words, _until_done(frames, task), source, ready_ms, first, task)
    if isinstance(task.exception(), GreetingWantsToolError):
        logger.info("the model's greeting runs a tool; greeting after the start")
    elif (error := task.exception()) is not None:
        logger.warning("first words failed (%s); greeting after the start", type(error).__name__)
    else:
        logger.warning("first words made no audio; greeting after the start")
    return None


def _streaming(voice: tts.TTS[Any]) -> tts.TTS[Any]:
    """The voice as the session would drive it: sentence by sentence if it cannot stream."""
    if voice.capabilities.streaming:
        return voice
    sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True)
    return tts.StreamAdapter(tts=voice, sentence_tokenizer=sentences)


async def _one(text: str) -> AsyncIterator[str]:
    yield text


async def _until_done(
    frames: utils.aio.Chan[rtc.AudioFrame], task: asyncio.Task[None]
) -> AsyncIterator[rtc.AudioFrame]:
    """The frames, then the making's end: a model or voice failing half-way is logged,
    and the words stop there (the session goes on)."""
    try:
        async for frame in frames:
            yield frame
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            logger.warning("the first words failed half-way (%s)", type(outcome).__name__)
    finally:
        task.cancel()


class GreetingWantsToolError(Exception):
    """The model answered the greeting with a tool call, which only the session can run."""


def greeting_tools(tools: Sequence[llm.Tool | llm.Toolset]) -> list[llm.Tool]:
    """The tools a greeting is offered: as the framework's ``on_enter`` replies, all but
    those flagged to be ignored there (``end_call``: a greeting never hangs up)."""
    return [
        tool
        for tool in llm.ToolContext(tools).flatten()
        if not (
            isinstance(tool, llm.FunctionTool | llm.RawFunctionTool)
            and tool.info.flags & llm.ToolFlag.IGNORE_ON_ENTER
        )
    ]


async def _model_text(
    model: llm.LLM[Any] | None,
    instructions: str | Instructions,
    greet: str,
    tools: Sequence[llm.Tool | llm.Toolset],
    conn_options: APIConnectOptions,
) -> AsyncIterator[str]:
    if model is None:
        raise ValueError("no text and no model to make it")
    chat = llm.ChatContext()
    if isinstance(instructions, Instructions):
        instructions = instructions.render(modality="audio")
    chat.add_message(role="system", content=instructions)
    chat.add_message(role="system", content=greet)
    offered = greeting_tools(tools) or None
    async with model.chat(chat_ctx=chat, tools=offered, conn_options=conn_options) as stream:
        async for chunk in stream:
            if chunk.delta is None:
                continue
            if chunk.delta.tool_calls:
                raise GreetingWantsToolError()
            if chunk.delta.content:
                yield chunk.delta.content
