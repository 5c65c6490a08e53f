"""`python -m bench.turns`: how fast the agent answers, and how often it cuts callers off,
with the framework's turn-taking and with ours, when the AI is instant.

The AI worker runs as tests/conftest.py's ``ai_lab`` fixture starts it, its LLM and
speech-to-text the OpenAI-compatible test double (lab/testing/fake_openai.py), which
answers at once; the voice is espeak-ng. Real SIP calls speak a set of caller utterances
(``UTTERANCES``: statements, questions, yes/no answers, numbers and spelled names, and
incomplete ones that pause mid-sentence, then go on), each with one of several espeak-ng
voices and speeds. Calls alternate between the framework's values (the lab route
``lab-turns-framework``, asked for by the X-Scenario header), the phone defaults of
``[route.turn]`` (every other lab route) and the fast end of the trade-off (route
``lab-turns-fast``: silence alone ends the turn), so all see the same machine load.

A turn is measured at the caller: from the end of the caller's speech (the 200 OK's time
plus the offset of the last loud frame sent; errs high by at most one 20 ms poll) to the
first loud agent packet after it. An incomplete utterance is cut off (a false endpoint)
when agent audio arrives after its first part and before its last part ends. The fake's
transcription answers follow the audio: each request gets the text of the part that
ended last before it arrived, so the end-of-turn model reads what the caller had said so
far. ``--recordings DIR`` speaks a real human voice instead of espeak-ng: the Asterisk
prompts ``python -m bench.voices DIR`` fetched (its lone "unfinished" fragments are left
out: with nothing after them there is no false endpoint to see). The lab runs with its
state in ``<LAB_STATE_DIR or .lab>/bench``. Writes bench/out/turns.json.

``--stt deepgram`` gives the worker Deepgram's streaming speech-to-text (the same double's
``/v1/listen``, ``lab.testing.fake_deepgram``) instead of batch transcription: the shape of
production, where the transcript is ready as the caller stops, not after the voice
detector's silence plus an upload. ``--configs`` picks the scenarios. The worker's own
figures for each configuration (its call records) are printed beside the caller's, and
with ``--debug`` each complete turn splits into the way in (the caller's last loud frame →
the end of speech as the worker placed it), the worker (→ its reply's first audio frame)
and the way out (→ the first loud packet at the phone), from the wall-clock anchors the
worker logs at debug level ("turn timing").
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import voices
from bench.scale import private_lab, wait_for_no_lab
from bench.stats import summary_ms
from lab.audio import (
    FRAME_SAMPLES,
    PT_PCMU,
    SAMPLE_RATE,
    SILENCE_RMS,
    load_pcmu,
    pad_frames,
    pcmu_rms,
    prompt_pcmu,
    silence_pcmu,
)
from lab.phone import CallResult, place_call
from lab.procs import LabError
from lab.stack import Lab, ai_worker_env
from lab.testing.fake_openai import FakeOpenAI, say
from switchboard.data.db import open_database
from switchboard.data.records.latency import turn_latency
from switchboard.data.records.query import recent_calls

OUT = Path(__file__).resolve().parent / "out"
TUNED = "bench-turns"  # the lab's routes without a [route.turn]: the phone defaults
FRAMEWORK = "bench-turns-framework"  # route lab-turns-framework: the framework's values
FAST = "bench-turns-fast"  # route lab-turns-fast: silence alone, as short as it goes
CONFIGS = (FRAMEWORK, TUNED, FAST)


def route_of(config: str) -> str | None:
    """The lab route a configuration's calls get (None: the phone defaults, which every
    lab route without a [route.turn] has): scenario bench-turns-X asks for lab-turns-X."""
    return None if config == TUNED else "lab-turns-" + config.removeprefix(TUNED + "-")


LEAD_IN = 3.0  # seconds of silence first: the greeting plays alone
GAP = 4.0  # seconds of silence after each utterance: room for the reply
PAUSE = 1.0  # the hesitation inside an incomplete utterance
PER_CALL = 9  # utterances per call
# espeak-ng voices and speeds (words per minute), taken in turn.
VOICES = (("en-us", 165), ("en-gb", 150), ("en-us+f3", 185), ("en-gb-x-rp", 140))

# (kind, parts): one part is a complete utterance; more are said with PAUSE between.
UTTERANCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("statement", ("I would like to speak to sales.",)),
    ("statement", ("My internet has been down since this morning.",)),
    ("statement", ("I need to change the address on my account.",)),
    ("statement", ("I am calling about my last invoice.",)),
    ("statement", ("The delivery never arrived.",)),
    ("statement", ("I want to cancel my subscription.",)),
    ("statement", ("I got a text message asking me to call you.",)),
    ("question", ("What time do you close today?",)),
    ("question", ("Can you put me through to billing?",)),
    ("question", ("Is there someone who speaks Spanish?",)),
    ("question", ("How much does the premium plan cost?",)),
    ("question", ("Where is my order?",)),
    ("question", ("Could you tell me my balance please?",)),
    ("yes_no", ("Yes.",)),
    ("yes_no", ("No, thank you.",)),
    ("yes_no", ("Yes please.",)),
    ("yes_no", ("No.",)),
    ("yes_no", ("That's right.",)),
    ("yes_no", ("Okay.",)),
    ("number", ("My account number is 4 7 1 9 2 3.",)),
    ("number", ("It's 0 2 0 7 9 4 6 0 0 1 8.",)),
    ("number", ("My postcode is S W 1 A 1 A A.",)),
    ("number", ("The name is Smith, S M I T H.",)),
    ("number", ("The order number is 5 5 1 2.",)),
    ("number", ("My name is Ann, A N N.",)),
    ("incomplete", ("I would like to speak to", "someone in billing.")),
    ("incomplete", ("My account number is", "4 7 1 9.")),
    ("incomplete", ("I was wondering if", "you could help me with my bill.")),
    ("incomplete", ("The problem is that", "my phone keeps dropping calls.")),
    ("incomplete", ("Could you", "check my order please?")),
    ("incomplete", ("I need to talk to someone about", "a refund.")),
    ("incomplete", ("Well, um,", "I am not sure.")),
    ("incomplete", ("So the thing is", "I moved house last week.")),
    ("incomplete", ("My name is", "Ann Smith.")),
)


@dataclass(frozen=True)
class Utterance:
    kind: str
    voice: str
    parts: tuple[tuple[str, bytes], ...]  # (text, 8 kHz PCMU) of each part


def espeak_utterances() -> list[Utterance]:
    out = []
    for i, (kind, texts) in enumerate(UTTERANCES):
        voice, wpm = VOICES[i % len(VOICES)]
        spoken = [(t, load_pcmu(prompt_pcmu(t, voice=voice, wpm=wpm))) for t in texts]
        out.append(Utterance(kind, f"{voice}@{wpm}", tuple(spoken)))
    return out


def recorded_utterances(folder: Path) -> list[Utterance]:
    out = []
    mulaw = ["-t", "raw", "-e", "mu-law", "-b", "8"]
    with tempfile.TemporaryDirectory() as tmp:
        for r in voices.load(folder):
            if r.kind == "unfinished":
                continue
            raw = Path(tmp) / "part.ulaw"
            spoken = [
                (text, pad_frames(voices.to_file(files, raw, *mulaw).read_bytes()))
                for text, files in zip(r.texts, r.parts, strict=True)
            ]
            out.append(Utterance(r.kind, voices.VOICE, tuple(spoken)))
    return out


@dataclass(frozen=True)
class Part:
    text: str
    start: float  # seconds from the answer
    speech_end: float


@dataclass(frozen=True)
class Said:
    kind: str
    voice: str
    parts: tuple[Part, ...]
    next_start: float  # when the next utterance starts (or the call ends)

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.parts)


@dataclass(frozen=True)
class Prediction:
    """One end-of-turn model prediction, from the worker's debug log (``--debug``)."""

    at: float  # wall clock
    probability: float
    threshold: float


