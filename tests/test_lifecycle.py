"""The lifecycle decision for every disconnect reason of the reference table, and none."""

from __future__ import annotations

import pytest

from switchboard.call.lifecycle import Action, on_call_status, on_participant_left

pytestmark = pytest.mark.unit

REASONS = [
    "USER_REJECTED",
    "USER_UNAVAILABLE",
    "SIP_TRUNK_FAILURE",
    "CLIENT_INITIATED",
    "ROOM_DELETED",
    "UNKNOWN_REASON",
    None,
]
DIALLED = frozenset({"dialled-1"})


@pytest.mark.parametrize("reason", REASONS)
def test_the_caller_leaving_ends_the_call_for_everyone(reason: str | None) -> None:
    decision = on_participant_left("caller", reason, caller_identity="caller", dialled=DIALLED)
    expected = Action.END_JOB if reason == "ROOM_DELETED" else Action.END_CALL
    assert decision.action is expected


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("USER_REJECTED", "declined"),
        ("USER_UNAVAILABLE", "did not answer"),
        ("SIP_TRUNK_FAILURE", "could not be connected"),
        ("CLIENT_INITIATED", "hung up"),
        (None, "no longer on the call"),
    ],
)
def test_a_dialled_leg_leaving_is_reported_and_the_call_goes_on(
    reason: str | None, words: str
) -> None:
    decision = on_participant_left("dialled-1", reason, caller_identity="c", dialled=DIALLED)
    assert decision.action is Action.REPORT_LEG
    assert decision.say is not None and words in decision.say


def test_someone_else_leaving_changes_nothing() -> None:
    decision = on_participant_left("observer", "CLIENT_INITIATED", caller_identity="c",
                                   dialled=DIALLED)  # fmt: skip
    assert decision.action is Action.IGNORE


def test_room_deleted_ends_the_job_whoever_left() -> None:
    for who in ("c", "dialled-1", "observer"):
        decision = on_participant_left(who, "ROOM_DELETED", caller_identity="c", dialled=DIALLED)
        assert decision.action is Action.END_JOB


def test_the_callers_hangup_status_ends_the_call() -> None:
    decision = on_call_status("caller", "hangup", caller_identity="caller")
    assert decision.action is Action.END_CALL


@pytest.mark.parametrize(
    ("identity", "status"),
    [("caller", "active"), ("caller", "ringing"), ("dialled-1", "hangup"), ("x", "hangup")],
)
def test_other_call_statuses_change_nothing(identity: str, status: str) -> None:
    assert on_call_status(identity, status, caller_identity="caller").action is Action.IGNORE
