"""The worker's log lines carry no full phone number, whoever logged them."""

from __future__ import annotations

import io
import json
import logging

import pytest
from livekit.agents.cli.log import JsonFormatter

from switchboard.log_masking import MaskingFormatter, mask_log_handlers

pytestmark = pytest.mark.unit

NUMBER = "+447700900123"


@pytest.fixture
def log() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())  # what the framework's `start` mode writes
    logger = logging.getLogger("test.masking")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    mask_log_handlers(logger)
    mask_log_handlers(logger)  # idempotent
    assert isinstance(handler.formatter, MaskingFormatter)
    assert not isinstance(handler.formatter.inner, MaskingFormatter)
    return logger, out


def test_numbers_in_messages_fields_and_tracebacks_are_masked(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = log
    # As the framework logs a job: the room's name (a dispatch rule's) in an extra field.
    logger.info("received job request", extra={"room": f"call-_{NUMBER}_Xy12", "pid": 4242})
    logger.info("dialling %s", f"sip:{NUMBER}@pbx", extra={"switchboard": {"who": [NUMBER]}})
    try:
        raise RuntimeError(f"room call-_{NUMBER}_Xy12 not found")
    except RuntimeError:
        logger.exception("request failed")
    text = out.getvalue()
    assert "7700900123" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["room"] == "call-_+4477••••0123_Xy12"
    assert lines[0]["pid"] == 4242  # numbers that are not text stay as they are
    assert lines[1]["message"] == "dialling sip:+4477••••0123@pbx"
    assert lines[1]["switchboard"] == {"who": ["+4477••••0123"]}
    assert "RuntimeError: room call-_+4477••••0123_Xy12" in lines[2]["exc_info"]