def log_rows(log: Path, message: str) -> Iterator[dict[str, Any]]:
    """The worker's JSON log lines with ``message``."""
    for line in log.read_text(errors="replace").splitlines():
        if f'"message": "{message}"' in line:
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def predictions(log: Path) -> list[Prediction]:
    out = []
    for row in log_rows(log, "eot prediction"):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            at = datetime.fromisoformat(row["timestamp"]).timestamp()
            out.append(Prediction(at, float(row["probability"]), float(row["unlikely_threshold"])))
    return out


@dataclass(frozen=True)
class Turn:
    config: str
    call: int
    said: Said
    speech_end: float  # wall clock at the caller: the end of the last part
    first_end: float  # wall clock: the end of the first part (of an incomplete utterance)
    reply_at: float | None  # first loud agent packet after it, before the next utterance
    cut_off_at: float | None  # first loud agent packet inside an incomplete utterance
    # The model's last prediction after each part (before the next part or utterance),
    # and its threshold: under it the turn waits max_endpointing_delay.
    probabilities: tuple[float | None, ...] = ()
    threshold: float | None = None
    # Where the worker put the end of the caller's speech (its voice detector, back-dated
    # by the silence it waited) and the start of its reply's voice (``--debug``).
    worker_heard_end: float | None = None
    worker_spoke: float | None = None

    @property
    def split(self) -> tuple[float, float, float] | None:
        """(way in, worker, way out) in seconds, when both anchors were logged. The way in:
        the caller's last loud frame → the end of speech as the worker places it (the media
        path in, and how much later than the phone's level meter the voice detector hears
        silence). The worker: → its reply's first audio frame. The way out: → the first
        loud packet at the phone."""
        heard, spoke, reply = self.worker_heard_end, self.worker_spoke, self.reply_at
        if heard is None or spoke is None or reply is None:
            return None
        return heard - self.speech_end, spoke - heard, reply - spoke

    @property
    def latency(self) -> float | None:
        return None if self.reply_at is None else self.reply_at - self.speech_end

    @property
    def judged_finished(self) -> bool | None:
        """Whether the model judged the utterance's end finished (``--debug`` only)."""
        last = self.probabilities[-1] if self.probabilities else None
        return None if last is None or self.threshold is None else last >= self.threshold


