"""A scripted stand-in for an OpenAI-compatible endpoint (chat completions + transcriptions),
and for Deepgram's streaming speech-to-text (``/v1/listen``, ``lab.testing.fake_deepgram``).

This machine reaches no paid AI, so tests point ``livekit.plugins.openai.LLM/STT(base_url=...)``
here. Replies are scripted per scenario; the step is the number of assistant messages already in
the request's ``messages``, so the conversation state lives in the request, not in the server.

    with FakeOpenAI() as fake:
        fake.script("dial_sales", [say("Hello!"), call("transfer", {"to": "sales"}), say("Bye")])
        fake.hear(["I want to talk to sales"])
        llm = openai.LLM(base_url=fake.base_url, api_key="test", model="fake")
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import threading
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import WSMsgType, web

from lab.testing.fake_deepgram import MIN_ENDPOINT_S, Endpointer, results

log = logging.getLogger(__name__)

# `scenario: 'x'`, `scenario="x"`, and the dict repr `'scenario': 'x'` that our agent renders
# from the caller's custom attributes into its instructions
SCENARIO_RE = re.compile(r"""scenario['"]?\s*[:=]\s*['"]([A-Za-z0-9_.-]+)""")
DEFAULT = "default"
# A warm transfer's side session (the agent briefing the person it called) is offered this
# tool; its requests play the script "<scenario>@human" when there is one.
HUMAN_SIDE_TOOL = "connect_to_caller"
HUMAN_SIDE = "@human"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    """One model turn: optional text, then zero or more (parallel) tool calls."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()

    def and_call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Step:
        return replace(self, calls=(*self.calls, ToolCall(name, dict(arguments or {}))))


def say(text: str) -> Step:
    return Step(text=text)


def call(name: str, arguments: Mapping[str, Any] | None = None, *, text: str = "") -> Step:
    return Step(text=text).and_call(name, arguments)


@dataclass(frozen=True)
class Recorded:
    """One model request (``GET /v1/models`` warm-up pings are not recorded)."""

    path: str
    body: dict[str, Any]  # the JSON body, or a transcription's form fields + "file_bytes"
    at: float  # time.time() on arrival
    status: int  # what we answered
    scenario: str | None = None  # the script used (chat only)
    step: int | None = None


def scenario_of(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The scenario named in the system/developer text, if any."""
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # parts, when images or cache breakpoints are used
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        found = isinstance(content, str) and SCENARIO_RE.search(content)
        if m.get("role") in ("system", "developer") and found:
            return found.group(1)
    return None


def offers_tool(body: Mapping[str, Any], name: str) -> bool:
    """Whether a chat request offers the model the tool ``name``."""
    tools = body.get("tools") or []
    return any((t.get("function") or {}).get("name") == name for t in tools)


