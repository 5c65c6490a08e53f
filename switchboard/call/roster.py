"""Who is on the call, described for the model: kinds and roles, numbers masked.

Pure: it takes the server's participant list and our own identities, and returns words.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol.models import ParticipantInfo

from switchboard.numbers import mask_number

_KIND_WORDS = {
    ParticipantInfo.Kind.SIP: "phone",
    ParticipantInfo.Kind.AGENT: "assistant",
    ParticipantInfo.Kind.STANDARD: "app or web",
}


def describe_participants(
    participants: Iterable[ParticipantInfo],
    *,
    caller_identity: str,
    agent_identity: str,
    dialled: Iterable[str] = (),
) -> str:
    added = set(dialled)
    lines = []
    for p in participants:
        if p.state == ParticipantInfo.State.DISCONNECTED:
            continue
        if p.identity == agent_identity:
            role = "you (the assistant)"
        elif p.identity == caller_identity:
            role = "the caller"
        elif p.identity in added:
            role = "a party you added to the call"
        else:
            role = "another participant"
        kind = _KIND_WORDS.get(p.kind, "other")
        status = p.attributes.get("sip.callStatus")
        number = _number_words(p)
        details = ", ".join(
            filter(None, [f"{kind} participant", number, status and f"call status {status}"])
        )
        lines.append(f"- {role}: {details}")
    if not lines:
        return "Nobody else is on the call."
    return f"{len(lines)} on the call:\n" + "\n".join(lines)


def _number_words(p: ParticipantInfo) -> str | None:
    if p.kind != ParticipantInfo.Kind.SIP:
        return None
    number = p.attributes.get("sip.phoneNumber")
    if not number:
        return "number withheld"
    return f"number {mask_number(number)}"
