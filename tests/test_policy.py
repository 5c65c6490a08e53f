"""The dial policy: real numbers of many countries, emergency and restricted numbers,
injected strings, named destinations, dictation rules and limits (explicit clocks)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from switchboard.dialing.policy import (
    HOUR,
    RESTRICTED,
    Decision,
    Destination,
    DialHistory,
    DialPolicy,
    DialRequest,
    Dictated,
    Named,
    PriorDials,
    Reason,
    caller_key,
    classify_number,
    decide,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
CALLER = "+15105550123"
REGIONS = ("US", "CA", "GB", "FR", "DE", "AU", "JP")
# Dictation on, several countries, generous limits: only the number decides.
OPEN = DialPolicy(
    "open",
    allowed_regions=REGIONS,
    allow_caller_dictated=True,
    max_dials_per_call=10,
    max_dials_per_caller_per_hour=10,
)
NAMED_ONLY = DialPolicy("named")  # the defaults: no dictation, 1 per call, 3 per hour
NO_DIALS = PriorDials()
DESTINATIONS = {
    "sales": Destination("sales", "the sales team", number="+15105550142", dtmf="ww123#"),
    "support": Destination("support", "support", sip_uri="sip:support@pbx.example.com", warm=True),
}


def dictate(
    number: str,
    policy: DialPolicy = OPEN,
    history: PriorDials = NO_DIALS,
    caller: str | None = CALLER,
) -> Decision:
    request = DialRequest(Dictated(number), caller, "call-1")
    return decide(request, policy, DESTINATIONS, history, NOW)


def named(name: str, policy: DialPolicy = NAMED_ONLY, history: PriorDials = NO_DIALS) -> Decision:
    return decide(DialRequest(Named(name), CALLER, "call-1"), policy, DESTINATIONS, history, NOW)


# (what the caller said, the E.164 dialled). Toll-free is allowed: the called party pays.
ALLOWED = [
    ("+1 510 555 0100", "+15105550100"),
    ("(510) 555-0100", "+15105550100"),  # national: read in the first allowed region, US
    ("510.555.0100", "+15105550100"),
    ("  +1-510-555-0100  ", "+15105550100"),
    ("+1 800 275 2273", "+18002752273"),  # US toll-free 1-800
    ("1-888-555-0100", "+18885550100"),  # US toll-free, national form
    ("+1 613 555 0100", "+16135550100"),  # Canada shares +1
    ("+44 20 7946 0018", "+442079460018"),
    ("020 7946 0018", "+442079460018"),  # invalid in US, valid in GB (next in order)
    ("011 44 20 7946 0018", "+442079460018"),  # US international dialling prefix
    ("+44 56 1234 5678", "+445612345678"),  # UK VoIP: allowed, ordinary rate
    ("+33 1 42 68 53 00", "+33142685300"),
    ("+33 8 00 12 34 56", "+33800123456"),  # French toll-free
    ("+49 30 123456", "+4930123456"),
    ("+61 2 9374 4000", "+61293744000"),
    ("+81 3 1234 5678", "+81312345678"),
]

REFUSED = [
    # Premium rate, shared cost, and the other risky types.
    ("+44 909 879 0000", Reason.PREMIUM),  # UK 09
    ("+1 900 555 0100", Reason.PREMIUM),  # US 1-900
    ("1-900-555-0100", Reason.PREMIUM),
    ("+33 8 91 00 00 00", Reason.PREMIUM),  # FR 089x: libphonenumber types it premium
    ("+33 8 99 00 00 00", Reason.PREMIUM),
    ("+49 900 1234567", Reason.PREMIUM),
    ("+39 899 123456", Reason.PREMIUM),
    ("+44 871 000 0000", Reason.PREMIUM),
    ("+33 8 10 00 00 00", Reason.SHARED_COST),  # FR 081x
    ("+33 8 21 00 00 00", Reason.SHARED_COST),
    ("+49 180 1234567", Reason.SHARED_COST),
    ("+44 70 1000 0000", Reason.RESTRICTED_TYPE),  # UK personal number: forwards anywhere
    ("+44 7640 123456", Reason.RESTRICTED_TYPE),  # UK pager
    ("+31 88 000 0000", Reason.RESTRICTED_TYPE),  # NL UAN
    # Emergency, national and E.164-ish.
    ("911", Reason.EMERGENCY),
    ("+1911", Reason.EMERGENCY),
    ("+1 911", Reason.EMERGENCY),
    ("1-911", Reason.EMERGENCY),
    ("112", Reason.EMERGENCY),
    ("+49 112", Reason.EMERGENCY),
    ("+33 112", Reason.EMERGENCY),
    ("0112", Reason.EMERGENCY),
    ("999", Reason.EMERGENCY),
    ("+44 999", Reason.EMERGENCY),
    ("000", Reason.EMERGENCY),
    ("+61 000", Reason.EMERGENCY),
    ("110", Reason.EMERGENCY),  # DE/JP police
    ("119", Reason.EMERGENCY),  # JP fire
    ("118", Reason.EMERGENCY),  # IT medical
    ("08", Reason.EMERGENCY),
    ("100", Reason.EMERGENCY),
    ("101", Reason.EMERGENCY),
    ("102", Reason.EMERGENCY),
    ("15", Reason.EMERGENCY),  # FR SAMU
    ("17", Reason.EMERGENCY),
    ("18", Reason.EMERGENCY),
    ("10111", Reason.EMERGENCY),  # ZA police
    ("\u0661\u0661\u0662", Reason.EMERGENCY),  # 112 in Arabic-Indic digits: refused, but
    ("\uff19\uff11\uff11", Reason.EMERGENCY),  # the caller still hears to dial directly
    # Short codes.
    ("411", Reason.SHORT_CODE),
    ("+1411", Reason.SHORT_CODE),
    ("+44 118 118", Reason.SHORT_CODE),
    ("118118", Reason.SHORT_CODE),
    ("55555", Reason.SHORT_CODE),  # an SMS short code
    # Invalid, unparseable, too long.
    ("", Reason.INVALID),
    ("   ", Reason.INVALID),
    ("+", Reason.INVALID),
    ("()-.", Reason.INVALID),
    ("+" + "1" * 20, Reason.INVALID),  # longer than E.164 allows
    ("+1234567890123456", Reason.INVALID),  # 16 digits
    ("+999 1234 5678", Reason.INVALID),  # no such country code
    ("+1 011 555 0100", Reason.INVALID),
    ("+1 510 555 01", Reason.INVALID),
    ("1234567", Reason.INVALID),  # national, valid in no allowed region
    ("9999999999999", Reason.INVALID),
    # Injected or smuggled characters: refused, never normalised.
    ("+15105550100;ext=1", Reason.INJECTED),
    ("+1510555010O", Reason.INJECTED),  # letter O
    ("sip:+15105550100@evil.com", Reason.INJECTED),
    ("tel:+15105550100", Reason.INJECTED),
    ("+1 510 555 0100\r\nX-Evil: 1", Reason.INJECTED),
    ("+15105550100\n", Reason.INJECTED),
    ("+1\t510 555 0100", Reason.INJECTED),
    ("+1\x00510 555 0100", Reason.INJECTED),
    ("+1\u00a0510 555 0100", Reason.INJECTED),  # no-break space
    ("\uff0b\uff11\uff15\uff11\uff10\uff15\uff15\uff15\uff10\uff11\uff10\uff10", Reason.INJECTED),
    ("+\u0661\u0665\u0661\u0660\u0665\u0665\u0665\u0660\u0661\u0660\u0660", Reason.INJECTED),
    ("1-800-FLOWERS", Reason.INJECTED),
    ("+1 510 555 0100 x123", Reason.INJECTED),
    ("+1-510-555-0100#", Reason.INJECTED),
    ("*67 510 555 0100", Reason.INJECTED),
    ("++15105550100", Reason.INJECTED),
    ("1+5105550100", Reason.INJECTED),
    ("+15105550100@evil.com", Reason.INJECTED),
    # Valid, ordinary numbers outside the allowed regions.
    ("+1 876 555 0100", Reason.REGION_NOT_ALLOWED),  # Jamaica: +1, but not US or CA
    ("+1 809 555 0100", Reason.REGION_NOT_ALLOWED),  # Dominican Republic
    ("+7 495 123 45 67", Reason.REGION_NOT_ALLOWED),
    ("+86 10 1234 5678", Reason.REGION_NOT_ALLOWED),
    ("+882 13 000000", Reason.REGION_NOT_ALLOWED),  # international networks: no country
    ("+870 773 111 632", Reason.REGION_NOT_ALLOWED),  # satellite
]


@pytest.mark.parametrize(("said", "e164"), ALLOWED)
def test_ordinary_numbers_are_dialled_in_e164(said: str, e164: str) -> None:
    decision = dictate(said)
    assert decision.allowed, decision
    assert decision.target == e164
    assert decision.reason is None
    assert decision.dtmf is None


@pytest.mark.parametrize(("said", "reason"), REFUSED)
def test_restricted_and_malformed_numbers_are_refused(said: str, reason: Reason) -> None:
    decision = dictate(said)
    assert not decision.allowed
    assert decision.reason is reason
    assert decision.target is None


def test_emergency_is_refused_with_its_own_sentence_whatever_the_policy() -> None:
    full = PriorDials(caller_times=(NOW,) * 10, call_count=10)
    for policy in (OPEN, NAMED_ONLY, replace(OPEN, unsafe_allow_restricted=True)):
        decision = dictate("911", policy, full)
        assert decision.reason is Reason.EMERGENCY
        assert decision.spoken == (
            "I can't call emergency services for you. Please hang up and dial them directly."
        )


def test_spoken_sentences_reveal_no_policy_internals() -> None:
    said = {r: dictate(s).spoken for s, r in REFUSED} | {
        Reason.DICTATION_NOT_ALLOWED: dictate("+15105550100", NAMED_ONLY).spoken,
        Reason.UNKNOWN_DESTINATION: named("billing").spoken,
    }
    for reason, sentence in said.items():
        assert sentence, reason
        for word in ("region", "pattern", "premium", "policy", "allowed", "limit", "invalid"):
            assert word not in sentence.lower(), (reason, sentence)
    assert said[Reason.PREMIUM] == said[Reason.REGION_NOT_ALLOWED] == said[Reason.INJECTED]


def test_log_masks_numbers_and_never_carries_the_raw_text() -> None:
    decision = dictate("+1 510 555 0100\r\nX-Evil: 1")
    assert "X-Evil" not in repr(decision.log)
    allowed = dictate("+1 510 555 0100")
    assert allowed.log["number"] == "+1510••••0100"
    assert allowed.log["caller"] == "+1510••••0123"
    assert allowed.log["event"] == "dial_allowed"
    assert allowed.log["call_id"] == "call-1"
    assert dictate("+44 909 879 0000").log["reason"] == "PREMIUM"


def test_national_numbers_are_read_only_in_allowed_regions() -> None:
    us_only = replace(OPEN, allowed_regions=("US",))
    assert dictate("020 7946 0018", us_only).reason is Reason.INVALID
    assert dictate("020 7946 0018", OPEN).target == "+442079460018"
    assert dictate("+44 20 7946 0018", us_only).reason is Reason.REGION_NOT_ALLOWED
    assert dictate("5105550100", replace(OPEN, allowed_regions=())).reason is Reason.INVALID


def test_patterns_are_e164_prefixes() -> None:
    block = replace(OPEN, allowed_patterns=("+1510555", "+4420"))
    assert dictate("+1 510 555 0100", block).allowed
    assert dictate("(510) 555-0199", block).allowed
    assert dictate("+44 20 7946 0018", block).allowed
    assert dictate("+1 415 555 0100", block).reason is Reason.PATTERN_NOT_ALLOWED
    assert dictate("+44 161 496 0000", block).reason is Reason.PATTERN_NOT_ALLOWED


def test_named_destinations() -> None:
    sales = named("sales")
    assert sales.allowed
    assert (sales.target, sales.dtmf, sales.warm) == ("+15105550142", "ww123#", False)
    assert sales.log["destination"] == "sales"
    support = named("support")
    assert (support.target, support.dtmf, support.warm) == (
        "sip:support@pbx.example.com",
        None,
        True,
    )
    unknown = named("billing")
    assert unknown.reason is Reason.UNKNOWN_DESTINATION
    assert unknown.spoken == "I don't have anyone by that name to connect you to."
    assert named("Sales").reason is Reason.UNKNOWN_DESTINATION  # names are exact


def test_named_destinations_skip_regions_and_patterns_but_not_limits() -> None:
    strict = replace(OPEN, allowed_regions=("GB",), allowed_patterns=("+44",))
    assert named("sales", strict).allowed
    assert named("sales", strict, PriorDials(call_count=10)).reason is Reason.PER_CALL_LIMIT


def test_dictation_disabled_leaves_only_named_destinations() -> None:
    assert dictate("+1 510 555 0100", NAMED_ONLY).reason is Reason.DICTATION_NOT_ALLOWED
    assert dictate("+1 510 555 0142", NAMED_ONLY).reason is Reason.DICTATION_NOT_ALLOWED
    assert dictate("+44 909 879 0000", NAMED_ONLY).reason is Reason.DICTATION_NOT_ALLOWED
    assert dictate("+1510;x", NAMED_ONLY).reason is Reason.INJECTED  # still flagged as such
    assert named("sales", NAMED_ONLY).allowed


def test_allow_named_only_dials_a_dictated_number_only_if_it_is_a_destination() -> None:
    policy = replace(OPEN, allow_named_only=True)
    decision = dictate("(510) 555-0142", policy)
    assert decision.allowed
    assert (decision.target, decision.dtmf) == ("+15105550142", "ww123#")
    assert decision.log["destination"] == "sales"
    assert dictate("+1 510 555 0100", policy).reason is Reason.NOT_NAMED
    assert dictate("+1 900 555 0100", policy).reason is Reason.PREMIUM


def test_per_call_limit() -> None:
    policy = replace(OPEN, max_dials_per_call=2)
    assert dictate("+15105550100", policy, PriorDials(call_count=1)).allowed
    refused = dictate("+15105550100", policy, PriorDials(call_count=2))
    assert refused.reason is Reason.PER_CALL_LIMIT
    assert refused.spoken == "I can't place any more calls for you right now."
    none = replace(OPEN, max_dials_per_call=0)
    assert dictate("+15105550100", none).reason is Reason.PER_CALL_LIMIT


def test_per_caller_limit_counts_the_last_hour_only() -> None:
    policy = replace(OPEN, max_dials_per_caller_per_hour=3)
    three = PriorDials(caller_times=(NOW - 3000, NOW - 60, NOW - 1))
    assert dictate("+15105550100", policy, three).reason is Reason.PER_CALLER_LIMIT
    aged = PriorDials(caller_times=(NOW - HOUR, NOW - 60, NOW - 1))  # exactly an hour: gone
    assert dictate("+15105550100", policy, aged).allowed
    future = PriorDials(caller_times=(NOW + 5, NOW - 60, NOW - 1))  # a clock step: counts
    assert dictate("+15105550100", policy, future).reason is Reason.PER_CALLER_LIMIT


def test_number_reasons_come_before_limits() -> None:
    full = PriorDials(caller_times=(NOW,) * 10, call_count=10)
    assert dictate("+44 909 879 0000", OPEN, full).reason is Reason.PREMIUM
    assert dictate("+1 876 555 0100", OPEN, full).reason is Reason.REGION_NOT_ALLOWED
    assert dictate("+1 510 555 0100", OPEN, full).reason is Reason.PER_CALL_LIMIT


def test_unsafe_override_lets_restricted_numbers_through_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unsafe = replace(OPEN, unsafe_allow_restricted=True)
    with caplog.at_level(logging.WARNING, logger="switchboard.policy"):
        decision = dictate("+44 909 879 0000", unsafe)
    assert decision.allowed
    assert decision.target == "+449098790000"
    assert decision.reason is Reason.PREMIUM  # allowed, and says what it let through
    assert decision.log["unsafe_override"] == "UNSAFE_ALLOW_RESTRICTED_NUMBERS"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "UNSAFE_ALLOW_RESTRICTED_NUMBERS" in caplog.records[0].getMessage()
    assert "+449098790000" not in caplog.records[0].getMessage()  # masked
    # Never for malformed input, never for a dictated emergency number.
    assert dictate("+15105550100;x", unsafe).reason is Reason.INJECTED
    assert dictate("+" + "1" * 20, unsafe).reason is Reason.INVALID
    assert dictate("+44 999", unsafe).reason is Reason.EMERGENCY
    # Region and limit rules still hold.
    assert dictate("+1 876 555 0100", unsafe).reason is Reason.REGION_NOT_ALLOWED


def test_restricted_named_destinations_are_rechecked_at_decision_time() -> None:
    premium = {"psychic": Destination("psychic", "a hotline", number="+19005550100")}
    request = DialRequest(Named("psychic"), CALLER, "call-1")
    refused = decide(request, NAMED_ONLY, premium, PriorDials(), NOW)
    assert refused.reason is Reason.PREMIUM
    via_sip = {"psychic": Destination("psychic", "a hotline", sip_uri="sip:+19005550100@t.example")}
    assert decide(request, NAMED_ONLY, via_sip, PriorDials(), NOW).reason is Reason.PREMIUM
    unsafe = replace(NAMED_ONLY, unsafe_allow_restricted=True)
    allowed = decide(request, unsafe, premium, PriorDials(), NOW)
    assert allowed.allowed
    assert allowed.reason is Reason.PREMIUM


def test_restricted_set() -> None:
    assert Reason.INVALID not in RESTRICTED
    assert Reason.INJECTED not in RESTRICTED
    assert Reason.PREMIUM in RESTRICTED


def test_classify_without_regions_reads_only_e164() -> None:
    assert classify_number("+15105550100").e164 == "+15105550100"
    assert classify_number("5105550100").problem is Reason.INVALID
    assert classify_number("+15105550100").region == "US"


# DialHistory: in memory, explicit clocks, no sleeps.


def test_history_counts_per_caller_and_per_call() -> None:
    history = DialHistory()
    assert history.view(CALLER, "call-1", NOW) == PriorDials()
    history.record(CALLER, "call-1", NOW)
    history.record("+1 (510) 555-0123", "call-2", NOW + 10)  # same caller, other spelling
    history.record("+442079460018", "call-3", NOW + 20)
    assert history.view(CALLER, "call-1", NOW + 30) == PriorDials((NOW, NOW + 10), 1)
    assert history.view(CALLER, "call-2", NOW + 30).call_count == 1
    assert history.view(CALLER, "call-9", NOW + 30).call_count == 0


def test_history_forgets_callers_after_an_hour_but_calls_after_a_day() -> None:
    history = DialHistory()
    history.record(CALLER, "call-1", NOW)
    later = NOW + HOUR
    assert history.view(CALLER, "call-1", later) == PriorDials((), 1)
    history.record("+442079460018", "call-2", later)  # recording prunes
    assert caller_key(CALLER) not in history._callers
    assert history.view(CALLER, "call-1", NOW + 2 * HOUR).call_count == 1
    history.record("+442079460018", "call-3", NOW + DialHistory.CALL_MEMORY)
    assert history.view(CALLER, "call-1", NOW + DialHistory.CALL_MEMORY).call_count == 0


def test_hidden_callers_share_one_budget() -> None:
    assert caller_key(None) == caller_key("") == caller_key("anonymous") == "hidden"
    history = DialHistory()
    history.record(None, "call-1", NOW)
    assert history.view("", "call-2", NOW).caller_times == (NOW,)


def test_tool_loop_respects_both_limits() -> None:
    """The dial tool's sequence: view, decide, record when allowed."""
    policy = replace(OPEN, max_dials_per_call=2, max_dials_per_caller_per_hour=3)
    history = DialHistory()
    placed = []
    for minute, call_id in enumerate(["a", "a", "a", "b", "b", "c"]):
        now = NOW + 60 * minute
        request = DialRequest(Dictated("+15105550100"), CALLER, call_id)
        decision = decide(request, policy, DESTINATIONS, history.view(CALLER, call_id, now), now)
        if decision.allowed:
            history.record(CALLER, call_id, now)
        placed.append(decision.reason)
    assert placed == [
        None,
        None,
        Reason.PER_CALL_LIMIT,
        None,
        Reason.PER_CALLER_LIMIT,
        Reason.PER_CALLER_LIMIT,
    ]
    later = NOW + HOUR + 1
    request = DialRequest(Dictated("+15105550100"), CALLER, "d")
    assert decide(request, policy, DESTINATIONS, history.view(CALLER, "d", later), later).allowed
