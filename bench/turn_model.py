"""`python -m bench.turn_model`: what the framework's end-of-turn model makes of the turn
benchmark's utterances, fed to it directly, with no lab, speech-to-text or text at all.

livekit-agents 1.8.9's default detector (``inference.TurnDetector``; run without LiveKit
Cloud it is the local ``turn-detector-v1-mini``) is an audio model: once the voice detector
has heard 0.2 s of silence it scores the last 1.2 s of the caller's 16 kHz audio, and a
score under its threshold (0.36 for English) makes the turn wait ``max_endpointing_delay``.
The transcript and the chat context never reach it. This scores each utterance of
``bench.turns`` (same espeak-ng voices and speeds) as the phone sends it (8 kHz mu-law,
resampled to 16 kHz) and as espeak-ng makes it (wide-band), at that moment: complete
utterances, the first halves of incomplete ones (where a good model says "unfinished")
and incomplete ones said whole. ``--recording`` scores a recording of real speech the
same way at each pause of at least 0.2 s and at its end. ``--recordings DIR`` scores the
real voice ``bench.voices`` fetched into DIR: each clip at its end, and each incomplete
one after its first part and whole. Writes bench/out/turn_model.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from livekit.agents.inference.eot.base import MIN_SILENCE_DURATION_MS
from livekit.agents.inference.eot.languages import LOCAL_LANGUAGES
from livekit.local_inference import EOT, EOT_MAX_SAMPLES

from bench import voices
from bench.turns import UTTERANCES, VOICES
from lab.audio import SILENCE_RMS, prompt_pcmu

OUT = Path(__file__).resolve().parent / "out"
RATE = 16000  # the model's
FRAME = RATE // 50  # 20 ms
THRESHOLD = LOCAL_LANGUAGES["en"]
AFTER = MIN_SILENCE_DURATION_MS / 1000  # silence heard when the framework asks the model

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Score:
    kind: str  # statement ... number, incomplete-first, incomplete-whole, recording-pause/end
    voice: str
    text: str
    phone: float  # as the phone sends it
    wide: float  # before the phone's 8 kHz


def sox_pcm(source: Path, args: Sequence[str], effects: Sequence[str] = ()) -> Pcm:
    """16 kHz mono int16 of ``source`` (``args``: how to read it, for raw input)."""
    to = ["-r", str(RATE), "-c", "1", "-e", "signed", "-b", "16", "-t", "raw", "-"]
    done = subprocess.run(
        ["sox", *args, str(source), *to, *effects], capture_output=True, check=True, timeout=60
    )
    return np.frombuffer(done.stdout, dtype=np.int16)


def loud_frames(pcm: Pcm) -> list[bool]:
    return [
        float(np.sqrt(np.mean(pcm[i : i + FRAME].astype(np.float64) ** 2))) > SILENCE_RMS
        for i in range(0, len(pcm) - FRAME + 1, FRAME)
    ]


def score_at(model: EOT, pcm: Pcm, speech_end: float) -> float:
    """The model's score once ``AFTER`` seconds of silence follow ``speech_end``."""
    stop = int((speech_end + AFTER) * RATE)
    window = np.pad(pcm, (0, max(0, stop - len(pcm))))[max(0, stop - EOT_MAX_SAMPLES) : stop]
    return round(float(model.predict(np.ascontiguousarray(window))), 3)


def speech_end(pcm: Pcm) -> float:
    loud = loud_frames(pcm)
    last = max((i for i, x in enumerate(loud) if x), default=None)
    if last is None:
        raise RuntimeError("a spoken prompt came out silent")
    return (last + 1) * FRAME / RATE


def pauses(pcm: Pcm, shortest: float = AFTER) -> list[float]:
    """Where each quiet stretch of at least ``shortest`` s after speech starts, in s
    (the end of the recording counts: it is followed by silence)."""
    loud = [*loud_frames(pcm), False]
    starts, run = [], 0
    for i, x in enumerate(loud):
        run = 0 if x else run + 1
        if run == 1 and i and loud[i - 1]:
            starts.append(i)
    need = int(shortest * RATE / FRAME)
    ok = [s for s in starts if all(not x for x in loud[s : s + need]) or s + need > len(loud)]
    return [s * FRAME / RATE for s in ok]


