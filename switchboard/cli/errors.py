"""How every command reports a configuration it cannot use: one line on stderr, then the
exit code. The text may quote a file or a variable's value, so it goes through
``shown_lines`` (no terminal escapes from a hostile config reach the operator's screen)."""

from __future__ import annotations

import sys

from switchboard.config.errors import ConfigError
from switchboard.safe_text import shown_lines


def config_failed(error: ConfigError, code: int = 2) -> int:
    """Print ``error`` as the command's failure and return ``code`` (2: bad configuration)."""
    print(f"error: {shown_lines(error)}", file=sys.stderr)
    return code
