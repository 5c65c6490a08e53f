"""`python -m bench.turns`: what one conversational turn costs when the AI is instant.

The AI worker runs as tests/conftest.py's ``ai_lab`` fixture starts it, its LLM and
speech-to-text the OpenAI-compatible test double (lab/testing/fake_openai.py), which answers at
once; the voice is espeak-ng.  Each real SIP call speaks a prompt (espeak-ng, PCMU) a few
times, with silence between, after a lead-in that leaves the agent's greeting alone.

A turn is measured at the caller: from the end of the caller's speech to the first
non-silent agent audio packet after it.  The caller's audio starts with the 200 OK, so
the end of speech is the 200 OK's time plus the offset of the last loud frame in what was
sent (the sender starts when the phone's trace poll sees the 200 OK: up to one 20 ms poll
later, so the figure errs high by at most that).  The fake's request times split the
turn: end of speech -> transcription request (the VAD deciding the caller stopped),
-> first chat request (transcript back; with preemptive generation, before the turn is
confirmed) -> first agent audio (end-of-turn decision, LLM, TTS, LiveKit, the SIP service).
The lab runs with its state in .lab/bench/ (see ``bench.scale.private_lab``).  Writes
bench/out/turns.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scale import private_lab, wait_for_no_lab
from bench.stats import summary_ms
from lab.audio import (
    FRAME_SAMPLES,
    PT_PCMU,
    SAMPLE_RATE,
    SILENCE_RMS,
    load_pcmu,
    pcmu_rms,
    prompt_pcmu,
    silence_pcmu,
)
from lab.phone import CallResult, place_call
from lab.procs import LabError
from lab.stack import Lab, ai_worker_env
from lab.testing.fake_openai import FakeOpenAI, Recorded, say

OUT = Path(__file__).resolve().parent / "out"
PROMPT = "I would like to speak to sales"
SCENARIO = "bench-turns"
LEAD_IN = 3.0  # seconds of silence first: the greeting plays alone
GAP = 5.0  # seconds of silence after each utterance: room for the reply
HELD = 2.0  # a reply later than this waited for the end-of-turn detector's max_delay


@dataclass(frozen=True)
class Turn:
    call: int
    index: int
    speech_end: float  # wall clock at the caller
    reply_at: float | None  # first loud agent packet after it, before the next utterance
    stt_at: float | None  # transcription request reached the fake
    llm_at: float | None  # first chat request after that
    chats: tuple[float, ...] = ()  # every chat request until the next utterance

    @property
    def latency(self) -> float | None:
        return None if self.reply_at is None else self.reply_at - self.speech_end


def speech_spans(pcmu: bytes) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of loud 20 ms frames; runs closer than half a
    second are one utterance (the pauses between words)."""
    spans: list[tuple[float, float]] = []
    step = FRAME_SAMPLES / SAMPLE_RATE
    for i in range(0, len(pcmu), FRAME_SAMPLES):
        if pcmu_rms(pcmu[i : i + FRAME_SAMPLES]) <= SILENCE_RMS:
            continue
        start = i / SAMPLE_RATE
        if spans and start - spans[-1][1] < 0.5:
            spans[-1] = (spans[-1][0], start + step)
        else:
            spans.append((start, start + step))
    return spans


def caller_audio(prompt: bytes, turns: int) -> tuple[bytes, list[tuple[float, float]]]:
    """What the caller sends from the answer on, and where its utterances are in it."""
    audio = silence_pcmu(LEAD_IN) + (prompt + silence_pcmu(GAP)) * turns
    spans = speech_spans(audio)
    if len(spans) != turns:
        raise RuntimeError(f"expected {turns} utterances in the caller's audio, found {spans}")
    return audio, spans


def first_loud(result: CallResult, after: float, before: float) -> float | None:
    return next(
        (
            a.at
            for a in result.arrivals
            if a.payload_type == PT_PCMU and a.rms > SILENCE_RMS and after < a.at < before
        ),
        None,
    )


def first_request(requests: Sequence[Recorded], path: str, after: float) -> float | None:
    return next((r.at for r in requests if r.path.endswith(path) and r.at > after), None)


def turns_of(
    call: int,
    result: CallResult,
    spans: list[tuple[float, float]],
    requests: Sequence[Recorded],
) -> list[Turn]:
    if result.answered_at is None:
        return []
    out = []
    for i, (_, end) in enumerate(spans):
        speech_end = result.answered_at + end
        next_start = result.answered_at + spans[i + 1][0] if i + 1 < len(spans) else 1e12
        stt_at = first_request(requests, "/audio/transcriptions", speech_end - 0.5)
        llm_at = first_request(requests, "/chat/completions", stt_at) if stt_at else None
        reply = first_loud(result, speech_end, next_start)
        chats = tuple(
            r.at for r in requests if r.path.endswith("/chat/completions")
            and speech_end < r.at < next_start
        )  # fmt: skip
        out.append(Turn(call, i, speech_end, reply, stt_at, llm_at, chats))
    return out


