"""Caller parsing: every sip.* attribute, missing ones, hidden numbers, WebRTC callers."""

from __future__ import annotations

import dataclasses

import pytest

from switchboard.caller import SIP_ATTRIBUTES, caller_from_participant
from switchboard.numbers import mask_number

pytestmark = pytest.mark.unit

FULL = {
    "sip.callID": "SCL_abc",
    "sip.callIDFull": "a84b4c76e66710@pc33.example.com",
    "sip.callStatus": "active",
    "sip.phoneNumber": "+442071234567",
    "sip.ruleID": "SDR_rule",
    "sip.trunkID": "ST_trunk",
    "sip.trunkPhoneNumber": "+15105550100",
    "sip.twilio.accountSid": "AC123",
    "sip.twilio.callSid": "CA456",
    "customer_id": "42",
    "lk.agent.state": "listening",
}


def test_every_reference_attribute_is_read() -> None:
    caller = caller_from_participant("sip", "sip_+4420", FULL)
    assert caller.call_id == "SCL_abc"
    assert caller.call_id_full == "a84b4c76e66710@pc33.example.com"
    assert caller.call_status == "active"
    assert caller.phone_number == "+442071234567"
    assert caller.rule_id == "SDR_rule"
    assert caller.trunk_id == "ST_trunk"
    assert caller.called_number == "+15105550100"
    assert caller.twilio_account_sid == "AC123"
    assert caller.twilio_call_sid == "CA456"
    assert len(SIP_ATTRIBUTES) == 9


def test_custom_attributes_exclude_framework_ones() -> None:
    caller = caller_from_participant("sip", "x", FULL)
    assert dict(caller.custom) == {"customer_id": "42"}


def test_caller_is_immutable() -> None:
    caller = caller_from_participant("sip", "x", FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caller.phone_number = "+1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        caller.custom["customer_id"] = "43"  # type: ignore[index]


def test_missing_and_empty_attributes_are_none() -> None:
    caller = caller_from_participant("sip", "x", {"sip.callID": "SCL_1", "sip.phoneNumber": " "})
    assert caller.phone_number is None
    assert caller.trunk_id is None
    assert caller.custom == {}


def test_hidden_number_is_normal() -> None:
    attrs = {k: v for k, v in FULL.items() if k != "sip.phoneNumber"}
    caller = caller_from_participant("sip", "x", attrs)
    assert caller.number_hidden
    assert caller.log_fields()["phone_number"] is None


def test_webrtc_participant_is_not_a_phone_call() -> None:
    caller = caller_from_participant("standard", "browser-user", {})
    assert not caller.is_phone_call
    assert not caller.number_hidden


def test_log_fields_mask_the_number() -> None:
    fields = caller_from_participant("sip", "x", FULL).log_fields()
    assert fields["phone_number"] == "+4420••••4567"
    assert "+442071234567" not in repr(fields)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+442071234567", "+4420••••4567"),
        ("+15105550100", "+1510••••0100"),
        ("5551234", "5551••••1234"),
        ("112", "•12"),
        ("alice", "•••"),
        (None, None),
        ("", None),
    ],
)
def test_mask_number(number: str | None, masked: str | None) -> None:
    assert mask_number(number) == masked