def loud_span(pcmu: bytes) -> tuple[float, float]:
    """(first, end) seconds of the loud 20 ms frames of one spoken part."""
    loud = [
        i / SAMPLE_RATE
        for i in range(0, len(pcmu), FRAME_SAMPLES)
        if pcmu_rms(pcmu[i : i + FRAME_SAMPLES]) > SILENCE_RMS
    ]
    if not loud:
        raise RuntimeError("a spoken prompt came out silent")
    return loud[0], loud[-1] + FRAME_SAMPLES / SAMPLE_RATE


def call_audio(utterances: Sequence[Utterance]) -> tuple[bytes, list[Said]]:
    """What the caller sends from the answer on, and where each utterance is in it."""
    audio = silence_pcmu(LEAD_IN)
    said: list[tuple[str, str, list[Part]]] = []
    for u in utterances:
        parts = []
        for n, (text, pcmu) in enumerate(u.parts):
            if n:
                audio += silence_pcmu(PAUSE)
            _, end = loud_span(pcmu)
            at = len(audio) / SAMPLE_RATE
            parts.append(Part(text, at, at + end))
            audio += pcmu
        audio += silence_pcmu(GAP)
        said.append((u.kind, u.voice, parts))
    total = len(audio) / SAMPLE_RATE
    starts = [p[2][0].start for p in said[1:]] + [total]
    return audio, [Said(k, v, tuple(p), nxt) for (k, v, p), nxt in zip(said, starts, strict=True)]


class Transcriber:
    """The fake's speech-to-text for one call: a request gets the text of the part that
    ended last before it arrived (the voice detector sends a part once it has ended)."""

    def __init__(self, answered_at: float, said: Sequence[Said]) -> None:
        parts = sorted((answered_at + p.speech_end, p.text) for s in said for p in s.parts)
        self.ends, self.texts = [e for e, _ in parts], [t for _, t in parts]

    def __call__(self, at: float) -> str:
        i = bisect.bisect_right(self.ends, at) - 1
        return self.texts[i] if i >= 0 else ""


def first_loud(result: CallResult, after: float, before: float) -> float | None:
    return next(
        (
            a.at
            for a in result.arrivals
            if a.payload_type == PT_PCMU and a.rms > SILENCE_RMS and after < a.at < before
        ),
        None,
    )