async def run_calls(
    lab: Lab, fake: FakeOpenAI, calls: int, turns: int
) -> tuple[list[Turn], list[CallResult]]:
    audio, spans = caller_audio(load_pcmu(prompt_pcmu(PROMPT)), turns)
    seconds = len(audio) / SAMPLE_RATE
    # The greeting, then one short reply per turn (the step is the number of assistant
    # messages so far, so replies line up with turns whatever the transcripts say).
    fake.script(SCENARIO, [say("Hello."), *[say("Sure.") for _ in range(turns)]])
    out: list[Turn] = []
    results = []
    for c in range(calls):
        fake.hear([PROMPT] * turns)
        result = await place_call(
            sip_host=lab.c.server_ip, sip_port=lab.c.sip_port, to_number=lab.c.ai_number,
            from_number=f"+4420799{c:05d}", local_ip=lab.c.phone_ip,
            headers={"X-Scenario": SCENARIO}, send_audio=audio,
            hangup=seconds + 1.0, timeout=seconds + 30.0,
        )  # fmt: skip
        results.append(result)
        found = turns_of(c, result, spans, fake.requests)
        missed = sum(t.reply_at is None for t in found)
        print(f"bench.turns: call {c}: answered={result.answered} ended_by={result.ended_by} "
              f"turns {len(found) - missed}/{turns} replied", file=sys.stderr)  # fmt: skip
        out += found
    return out, results


def _gaps(turns: Sequence[Turn], a: str, b: str) -> list[float]:
    values = []
    for t in turns:
        x, y = getattr(t, a), getattr(t, b)
        if x is not None and y is not None:
            values.append(y - x)
    return values


def _ms(value: float | None, since: float) -> float | None:
    return None if value is None else round((value - since) * 1000, 1)


def _turn_row(t: Turn) -> dict[str, Any]:
    return {
        "call": t.call,
        "turn": t.index,
        "latency_ms": _ms(t.reply_at, t.speech_end),
        "stt_after_ms": _ms(t.stt_at, t.speech_end),
        "llm_after_ms": _ms(t.llm_at, t.speech_end),
        "chat_requests_after_ms": [_ms(at, t.speech_end) for at in t.chats],
    }


def figures(turns: Sequence[Turn], calls: int, per_call: int) -> dict[str, Any]:
    latencies = [t.latency for t in turns if t.latency is not None]
    return {
        "calls": calls,
        "turns_per_call": per_call,
        "turns_expected": calls * per_call,
        "turns_replied": len(latencies),
        "prompt": PROMPT,
        "speech_end_to_first_agent_audio": summary_ms(latencies),
        # Two populations (see RESULTS.md): the turn detector let the turn end at once, or
        # it judged the caller unfinished and the agent waited out max_delay (3 s).
        "turns_under_2s": summary_ms([x for x in latencies if x < HELD]),
        "turns_over_2s": summary_ms([x for x in latencies if x >= HELD]),
        "speech_end_to_stt_request": summary_ms(_gaps(turns, "speech_end", "stt_at")),
        "stt_request_to_llm_request": summary_ms(_gaps(turns, "stt_at", "llm_at")),
        "llm_request_to_first_agent_audio": summary_ms(_gaps(turns, "llm_at", "reply_at")),
        "turns": [_turn_row(t) for t in turns],
    }


def print_table(fig: dict[str, Any]) -> None:
    print(f"\n{fig['turns_replied']}/{fig['turns_expected']} turns replied "
          f"({fig['calls']} calls), instant LLM/STT doubles, espeak-ng voice")  # fmt: skip
    print(f"{'':38}{'n':>4}{'p50':>10}{'p95':>10}{'max':>10}")
    for name in (
        "speech_end_to_first_agent_audio",
        "turns_under_2s",
        "turns_over_2s",
        "speech_end_to_stt_request",
        "stt_request_to_llm_request",
        "llm_request_to_first_agent_audio",
    ):
        row = fig[name]
        print(f"{name:38}{row['n']:>4}{row['p50_ms']:>7.0f} ms{row['p95_ms']:>7.0f} ms"
              f"{row['max_ms']:>7.0f} ms")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turns")
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns-per-call", type=int, default=5)
    args = parser.parse_args()
    lab = private_lab()
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode=None)
        with FakeOpenAI(host="127.0.0.1", port=0) as fake:
            lab.start_agent("start", name="agent-ai", env=ai_worker_env(env, fake.base_url))
            turns, _ = asyncio.run(run_calls(lab, fake, args.calls, args.turns_per_call))
    except LabError as e:
        print(f"bench.turns: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    fig = figures(turns, args.calls, args.turns_per_call)
    print_table(fig)
    OUT.mkdir(exist_ok=True)
    (OUT / "turns.json").write_text(json.dumps(fig, indent=1))
    return 0 if fig["turns_replied"] == fig["turns_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
