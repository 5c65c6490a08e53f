"""Load the agent's texts from ``prompts/*.md``.

Prompts live in Markdown files so an operator edits words, not Python. The directory
can be moved with ``SWITCHBOARD_PROMPTS_DIR`` (e.g. in a container image).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "prompts"


def prompts_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_PROMPTS_DIR") or DEFAULT_DIR)


@cache
def load_prompt(name: str, directory: Path | None = None) -> str:
    """Return the text of ``<name>.md``; an unknown name lists the ones that exist."""
    folder = directory or prompts_dir()
    path = folder / f"{name}.md"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.md"))
        raise FileNotFoundError(f"no prompt {name!r} in {folder} (known: {', '.join(known)})")
    return path.read_text(encoding="utf-8").strip()
