"""What the caller is told about a dial, from the SIP outcome alone."""

from __future__ import annotations

import pytest

from switchboard.dialing.outcomes import (
    FAILED,
    NO_ANSWER,
    TRUNK_DOWN,
    outcome_for_status,
    outcome_for_timeout,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "kind"),
    [(486, "busy"), (600, "busy"), (603, "declined"), (408, "no_answer"), (480, "no_answer"),
     (487, "no_answer"), (404, "unreachable"), (484, "unreachable"), (503, "failed"),
     (500, "failed"), (None, "failed")],
)  # fmt: skip
def test_each_final_status_has_plain_words(status: int | None, kind: str) -> None:
    outcome = outcome_for_status(status)
    assert outcome.kind == kind
    assert outcome.spoken.endswith(".") and "SIP" not in outcome.spoken


def test_a_timeout_after_ringing_is_no_answer() -> None:
    assert outcome_for_timeout("ringing") is NO_ANSWER
    assert outcome_for_timeout("active") is NO_ANSWER


@pytest.mark.parametrize("last", [None, "dialing", "automation"])
def test_a_timeout_before_any_ringing_is_a_line_not_responding(last: str | None) -> None:
    outcome = outcome_for_timeout(last)
    assert outcome is TRUNK_DOWN and outcome is not FAILED
    assert "not responding" in outcome.spoken
