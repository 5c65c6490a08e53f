"""`python -m bench.voices DIR`: real human speech for the turn benchmarks, fetched from
Debian, because espeak-ng's voices do not tell the end-of-turn model anything.

The Asterisk PBX's English prompts (Debian ``asterisk-core-sounds-en-wav``, with their
transcripts in ``asterisk-core-sounds-en``; CC-BY-SA 3.0) are one professional voice
actress, recorded at 8 kHz for the telephone. Besides whole sentences they hold fragments
recorded to be followed by a number or another prompt ("You are currently caller number",
"To leave the conference..."), spoken with the intonation of a sentence that goes on:
real unfinished utterances, with their natural completions among the other prompts. The
``-in``/``-out`` pairs say the same words as a lead-in and as an ending.

``fetch`` downloads the two packages with ``apt-get download`` (no install, no root) into a
temporary folder and copies the prompts ``CLIPS`` uses, and their transcripts, into DIR.
Nothing of it is kept in the repository (licence, size). ``bench.turn_model --recordings
DIR`` and ``bench.turns --recordings DIR`` then use DIR.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en")
SOUNDS = Path("usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
INDEX = "transcripts.json"
VOICE = "asterisk-allison"

# (kind, parts): each part is prompts said back to back; parts are said with a pause
# between (bench.turns.PAUSE). Kinds as in bench.turns, plus "unfinished": a fragment said
# alone, and "ending": the "-out" twin of a fragment ("...to leave the conference.").
CLIPS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("statement", (("all-circuits-busy-now",),)),
    ("statement", (("cannot-complete-as-dialed",),)),
    ("statement", (("conf-full",),)),
    ("statement", (("demo-echodone",),)),
    ("statement", (("dir-nomatch",),)),
    ("statement", (("feature-not-avail-line",),)),
    ("statement", (("number-not-answering",),)),
    ("statement", (("pls-hold-while-try",),)),
    ("statement", (("privacy-incorrect",),)),
    ("statement", (("please-try-call-later",),)),
    ("statement", (("confbridge-removed",),)),
    ("question", (("vm-changeto",),)),
    ("question", (("vm-savefolder",),)),
    ("question", (("vm-login",),)),
    ("question", (("vm-incorrect-mailbox",),)),
    ("yes_no", (("goodbye",),)),
    ("yes_no", (("one-moment-please",),)),
    ("yes_no", (("auth-thankyou",),)),
    ("yes_no", (("activated",),)),
    ("incomplete", (("queue-thereare",), ("digits/3",))),
    ("incomplete", (("queue-holdtime",), ("digits/5", "minutes"))),
    ("incomplete", (("conf-thereare",), ("digits/2", "conf-otherinparty"))),
    ("incomplete", (("if-correct-press",), ("digits/1",))),
    ("incomplete", (("conf-enteringno",), ("digits/4",))),
    ("incomplete", (("num-was-successfully",), ("added",))),
    ("incomplete", (("privacy-to-blacklist-last-caller",), ("from-unknown-caller",))),
    ("incomplete", (("confbridge-leave-in",), ("vm-press", "digits/9"))),
    ("incomplete", (("confbridge-mute-in",), ("vm-press", "digits/1"))),
    ("unfinished", (("confbridge-lock-in",),)),
    ("unfinished", (("confbridge-menu-exit-in",),)),
    ("unfinished", (("confbridge-dec-list-vol-in",),)),
    ("unfinished", (("confbridge-inc-talk-vol-in",),)),
    ("unfinished", (("confbridge-remove-last-in",),)),
    ("unfinished", (("at-tone-time-exactly",),)),
    ("unfinished", (("dir-pls-enter",),)),
    ("unfinished", (("queue-quantity1",),)),
    ("ending", (("confbridge-leave-out",),)),
    ("ending", (("confbridge-mute-out",),)),
    ("ending", (("confbridge-lock-out",),)),
    ("ending", (("confbridge-menu-exit-out",),)),
    ("ending", (("confbridge-dec-list-vol-out",),)),
    ("ending", (("confbridge-inc-talk-vol-out",),)),
    ("ending", (("confbridge-remove-last-out",),)),
)


@dataclass(frozen=True)
class Recorded:
    kind: str
    texts: tuple[str, ...]  # one per part
    parts: tuple[tuple[Path, ...], ...]  # the files of each part, said back to back


def _file(folder: Path, name: str) -> Path:
    return folder / f"{name.replace('/', '-')}.wav"


def transcripts(gz: Path) -> dict[str, str]:
    """``name: text`` lines of the Asterisk transcript file."""
    out = {}
    for line in gzip.decompress(gz.read_bytes()).decode("utf-8", "replace").splitlines():
        name, sep, text = line.partition(": ")
        if sep and not line.startswith(";"):
            out[name.strip()] = text.strip()
    return out


def fetch(dest: Path) -> None:
    """Download the packages and copy what ``CLIPS`` uses into ``dest``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("needs apt-get and dpkg-deb (Debian or Ubuntu)")
    names = sorted({n for _, parts in CLIPS for part in parts for n in part})
    with tempfile.TemporaryDirectory(prefix="bench-voices-") as tmp:
        got = subprocess.run(
            ["apt-get", "download", *PACKAGES], cwd=tmp, capture_output=True, timeout=600
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or len(debs) != len(PACKAGES):
            raise RuntimeError(
                f"apt-get download {' '.join(PACKAGES)} failed ({got.returncode}): "
                f"{got.stderr.decode(errors='replace')[-500:]}"
            )
        root = Path(tmp) / "root"
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
        said = transcripts(root / TRANSCRIPTS)
        missing = [n for n in names if n not in said or not (root / SOUNDS / f"{n}.wav").exists()]
        if missing:
            raise RuntimeError(f"the packages lack these prompts: {', '.join(missing)}")
        dest.mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(root / SOUNDS / f"{n}.wav", _file(dest, n))
        (dest / INDEX).write_text(json.dumps({n: said[n] for n in names}, indent=1))


def load(folder: Path) -> list[Recorded]:
    """``CLIPS`` from a folder ``fetch`` filled."""
    index = folder / INDEX
    if not index.exists():
        raise FileNotFoundError(f"{index} not found: run `python -m bench.voices {folder}` first")
    said: dict[str, str] = json.loads(index.read_text())
    out = []
    for kind, parts in CLIPS:
        texts = tuple(" ".join(said[n].strip(". ") for n in part) for part in parts)
        files = tuple(tuple(_file(folder, n) for n in part) for part in parts)
        out.append(Recorded(kind, texts, files))
    return out


def to_file(files: Sequence[Path], out: Path, *encoding: str) -> Path:
    """``files`` said back to back into ``out`` at 8 kHz (``encoding``: sox output options,
    e.g. mu-law raw), normalised to -3 dBFS like the espeak-ng prompts."""
    argv = ["sox", *map(str, files), "-r", "8000", "-c", "1", *encoding, str(out)]
    subprocess.run([*argv, "gain", "-n", "-3"], check=True, capture_output=True, timeout=60)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.voices", description=__doc__)
    parser.add_argument("dest", type=Path, help="folder for the recordings (not the repository)")
    args = parser.parse_args()
    try:
        fetch(args.dest)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"bench.voices: no recordings fetched: {e}", file=sys.stderr)
        return 1
    print(f"bench.voices: {len(CLIPS)} utterances in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
