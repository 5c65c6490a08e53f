"""Caller parsing: every sip.* attribute, missing ones, hidden numbers, WebRTC callers."""

from __future__ import annotations

import dataclasses

import pytest

from switchboard.caller import SIP_ATTRIBUTES, caller_from_participant
from switchboard.numbers import mask_number, mask_numbers_in

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
        ("5551234", "••••234"),  # short numbers keep at most half their digits
        ("12345678", "••••5678"),
        ("+46812345", "+••••2345"),
        ("5105550100", "5••••0100"),
        ("112", "••2"),
        ("12", "•2"),
        ("alice", "•••"),
        ("+4420••••4567", "+4420••••4567"),  # masked already: as it is
        ("+447700900123•", "+4477••••0123"),  # but a dot is no way round the mask
        (None, None),
        ("", None),
    ],
)
def test_mask_number(number: str | None, masked: str | None) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize("digits", range(1, 16))
def test_a_masked_number_hides_at_least_half_of_a_short_one(digits: int) -> None:
    number = "".join(str(i % 10) for i in range(1, digits + 1))
    shown = sum(ch.isdigit() for ch in mask_number(number) or "")
    assert shown <= (digits // 2 if digits < 11 else digits - 3)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("sip_+447700900123", "sip_+4477••••0123"),  # a SIP participant's identity
        ("call-_+442071234567_Xy12", "call-_+4420••••4567_Xy12"),  # a room name
        ("Call +1 900 555 0100 for me.", "Call +1900••••0100 for me."),
        ("dial 020-7946-0123 now", "dial 0207••••0123 now"),
        ("sip:5551234@pbx", "sip:••••234@pbx"),
        ("dialled-1", "dialled-1"),
        ("room 42, 3 people, 123456", "room 42, 3 people, 123456"),  # too short to be one
        ("at 1795959970.794996", "at 1795959970.794996"),  # a timestamp, not a number
    ],
)
def test_numbers_inside_text_are_masked(text: str, masked: str) -> None:
    assert mask_numbers_in(text) == masked
