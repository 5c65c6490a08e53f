"""Who is on the call, as told to the model: roles, kinds, numbers masked or withheld."""

from __future__ import annotations

import pytest
from livekit.protocol.models import ParticipantInfo

from switchboard.call.roster import describe_participants

pytestmark = pytest.mark.unit


def participant(identity: str, kind: ParticipantInfo.Kind, **attributes: str) -> ParticipantInfo:
    return ParticipantInfo(
        identity=identity, kind=kind, state=ParticipantInfo.State.ACTIVE, attributes=attributes
    )


def test_hidden_number_stays_hidden_and_others_are_masked() -> None:
    listing = describe_participants(
        [
            participant("caller", ParticipantInfo.Kind.SIP, **{"sip.callStatus": "active"}),
            participant("agent-1", ParticipantInfo.Kind.AGENT),
            participant(
                "dialled-1", ParticipantInfo.Kind.SIP, **{"sip.phoneNumber": "+15105550199"}
            ),
        ],
        caller_identity="caller",
        agent_identity="agent-1",
        dialled=["dialled-1"],
    )
    assert "the caller: phone participant, number withheld, call status active" in listing
    assert "you (the assistant)" in listing
    assert "a party you added to the call: phone participant, number +1510••••0199" in listing
    assert "5105550199" not in listing


def test_disconnected_participants_are_not_listed() -> None:
    gone = participant("old", ParticipantInfo.Kind.SIP)
    gone.state = ParticipantInfo.State.DISCONNECTED
    assert describe_participants([gone], caller_identity="c", agent_identity="a") == (
        "Nobody else is on the call."
    )
