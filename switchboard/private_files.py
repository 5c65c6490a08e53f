"""Files that hold callers' data, created readable by their owner only.

The SQLite database and the events file hold names, numbers and transcripts: created
with the process's umask they were world-readable (0644 in a 0755 folder) to every user
of the machine. A folder we create is 0700 and a file 0600, whatever the umask; an
existing one is left as the operator set it.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; the folders made here are 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask


def private_file(path: Path) -> None:
    """Create ``path`` empty as a 0600 file if it is not there (its folder as above)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
