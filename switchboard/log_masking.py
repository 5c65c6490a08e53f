"""No full phone number in the worker's log, whoever wrote the line.

Our own code logs numbers masked, but the framework does not know they are ours to hide:
its job lines carry the room's name, and dispatch rules put the caller's number in it
(``call-_+447700900123_Xy12``); errors quote room names and SIP URIs. So the worker wraps
the formatter of every handler of the root logger: each record has the numbers in its
message, its string fields (``extra``, nested too) and its traceback masked just before
it is formatted. The formatter and not a filter: the framework adds its job fields with
handler filters of its own, which may run after ours, and a job process's records reach
the worker's handlers through its log queue, so this one place sees every line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from switchboard.numbers import mask_numbers_in

# A LogRecord's own attributes: everything else on it came from ``extra`` or a filter.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_numbers_in(value)
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    return value  # numbers, times, None: not text, nothing to hide


def mask_record(record: logging.LogRecord, formatter: logging.Formatter) -> None:
    """Mask the numbers in ``record`` in place (its message becomes plain text)."""
    if isinstance(record.msg, Mapping):
        record.msg = _masked(record.msg)
    else:
        record.msg = mask_numbers_in(record.getMessage())
    record.args = None
    if record.exc_info:
        record.exc_text = mask_numbers_in(formatter.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = mask_numbers_in(record.exc_text)
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD:
            record.__dict__[key] = _masked(value)


class MaskingFormatter(logging.Formatter):
    """Another formatter's lines, with every phone number masked."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        mask_record(record, self.inner)
        return self.inner.format(record)


def mask_log_handlers(logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of each of ``logger``'s handlers (the root's by default); idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(handler.formatter or logging.Formatter()))
