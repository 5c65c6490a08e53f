"""The recordings folder: where a call's recording file is made, found again and pruned.

Recordings are voices, and voices are personal data: the folder is 0700, each file 0600,
made by this process before anything is written into it (so no other user ever sees a
readable moment). File names are ours alone (a timestamp and the call ID reduced to safe
characters); a name asked for from outside (the web console) is accepted only when it
has that form and the file is directly in the folder, so no request can reach another
path. A folder that cannot be written, or a disk nearly full, raises
``RecordingUnavailableError`` with a sentence for the call's record: the call goes on without.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".ogg"  # Ogg Opus: see switchboard/call/recording.py for why
# Below this much free space no recording starts: a call must never fill the disk that the
# database and the logs of every other call share.
MIN_FREE_BYTES = 64 * 1024 * 1024
DAY_S = 86_400.0

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# <UTC time>-<call id, safe characters>[-<n>].ogg; nothing else is ever served or pruned.
NAME = re.compile(r"\d{8}T\d{6}Z-[A-Za-z0-9_-]{1,80}(?:-\d{1,3})?\.ogg")


class RecordingUnavailableError(Exception):
    """No recording can be made now; the message says why, for the call's record."""


def prepare_folder(folder: Path) -> Path:
    """The folder, made (0700) if missing; RecordingUnavailableError when it cannot be."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask, and older folders
    except OSError as e:
        raise RecordingUnavailableError(f"recordings folder unusable: {_why(e)}") from e
    return folder


def create_file(folder: Path, call_id: str, now: float, min_free: int = MIN_FREE_BYTES) -> Path:
    """A new, empty recording file (0600) for ``call_id`` in ``folder``."""
    prepare_folder(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError as e:
        raise RecordingUnavailableError(f"recordings folder unusable: {_why(e)}") from e
    if free < min_free:
        mib = 2**20
        need = f"{free // mib} MiB free, {min_free // mib} needed"
        raise RecordingUnavailableError(f"disk full: {need}")
    stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{safe_id(call_id)}"
    for n in range(100):  # a resumed call records again under the same ID and second
        name = f"{stem}{SUFFIX}" if n == 0 else f"{stem}-{n + 1}{SUFFIX}"
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise RecordingUnavailableError(f"recording file not created: {_why(e)}") from e
        os.close(fd)
        return folder / name
    raise RecordingUnavailableError("recording file not created: too many files for this call")


def safe_id(call_id: str) -> str:
    """The call ID as a file name part: letters, digits, ``_`` and ``-`` only."""
    return _UNSAFE.sub("_", call_id)[:80] or "call"


def find(folder: Path, name: str) -> Path | None:
    """The recording called ``name`` in ``folder``, or None: names not of our form, and
    anything that is not a regular file directly in the folder, are never found."""
    if not NAME.fullmatch(name):
        return None
    path = folder / name
    try:
        if path.is_symlink() or not path.is_file():
            return None
    except OSError:
        return None
    return path


@dataclass(frozen=True)
class Pruned:
    deleted: tuple[str, ...]
    kept: int
    failed: tuple[str, ...] = ()


def expired(mtime: float, now: float, retention_days: int) -> bool:
    """Whether a recording last written at ``mtime`` is past its retention."""
    return now - mtime > retention_days * DAY_S


def prune(folder: Path, retention_days: int, now: float, *, dry_run: bool = False) -> Pruned:
    """Delete the recordings last written more than ``retention_days`` ago. Only files of
    our naming are considered; a missing folder has nothing to prune."""
    deleted: list[str] = []
    failed: list[str] = []
    kept = 0
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return Pruned((), 0)
    for path in entries:
        if not NAME.fullmatch(path.name) or path.is_symlink() or not path.is_file():
            continue
        try:
            if not expired(path.stat().st_mtime, now, retention_days):
                kept += 1
                continue
            if not dry_run:
                path.unlink()
            deleted.append(path.name)
        except OSError:
            failed.append(path.name)
    return Pruned(tuple(deleted), kept, tuple(failed))


def _why(e: OSError) -> str:
    # The error's name and its short text, never a traceback: this lands in the record.
    return f"{type(e).__name__}: {e.strerror or e}"