def _tool_call(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    fn = {"name": name, "arguments": arguments}
    return {"index": index, "id": call_id, "type": "function", "function": fn}


def _error(status: int) -> web.Response:
    err = {"message": f"fake failure ({status})", "type": "server_error", "code": None}
    return web.json_response({"error": err}, status=status)


class FakeOpenAI:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._lock = threading.Lock()  # the state below is shared by test and server threads
        self._scripts: dict[str, list[Step]] = {}
        self._utterances: deque[str] = deque()
        self._transcriber: Callable[[float], str] | None = None
        self._fail_count, self._fail_status, self._delay = 0, 500, 0.0
        self._requests: list[Recorded] = []
        self._audio_sizes: list[int] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- scripting and inspection (from any thread) ---------------------------------------
    def script(self, scenario: str, steps: Iterable[Step]) -> None:
        with self._lock:
            self._scripts[scenario] = list(steps)

    def hear(self, utterances: Iterable[str]) -> None:
        """Queue what the next transcription requests return, one each, then ""."""
        with self._lock:
            self._utterances.extend(utterances)

    def transcribe_with(self, transcriber: Callable[[float], str] | None) -> None:
        """Answer each transcription request with ``transcriber(arrival time)`` instead
        of the queue: for callers whose utterances the voice detector may split, where
        the text must follow the audio (``bench.turns`` knows when it spoke what)."""
        with self._lock:
            self._transcriber = transcriber

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        with self._lock:
            self._fail_count, self._fail_status = n, status

    def delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def audio_sizes(self) -> list[int]:
        with self._lock:
            return list(self._audio_sizes)

    def tool_results(self, scenario: str = DEFAULT) -> list[dict[str, Any]]:
        """The ``role: "tool"`` messages sent back to the model, first sighting only (every
        later request repeats them), each with the called tool's ``name`` added."""
        seen: dict[str, dict[str, Any]] = {}
        for rec in self.requests:
            messages = rec.body.get("messages", []) if rec.scenario == scenario else []
            calls = [tc for m in messages for tc in m.get("tool_calls") or []]
            names = {tc.get("id"): tc.get("function", {}).get("name") for tc in calls}
            for m in messages:
                if m.get("role") == "tool" and m.get("tool_call_id") not in seen:
                    seen[m["tool_call_id"]] = {**m, "name": names.get(m["tool_call_id"])}
        return list(seen.values())

    # -- lifecycle: an own thread + event loop, so it works under any pytest loop (or none) --
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def deepgram_url(self) -> str:
        """Where ``livekit.plugins.deepgram.STT(base_url=...)`` streams to."""
        return f"{self.base_url}/listen"

    def __enter__(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._stop is None:
            raise RuntimeError(f"FakeOpenAI could not listen on {self.host}:{self.port}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # audio uploads
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/listen", self._listen)
        # short shutdown: clients keep connections alive, which would stall cleanup otherwise
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()
        finally:
            self._ready.set()  # also on failure, so that __enter__ does not wait it out
            await runner.cleanup()

    # -- handlers (on the server's loop) ---------------------------------------------------
    async def _fault(self) -> int | None:
        """Apply the configured latency; return the status to fail with, if one is due."""
        with self._lock:
            delay, status, fail = self._delay, self._fail_status, self._fail_count > 0
            self._fail_count = max(0, self._fail_count - 1)
        await asyncio.sleep(delay)
        return status if fail else None

    async def _models(self, request: web.Request) -> web.Response:
        # the LLM plugin pings this as a fire-and-forget prewarm; it is never failed, so
        # that fail_next() deterministically hits the model call under test
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        at, status = time.time(), await self._fault()
        body: dict[str, Any] = await request.json()
        messages = body.get("messages", [])
        index = sum(1 for m in messages if m.get("role") == "assistant")
        wanted = scenario_of(messages) or DEFAULT
        if offers_tool(body, HUMAN_SIDE_TOOL):
            wanted += HUMAN_SIDE
        with self._lock:
            scenario = wanted if wanted in self._scripts else DEFAULT
            steps = self._scripts.get(scenario)
            self._requests.append(Recorded(request.path, body, at, status or 200, scenario, index))
        if wanted != scenario:
            log.warning("FakeOpenAI: no script %r, using %r", wanted, DEFAULT)
        if status is not None:
            return _error(status)
        step = say("(fake) hello") if steps is None else say("(fake) done")
        step = steps[index] if steps is not None and index < len(steps) else step
        return await self._reply(request, body, step)

    async def _reply(
        self, request: web.Request, body: dict[str, Any], step: Step
    ) -> web.StreamResponse:
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "created": int(time.time())}
        head["model"] = body.get("model", "fake")
        calls = [
            (f"call_{uuid.uuid4().hex[:8]}", c.name, json.dumps(c.arguments)) for c in step.calls
        ]
        finish = "tool_calls" if calls else "stop"
        prompt = len(json.dumps(body.get("messages", []))) // 4  # plausible, not real, counts
        done = len(step.text.split()) + 10 * len(calls)
        usage = {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
            if calls:
                message["tool_calls"] = [_tool_call(i, *c) for i, c in enumerate(calls)]
            choice = {"index": 0, "message": message, "finish_reason": finish}
            reply = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return web.json_response(reply)

        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": word} for word in re.findall(r"\s*\S+\s*", step.text)]
        for i, (call_id, name, args) in enumerate(calls):
            # as OpenAI does: id + name first, then the JSON arguments in fragments, so that
            # the client's reassembly is exercised
            deltas.append({"tool_calls": [_tool_call(i, call_id, name, "")]})
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                deltas.append({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        chunk = {**head, "object": "chat.completion.chunk"}
        choices: list[dict[str, Any]] = [
            {"index": 0, "delta": d, "finish_reason": None} for d in deltas
        ]
        choices.append({"index": 0, "delta": {}, "finish_reason": finish})
        events = [{**chunk, "choices": [c]} for c in choices]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for event in events:
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionResetError:
            pass  # the client gave up (interruption, timeout): nothing left to send
        return resp

    def _text_at(self, at: float) -> str:
        """What a transcription arriving at ``at`` says (under ``_lock``): the
        transcriber's text for that time, else the next queued utterance, else ""."""
        if self._transcriber is not None:
            return self._transcriber(at)
        return self._utterances.popleft() if self._utterances else ""

    async def _transcribe(self, request: web.Request) -> web.Response:
        at, status = time.time(), await self._fault()
        form = await request.post()
        upload = form.get("file")
        audio = upload.file.read() if isinstance(upload, web.FileField) else b""
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        fields["file_bytes"] = len(audio)
        with self._lock:
            self._requests.append(Recorded(request.path, fields, at, status or 200))
            self._audio_sizes.append(len(audio))
            text = "" if status is not None else self._text_at(at)
        if status is not None:
            return _error(status)
        # whisper-1 is asked for verbose_json, which the SDK parses as TranscriptionVerbose
        if fields.get("response_format") == "verbose_json":
            with wave.open(io.BytesIO(audio)) as wav:
                seconds = wav.getnframes() / wav.getframerate()
            lang = fields.get("language", "en")
            return web.json_response({"text": text, "language": lang, "duration": seconds})
        return web.json_response({"text": text})

    async def _listen(self, request: web.Request) -> web.WebSocketResponse:
        """Deepgram's streaming recognition: PCM in, a final result per utterance out."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            rate = int(request.query.get("sample_rate", "16000"))
            asked = request.query.get("endpointing", "25")
            endpoint_s = max(MIN_ENDPOINT_S, int(asked) / 1000 if asked.isdigit() else 0.0)
            meter = Endpointer(rate, endpoint_s)
        except ValueError:
            await ws.close(code=1008, message=b"bad sample_rate")
            return ws
        request_id, last = str(uuid.uuid4()), ""
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                segments = meter.push(msg.data)
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type")
                if kind == "CloseStream":
                    break
                segments = meter.flush() if kind == "Finalize" else []
            else:
                break
            for segment in segments:
                at = time.time()
                with self._lock:
                    text = self._text_at(at)
                    if self._transcriber is not None and text == last:
                        # a segment can end inside a part (a gap between words): its text
                        # is sent once, at the first segment after the part has ended
                        text = ""
                    self._requests.append(Recorded(request.path, {"text": text}, at, 200))
                if text:
                    last = text
                    await ws.send_json(results(text, segment, request_id=request_id))
        await ws.close()
        return ws


def main() -> None:
    """``python -m lab.testing.fake_openai``: the double as a server of its own (the lab's
    AI worker with ``lab up --ai``), replying with its default script until stopped."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m lab.testing.fake_openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAI(args.host, args.port) as fake:
        print(f"fake OpenAI-compatible endpoint on {fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
