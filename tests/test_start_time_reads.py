"""The environment is read when the worker or a command starts, never during a call.

A call reads what ``agent.py`` read at start (settings, route PINs, prompts): a variable
changed or unset mid-day then changes no call halfway, and a missing PIN stops the
worker instead of opening a line. A source check keeps it so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
READS_ENV = re.compile(r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b")
# Entry points, which read the environment once when they start and pass it on.
STARTERS = {
    "agent.py",
    *(str(p.relative_to(ROOT)) for p in (ROOT / "switchboard/cli").glob("*.py")),
}


def _modules() -> list[Path]:
    return sorted([*(ROOT / "switchboard").rglob("*.py"), *(ROOT / "tools").rglob("*.py")])


def test_no_module_but_the_entry_points_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if str(path.relative_to(ROOT)) not in STARTERS and READS_ENV.search(_code(path))
    ]
    assert readers == []


def test_the_call_and_the_tools_never_read_the_environment() -> None:
    call = [*(ROOT / "switchboard/call").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    assert len(call) > 10  # the check looks where the modules are
    assert [p.name for p in call if READS_ENV.search(_code(p))] == []


def test_the_check_sees_a_read() -> None:
    assert READS_ENV.search('value = os.environ.get("X")')
    assert READS_ENV.search('os.getenv("X")')
    assert not READS_ENV.search('"""the environment"""')


def _code(path: Path) -> str:
    # Docstrings and comments may name os.environ (to say it is not read): drop them.
    text = re.sub(r'"""[\s\S]*?"""', "", path.read_text(encoding="utf-8"))
    return re.sub(r"#.*", "", text)