def turns_of(config: str, call: int, result: CallResult, said: Sequence[Said]) -> list[Turn]:
    if result.answered_at is None:
        return []
    t0, out = result.answered_at, []
    for s in said:
        end = t0 + s.parts[-1].speech_end
        cut = None
        if len(s.parts) > 1:
            cut = first_loud(result, t0 + s.parts[0].speech_end, end)
        reply = first_loud(result, end, t0 + s.next_start)
        out.append(Turn(config, call, s, end, t0 + s.parts[0].speech_end, reply, cut))
    return out


@dataclass(frozen=True)
class Timing:
    """One message's wall-clock anchor, from the worker's "turn timing" debug lines."""

    role: str
    at: float


def timings(log: Path) -> list[Timing]:
    out = []
    for row in log_rows(log, "turn timing"):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            role = str(row["role"])
            key = "stopped_speaking_at" if role == "user" else "started_speaking_at"
            out.append(Timing(role, float(row[key])))
    return out


def with_timings(turns: Sequence[Turn], found: Sequence[Timing]) -> list[Turn]:
    """Each answered turn's last "caller stopped" before its reply reached the phone, and
    the first "agent started" after the caller's last part began."""
    out = []
    for t in turns:
        if t.reply_at is None:
            out.append(t)
            continue
        begun = t.speech_end - (t.said.parts[-1].speech_end - t.said.parts[-1].start)
        heard = [x.at for x in found if x.role == "user" and begun < x.at < t.reply_at]
        spoke = [x.at for x in found if x.role == "assistant" and begun < x.at < t.reply_at]
        out.append(
            replace(
                t,
                worker_heard_end=heard[-1] if heard else None,
                worker_spoke=spoke[0] if spoke else None,
            )
        )
    return out


def with_predictions(turns: Sequence[Turn], found: Sequence[Prediction]) -> list[Turn]:
    """Each part's last prediction before the next part starts (or the next utterance)."""
    out = []
    for t in turns:
        t0 = t.speech_end - t.said.parts[-1].speech_end
        bounds = [p.start for p in t.said.parts[1:]] + [t.said.next_start]
        probs, threshold = [], None
        for part, until in zip(t.said.parts, bounds, strict=True):
            inside = [p for p in found if t0 + part.speech_end - 0.3 < p.at < t0 + until]
            probs.append(inside[-1].probability if inside else None)
            threshold = inside[-1].threshold if inside else threshold
        out.append(replace(t, probabilities=tuple(probs), threshold=threshold))
    return out


def plan(
    voiced: Sequence[Utterance], calls_per_config: int, configs: Sequence[str] = CONFIGS
) -> list[tuple[str, Sequence[Utterance]]]:
    """The calls in the order placed: the configurations alternate, and each speaks the
    utterances in the same order with the same voices, so they differ only in config."""
    chunks = [voiced[i : i + PER_CALL] for i in range(0, len(voiced), PER_CALL)]
    chunks = chunks[:calls_per_config] if calls_per_config else chunks
    return [(config, chunk) for chunk in chunks for config in configs]


async def run_calls(
    lab: Lab,
    fake: FakeOpenAI,
    voiced: Sequence[Utterance],
    calls_per_config: int,
    configs: Sequence[str],
) -> list[Turn]:
    replies = [say("Hello."), *[say("Sure.") for _ in range(100)]]
    for config in configs:
        fake.script(config, replies)
    out: list[Turn] = []
    for c, (config, chunk) in enumerate(plan(voiced, calls_per_config, configs)):
        audio, said = call_audio(chunk)
        seconds = len(audio) / SAMPLE_RATE
        # The fake answers by time, so it learns the answer's time as the audio starts.
        fake.transcribe_with(None)

        def answered(at: float, said: Sequence[Said] = said) -> None:
            fake.transcribe_with(Transcriber(at, said))

        result = await place_call(
            sip_host=lab.c.server_ip,
            sip_port=lab.c.sip_port,
            to_number=lab.c.ai_number,
            from_number=f"+4420799{c:05d}",
            local_ip=lab.c.phone_ip,
            headers={"X-Scenario": config},
            send_audio=audio,
            on_answer=answered,
            hangup=seconds + 1.0,
            timeout=seconds + 30.0,
        )
        found = turns_of(config, c, result, said)
        missed = sum(t.reply_at is None for t in found)
        cut = sum(t.cut_off_at is not None for t in found)
        print(
            f"bench.turns: call {c} ({config}): answered={result.answered} "
            f"replied {len(found) - missed}/{len(found)}, cut off {cut}",
            file=sys.stderr,
        )
        out += found
    fake.transcribe_with(None)
    return out


