"""Properties of the dial policy, for any input a caller could produce.

The oracle is libphonenumber itself, read independently of ``decide``: whatever ``decide``
allows must re-parse to the same valid E.164 number, in an allowed region, of a type that
is not restricted, and must not be an emergency or short number.
"""

from __future__ import annotations

import re
import string
from dataclasses import replace

import phonenumbers as pn
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from phonenumbers import PhoneNumberType as T, shortnumberinfo as sni

from switchboard.dialing.policy import (
    ALLOWED_SPOKEN,
    HOUR,
    REFUSED_SPOKEN,
    Decision,
    Destination,
    DialHistory,
    DialPolicy,
    DialRequest,
    Dictated,
    PriorDials,
    Reason,
    decide,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
REGIONS = tuple(sorted(pn.SUPPORTED_REGIONS))
# Everything open that can be opened: only the always-refused rules stand.
EVERYWHERE = DialPolicy(
    "everywhere",
    allowed_regions=REGIONS,
    allow_caller_dictated=True,
    max_dials_per_call=1000,
    max_dials_per_caller_per_hour=1000,
)
US = replace(EVERYWHERE, allowed_regions=("US",))
POLICIES = (EVERYWHERE, US, DialPolicy("default"), replace(US, allowed_patterns=("+1510",)))
DESTINATIONS = {"sales": Destination("sales", "the sales team", number="+15105550142")}
RISKY_TYPES = {
    T.PREMIUM_RATE: Reason.PREMIUM,
    T.SHARED_COST: Reason.SHARED_COST,
    T.PERSONAL_NUMBER: Reason.RESTRICTED_TYPE,
    T.PAGER: Reason.RESTRICTED_TYPE,
    T.UAN: Reason.RESTRICTED_TYPE,
    T.VOICEMAIL: Reason.RESTRICTED_TYPE,
}
FORMATS = (
    pn.PhoneNumberFormat.E164,
    pn.PhoneNumberFormat.INTERNATIONAL,
    pn.PhoneNumberFormat.NATIONAL,
)
SENTENCES = {
    ALLOWED_SPOKEN,
    REFUSED_SPOKEN,
    "I can't call emergency services for you. Please hang up and dial them directly.",
    "I can't place any more calls for you right now.",
}
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dictate(text: str, policy: DialPolicy = EVERYWHERE) -> Decision:
    request = DialRequest(Dictated(text), "+15105550123", "call-1")
    return decide(request, policy, DESTINATIONS, PriorDials(), NOW)


def assert_safe(decision: Decision, policy: DialPolicy) -> None:
    """What any allowed dictated number must be, checked without the policy's code."""
    assert decision.spoken
    if not decision.allowed:
        assert decision.reason is not None
        assert decision.target is None
        return
    assert decision.reason is None
    target = decision.target or ""
    assert target.startswith("+") and target[1:].isdigit() and target.isascii()
    assert len(target) <= 16
    number = pn.parse(target, None)
    assert pn.is_valid_number(number)
    assert pn.format_number(number, pn.PhoneNumberFormat.E164) == target
    if target != DESTINATIONS["sales"].number:  # named destinations skip region rules
        assert pn.region_code_for_number(number) in policy.allowed_regions
        assert target.startswith(policy.allowed_patterns or ("+",))
    assert pn.number_type(number) not in RISKY_TYPES
    nsn = pn.national_significant_number(number)
    assert not any(
        sni.is_emergency_number(nsn, r)
        for r in pn.region_codes_for_country_code(number.country_code or 0)
    )
    assert not sni.is_valid_short_number(number)


def example_numbers(kinds: object) -> list[tuple[str, pn.PhoneNumber]]:
    found = []
    for region in REGIONS:
        for kind in kinds:  # type: ignore[attr-defined]
            number = pn.example_number_for_type(region, kind)
            if number is not None:
                found.append((region, number))
    return found


RISKY_EXAMPLES = example_numbers(RISKY_TYPES)
ORDINARY_EXAMPLES = example_numbers((T.FIXED_LINE, T.MOBILE, T.TOLL_FREE))
EMERGENCY_EXAMPLES = sorted(
    {
        (region, m.emergency.example_number)
        for region in sni.SUPPORTED_SHORT_REGIONS
        if (m := pn.PhoneMetadata.short_metadata_for_region(region)) is not None
        and m.emergency is not None
        and m.emergency.example_number
    }
)
# Digit strings with the separators a caller (or a model) might write.
PHONEISH = st.text(alphabet="0123456789 +-.()", max_size=30)
# fmt: off
FORBIDDEN = st.sampled_from([
    ";", "@", ":", "#", "*", "\r", "\n", "\t", "\x00", "\u00a0", "\u200b", "O", "x", "/", ",",
    "=", "<", "&", "'", "\uff11", "\u0661", "\u06f1", "\u0967",  # fullwidth, Arabic, Devanagari
])
# fmt: on


@PROPERTY
@given(text=st.text(max_size=60), policy=st.sampled_from(POLICIES))
def test_any_text_is_decided_safely(text: str, policy: DialPolicy) -> None:
    assert_safe(dictate(text, policy), policy)


@PROPERTY
@given(text=PHONEISH, policy=st.sampled_from(POLICIES))
def test_any_phoneish_text_is_decided_safely(text: str, policy: DialPolicy) -> None:
    assert_safe(dictate(text, policy), policy)


@PROPERTY
@given(example=st.sampled_from(ORDINARY_EXAMPLES), fmt=st.sampled_from(FORMATS))
def test_allowed_numbers_reparse_to_the_same_e164(
    example: tuple[str, pn.PhoneNumber], fmt: int
) -> None:
    region, number = example
    e164 = pn.format_number(number, pn.PhoneNumberFormat.E164)
    # Countries sharing a plan (BL, GP, MF on +590) read as one of them: allow both.
    regions = (region, pn.region_code_for_number(number) or region)
    policy = replace(EVERYWHERE, allowed_regions=regions)
    decision = dictate(pn.format_number(number, fmt), policy)
    assert_safe(decision, policy)
    if decision.allowed:
        assert decision.target == e164
    else:  # the library's own examples can collide with short or emergency numbers
        assert decision.reason in (Reason.SHORT_CODE, Reason.EMERGENCY, Reason.INVALID)


@pytest.mark.parametrize(("region", "number"), RISKY_EXAMPLES)
def test_every_risky_example_number_is_refused(region: str, number: pn.PhoneNumber) -> None:
    expected = RISKY_TYPES[pn.number_type(number)]
    for fmt in FORMATS:
        policy = replace(EVERYWHERE, allowed_regions=(region,))
        decision = dictate(pn.format_number(number, fmt), policy)
        assert not decision.allowed
        # Without a "+", 6 digits or fewer is a short code: refused, under another name.
        short = (
            fmt == pn.PhoneNumberFormat.NATIONAL
            and len(pn.national_significant_number(number)) <= 6
        )
        assert decision.reason in (expected, Reason.SHORT_CODE if short else expected), region


@pytest.mark.parametrize(("region", "digits"), EMERGENCY_EXAMPLES)
def test_every_regions_emergency_number_is_refused_as_emergency(region: str, digits: str) -> None:
    for policy in (EVERYWHERE, replace(EVERYWHERE, allowed_regions=(region,)), US):
        assert dictate(digits, policy).reason is Reason.EMERGENCY
    country = pn.country_code_for_region(region)
    assert dictate(f"+{country}{digits}").reason in (Reason.EMERGENCY, Reason.INVALID)


@PROPERTY
@given(
    example=st.sampled_from(ORDINARY_EXAMPLES),
    bad=FORBIDDEN,
    at=st.integers(min_value=0, max_value=40),
)
def test_an_injected_character_anywhere_is_never_dialled(
    example: tuple[str, pn.PhoneNumber], bad: str, at: int
) -> None:
    text = pn.format_number(example[1], pn.PhoneNumberFormat.E164)
    at = min(at, len(text))
    decision = dictate(text[:at] + bad + text[at:])
    assert not decision.allowed
    assert decision.reason in (Reason.INJECTED, Reason.EMERGENCY)


@PROPERTY
@given(digits=st.text(alphabet=string.digits, min_size=16, max_size=40))
def test_numbers_longer_than_e164_are_invalid(digits: str) -> None:
    assert dictate("+" + digits).reason is Reason.INVALID


@PROPERTY
@given(
    events=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2 * HOUR),  # seconds since the previous dial
            st.sampled_from(["call-a", "call-b", "call-c"]),
            st.sampled_from(["+15105550123", "+442079460018", None]),
        ),
        max_size=40,
    ),
    per_call=st.integers(min_value=0, max_value=3),
    per_hour=st.integers(min_value=0, max_value=4),
)
def test_limits_hold_for_any_sequence_of_dials(
    events: list[tuple[float, str, str | None]], per_call: int, per_hour: int
) -> None:
    policy = replace(US, max_dials_per_call=per_call, max_dials_per_caller_per_hour=per_hour)
    history = DialHistory()
    now = NOW
    placed: list[tuple[float, str, str | None]] = []
    for gap, call_id, caller in events:
        now += gap
        request = DialRequest(Dictated("+1 510 555 0100"), caller, call_id)
        decision = decide(request, policy, {}, history.view(caller, call_id, now), now)
        if decision.allowed:
            history.record(caller, call_id, now)
            placed.append((now, call_id, caller))
        else:
            assert decision.reason in (Reason.PER_CALL_LIMIT, Reason.PER_CALLER_LIMIT)
    for call_id in {c for _, c, _ in placed}:
        assert sum(1 for _, c, _ in placed if c == call_id) <= per_call
    for t, _, caller in placed:
        window = [p for p in placed if p[2] == caller and t - HOUR < p[0] <= t]
        assert len(window) <= per_hour


@PROPERTY
@given(text=st.text(max_size=40), policy=st.sampled_from(POLICIES))
def test_caller_text_never_reaches_the_caller_or_the_log(text: str, policy: DialPolicy) -> None:
    """Spoken sentences are fixed; the log's number is masked digits, whatever was said."""
    decision = dictate(text, policy)
    assert decision.spoken in SENTENCES
    assert set(decision.log) == {
        "event",
        "reason",
        "policy",
        "call_id",
        "caller",
        "destination",
        "number",
        "region",
    }
    number = decision.log["number"]
    assert number is None or re.fullmatch(r"\+?[0-9•]+", str(number))
    assert decision.log["region"] is None or str(decision.log["region"]).isalnum()