def utterance_scores(model: EOT) -> list[Score]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (kind, parts) in enumerate(UTTERANCES):
            voice, wpm = VOICES[i % len(VOICES)]
            said = [(kind, parts[0])] if len(parts) == 1 else []
            if len(parts) > 1:
                said = [("incomplete-first", parts[0]), ("incomplete-whole", " ".join(parts))]
            for label, text in said:
                ulaw = ["-t", "raw", "-r", "8000", "-e", "mu-law", "-b", "8", "-c", "1"]
                phone = sox_pcm(prompt_pcmu(text, voice=voice, wpm=wpm), ulaw)
                wav = Path(tmp) / "speech.wav"
                espeak = ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), "--stdin"]
                subprocess.run(espeak, input=text.encode(), check=True, timeout=60)
                wide = sox_pcm(wav, [], ["gain", "-n", "-3"])
                p, w = (score_at(model, x, speech_end(x)) for x in (phone, wide))
                out.append(Score(label, f"{voice}@{wpm}", text, p, w))
    return out


def recording_scores(model: EOT, path: Path) -> list[Score]:
    wide = sox_pcm(path, [], ["gain", "-n", "-3"])
    phone = sox_pcm(path, [], ["gain", "-n", "-3", "rate", "8000", "rate", str(RATE)])
    at = pauses(wide)
    return [
        Score(
            "recording-end" if n == len(at) - 1 else "recording-pause",
            path.name,
            f"pause at {t:.2f} s",
            score_at(model, phone, t),
            score_at(model, wide, t),
        )
        for n, t in enumerate(at)
    ]


def human_scores(model: EOT, folder: Path) -> list[Score]:
    out = []
    ulaw = ["-t", "raw", "-r", "8000", "-e", "mu-law", "-b", "8", "-c", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        for r in voices.load(folder):
            said = [(r.kind, r.parts[0], r.texts[0])]
            if len(r.parts) > 1:
                whole = tuple(f for part in r.parts for f in part)
                said = [("incomplete-first", r.parts[0], r.texts[0])]
                said.append(("incomplete-whole", whole, " ".join(r.texts)))
            for label, files, text in said:
                raw = voices.to_file(files, Path(tmp) / "speech.ulaw", *ulaw)
                wav = voices.to_file(files, Path(tmp) / "speech.wav")
                phone, wide = sox_pcm(raw, ulaw), sox_pcm(wav, [])
                p, w = (score_at(model, x, speech_end(x)) for x in (phone, wide))
                out.append(Score(f"human-{label}", voices.VOICE, text, p, w))
    return out


def table(scores: Sequence[Score]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for kind in dict.fromkeys(s.kind for s in scores):
        mine = [s for s in scores if s.kind == kind]
        row: dict[str, object] = {"kind": kind, "n": len(mine)}
        for band in ("phone", "wide"):
            values = [getattr(s, band) for s in mine]
            row[band] = {
                "median": round(statistics.median(values), 2),
                "min": min(values),
                "max": max(values),
                "judged_finished": sum(v >= THRESHOLD for v in values),
            }
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_model")
    parser.add_argument("--recording", type=Path, help="a recording of real speech (any sox input)")
    parser.add_argument("--recordings", type=Path, help="a folder `python -m bench.voices` filled")
    args = parser.parse_args()
    model = EOT()
    scores = utterance_scores(model)
    if args.recording:
        scores += recording_scores(model, args.recording)
    if args.recordings:
        try:
            scores += human_scores(model, args.recordings)
        except FileNotFoundError as e:
            print(f"bench.turn_model: {e}", file=sys.stderr)
            return 1
    rows = table(scores)
    print(f"threshold {THRESHOLD} (English), scored after {AFTER:g} s of silence")
    print(f"{'':24}{'n':>3}   phone: median  min-max  >=thr   wide-band: median  min-max  >=thr")
    for r in rows:
        p, w = r["phone"], r["wide"]
        assert isinstance(p, dict) and isinstance(w, dict)
        print(
            f"{r['kind']:24}{r['n']:>3}   {p['median']:>13.2f}  {p['min']:.2f}-{p['max']:.2f}"
            f"  {p['judged_finished']:>5}   {w['median']:>17.2f}  {w['min']:.2f}-{w['max']:.2f}"
            f"  {w['judged_finished']:>5}"
        )
    OUT.mkdir(exist_ok=True)
    out = {"threshold": THRESHOLD, "after_s": AFTER, "kinds": rows}
    out["scores"] = [asdict(s) for s in scores]
    (OUT / "turn_model.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