def _summary(turns: Sequence[Turn]) -> dict[str, Any]:
    latencies = [t.latency for t in turns if t.latency is not None]
    return {**summary_ms(latencies), "unanswered": len(turns) - len(latencies)}


def _split(turns: Sequence[Turn]) -> dict[str, Any]:
    """A complete turn's time at the phone in three (``Turn.split``), over the turns with
    both of the worker's anchors (``--debug``)."""
    splits = [s for t in turns if (s := t.split) is not None]
    ins, worker, outs = (list(x) for x in zip(*splits, strict=True)) if splits else ([], [], [])
    return {"way_in": summary_ms(ins), "worker": summary_ms(worker), "way_out": summary_ms(outs)}


def figures(turns: Sequence[Turn], load: Sequence[tuple[float, float, float]]) -> dict[str, Any]:
    voiced = dict.fromkeys(t.said.voice for t in turns)
    configs = list(dict.fromkeys(t.config for t in turns))
    out: dict[str, Any] = {"pause_s": PAUSE, "voices": list(voiced), "configs": configs}
    for config in configs:
        mine = [t for t in turns if t.config == config]
        complete = [t for t in mine if len(t.said.parts) == 1]
        incomplete = [t for t in mine if len(t.said.parts) > 1]
        kinds = sorted({t.said.kind for t in mine})
        cut = sum(t.cut_off_at is not None for t in incomplete)
        out[config] = {
            "complete": _summary(complete),
            "split": _split(complete),
            "by_kind": {k: _summary([t for t in mine if t.said.kind == k]) for k in kinds},
            "false_endpoints": cut,
            "incomplete": len(incomplete),
            "false_endpoint_rate": round(cut / len(incomplete), 3) if incomplete else None,
        }
        if any(t.judged_finished is not None for t in complete):
            # The two paths of a model turn: min_endpointing_delay when the model judged
            # the caller finished, max_endpointing_delay when it did not.
            out[config]["complete_by_model"] = {
                "finished": _summary([t for t in complete if t.judged_finished]),
                "unfinished": _summary([t for t in complete if t.judged_finished is False]),
            }
    out["load_average"] = [list(x) for x in load]
    out["turns"] = [_turn_row(t) for t in turns]
    return out


def _turn_row(t: Turn) -> dict[str, Any]:
    cut = None if t.cut_off_at is None else round((t.cut_off_at - t.first_end) * 1000, 1)
    return {
        "config": t.config,
        "call": t.call,
        "kind": t.said.kind,
        "voice": t.said.voice,
        "text": t.said.text,
        "latency_ms": None if t.latency is None else round(t.latency * 1000, 1),
        "speech_end": round(t.speech_end, 3),  # wall clock: to line up with a packet capture
        "cut_off_after_first_part_ms": cut,
        "eot_probabilities": list(t.probabilities),
    }


async def stages(database_url: str, calls: int, configs: Sequence[str]) -> dict[str, Any]:
    """Where each configuration's turns spent their time, as the worker measured it (the
    call records' per-turn figures: end of turn, transcription, LLM first token, voice
    first audio, end to end), over the bench's ``calls`` calls."""
    db = await open_database(database_url)
    try:
        records = await recent_calls(db, limit=calls)
    finally:
        await db.close()
    out: dict[str, Any] = {}
    routes = {route_of(c) for c in configs}
    for config in configs:
        route = route_of(config)
        mine = [
            r
            for r in records
            if (r.summary.route == route if route else r.summary.route not in routes)
        ]
        out[config] = {
            s.figure: {"n": s.n, "p50_ms": s.p50_ms, "p95_ms": s.p95_ms} for s in turn_latency(mine)
        }
    return out


