"""Who is calling: one immutable value built from a participant's kind and attributes.

Everything here is pure. The attributes come from the SIP service (``sip.*``) and from
the caller's side (``X-*`` headers mapped by the trunk, dispatch-rule attributes), so
they are untrusted data: we store them, we never interpret them as instructions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from switchboard.numbers import mask_number

CallerKind = Literal["sip", "standard", "agent", "ingress", "egress", "connector", "console"]

# The reference table of SIP participant attributes, mapped to our field names.
SIP_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "sip.callID": "call_id",
        "sip.callIDFull": "call_id_full",
        "sip.callStatus": "call_status",
        "sip.phoneNumber": "phone_number",
        "sip.ruleID": "rule_id",
        "sip.trunkID": "trunk_id",
        "sip.trunkPhoneNumber": "called_number",
        "sip.twilio.accountSid": "twilio_account_sid",
        "sip.twilio.callSid": "twilio_call_sid",
    }
)

# Attributes the framework itself sets; they are not the caller's custom data.
_RESERVED_PREFIXES = ("sip.", "lk.")


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller as the agent sees it when the call starts."""

    kind: CallerKind
    identity: str
    phone_number: str | None = None
    called_number: str | None = None
    call_id: str | None = None
    call_id_full: str | None = None
    call_status: str | None = None
    rule_id: str | None = None
    trunk_id: str | None = None
    twilio_account_sid: str | None = None
    twilio_call_sid: str | None = None
    custom: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_phone_call(self) -> bool:
        return self.kind == "sip"

    @property
    def number_hidden(self) -> bool:
        """A SIP caller without a number: the dispatch rule hides it (HidePhoneNumber)."""
        return self.is_phone_call and not self.phone_number

    def log_fields(self) -> dict[str, object]:
        """Fields safe to log: numbers masked, custom values kept (they are the operator's)."""
        return {
            "kind": self.kind,
            "phone_number": mask_number(self.phone_number),
            "called_number": self.called_number,
            "number_hidden": self.number_hidden,
            "call_id": self.call_id,
            "call_id_full": self.call_id_full,
            "call_status": self.call_status,
            "rule_id": self.rule_id,
            "trunk_id": self.trunk_id,
            "custom": dict(self.custom),
        }


def caller_from_participant(
    kind: CallerKind, identity: str, attributes: Mapping[str, str]
) -> Caller:
    """Build a Caller from a participant's kind, identity and attributes.

    Empty values count as missing: the SIP service may send an attribute with no value.
    """
    known = {
        name: value
        for key, name in SIP_ATTRIBUTES.items()
        if (value := attributes.get(key, "").strip())
    }
    custom = {
        key: value for key, value in attributes.items() if not key.startswith(_RESERVED_PREFIXES)
    }
    return Caller(
        kind=kind,
        identity=identity,
        custom=MappingProxyType(dict(sorted(custom.items()))),
        **known,
    )