def print_table(fig: dict[str, Any]) -> None:
    print(f"\n{'':34}{'n':>4}{'p50':>9}{'p95':>9}{'max':>9}  unanswered")
    for config in fig["configs"]:
        f = fig[config]
        rows = [("complete utterances", f["complete"]), *f["by_kind"].items()]
        for name, row in rows:
            print(
                f"{config[12:] or 'defaults':>10.10} {name:23}{row['n']:>4}{row['p50_ms']:>7.0f}ms"
                f"{row['p95_ms']:>7.0f}ms{row['max_ms']:>7.0f}ms  {row['unanswered']}"
            )
        for name, row in f.get("complete_by_model", {}).items():
            print(
                f"{'':11}model judged {name:11}{row['n']:>4}{row['p50_ms']:>7.0f}ms"
                f"{row['p95_ms']:>7.0f}ms{row['max_ms']:>7.0f}ms  {row['unanswered']}"
            )
        print(f"{'':11}false endpoints: {f['false_endpoints']}/{f['incomplete']}")
        for name, row in f["split"].items():
            if row["n"]:
                print(
                    f"{'':11}split: {name:21}{row['n']:>4}{row['p50_ms']:>7.0f}ms"
                    f"{row['p95_ms']:>7.0f}ms{row['max_ms']:>7.0f}ms"
                )
        for figure, row in fig.get("stages", {}).get(config, {}).items():
            if row["n"]:
                print(
                    f"{'':11}worker's {figure:19}{row['n']:>4}{row['p50_ms']:>7.0f}ms"
                    f"{row['p95_ms']:>7.0f}ms"
                )
    print(f"load average (start, end): {fig['load_average']}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turns")
    parser.add_argument(
        "--calls", type=int, default=0, help="calls per configuration (default: all utterances)"
    )
    parser.add_argument(
        "--debug", action="store_true", help="worker at debug level: the model's predictions"
    )
    parser.add_argument(
        "--recordings",
        type=Path,
        help="speak the real voice `python -m bench.voices DIR` fetched, not espeak-ng",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(CONFIGS),
        metavar="SCENARIO",
        help="the configurations, by X-Scenario: bench-turns (the phone defaults) or "
        "bench-turns-X for lab route lab-turns-X (default: %(default)s)",
    )
    parser.add_argument(
        "--stt",
        choices=("batch", "deepgram"),
        default="batch",
        help="the worker's speech-to-text double: OpenAI-compatible batch transcription "
        "after the voice detector's end of speech (default), or Deepgram's streaming one",
    )
    args = parser.parse_args()
    try:
        voiced = recorded_utterances(args.recordings) if args.recordings else espeak_utterances()
    except FileNotFoundError as e:
        print(f"bench.turns: {e}", file=sys.stderr)
        return 1
    lab = private_lab()
    load = [os.getloadavg()]
    started = time.monotonic()
    try:
        wait_for_no_lab(lab.c)
        env = lab.up(agent_mode=None)
        with FakeOpenAI(host="127.0.0.1", port=0) as fake:
            streaming = fake.deepgram_url if args.stt == "deepgram" else None
            worker_env = ai_worker_env(env, fake.base_url, streaming)
            if args.debug:
                worker_env["LIVEKIT_LOG_LEVEL"] = "debug"
            lab.start_agent("start", name="agent-ai", env=worker_env)
            turns = asyncio.run(run_calls(lab, fake, voiced, args.calls, args.configs))
            calls = len({(t.config, t.call) for t in turns})
            worker_stages = asyncio.run(stages(env["DATABASE_URL"], calls, args.configs))
            if args.debug:
                log = lab.c.state_dir / "logs/agent-ai.log"
                turns = with_timings(with_predictions(turns, predictions(log)), timings(log))
    except LabError as e:
        print(f"bench.turns: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    load.append(os.getloadavg())
    fig = figures(turns, load)
    fig["wall_s"] = round(time.monotonic() - started)
    fig["stages"] = worker_stages
    fig["stt"] = args.stt
    print_table(fig)
    OUT.mkdir(exist_ok=True)
    (OUT / "turns.json").write_text(json.dumps(fig, indent=1))
    return 0 if all(t.reply_at is not None for t in turns) else 1


if __name__ == "__main__":
    sys.exit(main())
