"""Who the agent may dial: pure decisions standing between the caller's words and the trunk.

Everything a caller says or sends (speech, DTMF, SIP headers) is untrusted, and a dial-out
tool that obeys it is a toll-fraud machine. So ``decide`` refuses unless every check
passes; the policy, the destinations and the dial history are plain data passed in. The
choices made here (unicode digits refused, toll-free and VoIP allowed, national numbers
read in the allowed regions only) are explained in policy.toml, where operators read them.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

import phonenumbers as pn
from phonenumbers import PhoneNumberType as T, shortnumberinfo as sni

from switchboard.dialing.uris import DIGITS, spellings, uri_user
from switchboard.numbers import mask_number

logger = logging.getLogger(__name__)

HOUR = 3600.0
E164_MAX_DIGITS = 15
_ALLOWED_CHARS = re.compile(r"\+?[0-9 ().\-]*")  # [0-9] is ASCII-only; \d would not be
# Emergency numbers phonenumbers may not list for every region; checked in every region.
EMERGENCY_NUMBERS = frozenset(
    [
        "000",
        "08",
        "100",
        "101",
        "102",
        "103",
        "108",
        "110",
        "111",
        "112",
        "113",
        "115",
        "117",
        "118",
        "119",
        "122",
        "123",
        "15",
        "17",
        "18",
        "190",
        "191",
        "192",
        "193",
        "197",
        "199",
        "911",
        "999",
        "10111",
    ]
)


class Reason(Enum):
    """Why a dial was refused (or, under the unsafe override, what was let through)."""

    EMERGENCY = "emergency"
    PREMIUM = "premium"
    SHARED_COST = "shared_cost"
    RESTRICTED_TYPE = "restricted_type"  # personal, pager, UAN, voicemail numbers
    SHORT_CODE = "short_code"
    INVALID = "invalid"
    INJECTED = "injected"
    REGION_NOT_ALLOWED = "region_not_allowed"
    PATTERN_NOT_ALLOWED = "pattern_not_allowed"
    NOT_NAMED = "not_named"
    DICTATION_NOT_ALLOWED = "dictation_not_allowed"
    PER_CALL_LIMIT = "per_call_limit"
    PER_CALLER_LIMIT = "per_caller_limit"
    UNKNOWN_DESTINATION = "unknown_destination"
    LOOP = "loop"  # the line's own number: the call would ring back into this agent


# The kinds of number UNSAFE_ALLOW_RESTRICTED_NUMBERS unlocks. INVALID and INJECTED are not
# among them: there is no well-formed number to dial, whatever the override says.
RESTRICTED = frozenset(
    {
        Reason.EMERGENCY,
        Reason.PREMIUM,
        Reason.SHARED_COST,
        Reason.RESTRICTED_TYPE,
        Reason.SHORT_CODE,
    }
)
_TYPE_REASONS = {
    T.PREMIUM_RATE: Reason.PREMIUM,
    T.SHARED_COST: Reason.SHARED_COST,
    **dict.fromkeys((T.PERSONAL_NUMBER, T.PAGER, T.UAN, T.VOICEMAIL), Reason.RESTRICTED_TYPE),
}


@dataclass(frozen=True, slots=True)
class Classified:
    """A number as read: its E.164 form and region when it parses, and its problem."""

    e164: str | None = None
    region: str | None = None
    problem: Reason | None = None


@functools.lru_cache(maxsize=4096)
def _is_emergency(digits: str, regions: tuple[str, ...] | None = None) -> bool:
    """``digits`` is an emergency number in one of ``regions`` (None: in any region)."""
    if len(digits) > 6:  # the longest emergency number phonenumbers lists has 6 digits
        return False
    if digits in EMERGENCY_NUMBERS:
        return True
    return any(sni.is_emergency_number(digits, r) for r in regions or sni.SUPPORTED_SHORT_REGIONS)


def classify_number(text: str, regions: Sequence[str] = ()) -> Classified:
    """Read a dictated or configured number; ``regions`` are tried for national forms."""
    text = text.strip(" ")
    if not text:
        return Classified(problem=Reason.INVALID)
    if not _ALLOWED_CHARS.fullmatch(text):
        # Refused either way; but 112 in Arabic-Indic or fullwidth digits is still someone
        # asking for emergency services, who must hear to dial them directly.
        folded = "".join(str(unicodedata.decimal(c, c)) for c in text)
        emergency = folded.isascii() and folded.isdigit() and _is_emergency(folded)
        return Classified(problem=Reason.EMERGENCY if emergency else Reason.INJECTED)
    digits = re.sub(r"[^0-9]", "", text)
    plus = text.startswith("+")
    # With a '+' the digits are the E.164 number; without, allow an IDD prefix (0011 44...).
    if not digits or len(digits) > E164_MAX_DIGITS + (0 if plus else 4):
        return Classified(problem=Reason.INVALID)
    number = _parse(text, () if plus else regions)
    e164 = region = None
    if number is not None:
        e164 = pn.format_number(number, pn.PhoneNumberFormat.E164)
        cc = number.country_code or 0
        region = pn.region_code_for_number(number) or pn.region_code_for_country_code(cc)
    # Also without one trunk prefix digit: "1-911" and "0112" reach emergency services too.
    trunkless = digits[1:] if digits[0] in "01" and len(digits) > 1 else digits
    if not plus and (_is_emergency(digits) or _is_emergency(trunkless)):
        return Classified(e164, region, Reason.EMERGENCY)
    if not plus and len(digits) <= 6:
        return Classified(e164, region, Reason.SHORT_CODE)
    if number is None or e164 is None or len(e164) - 1 > E164_MAX_DIGITS:
        return Classified(problem=Reason.INVALID)
    nsn = pn.national_significant_number(number)
    ccs = tuple(pn.region_codes_for_country_code(number.country_code or 0))
    if _is_emergency(nsn, ccs):
        return Classified(e164, region, Reason.EMERGENCY)
    if not pn.is_valid_number(number):
        short = sni.is_valid_short_number(number)
        return Classified(e164, region, Reason.SHORT_CODE if short else Reason.INVALID)
    return Classified(e164, region, _TYPE_REASONS.get(pn.number_type(number)))


def _parse(text: str, regions: Sequence[str]) -> pn.PhoneNumber | None:
    """The first reading that is valid, else the first that parses at all."""
    readings: list[pn.PhoneNumber] = []
    for region in regions or (None,):
        try:
            readings.append(pn.parse(text, region))
        except pn.NumberParseException:
            continue
        if pn.is_valid_number(readings[-1]):
            return readings[-1]
    return readings[0] if readings else None


@dataclass(frozen=True, slots=True)
class DialPolicy:
    """One ``[dial_policy.<name>]`` table; the override comes from the file's top level."""

    name: str
    allowed_regions: tuple[str, ...] = ()
    allowed_patterns: tuple[str, ...] = ()  # E.164 prefixes; empty: any number in a region
    allow_named_only: bool = False
    max_dials_per_call: int = 1
    max_dials_per_caller_per_hour: int = 3
    allow_caller_dictated: bool = False
    unsafe_allow_restricted: bool = False
    # The line's own numbers (E.164), never dialled: set from telephony.toml at start and
    # from the call's own called number at each dial (``with_own_numbers``).
    own_numbers: frozenset[str] = frozenset()

    def with_own_numbers(self, numbers: Iterable[str | None]) -> DialPolicy:
        return replace(self, own_numbers=self.own_numbers | {n for n in numbers if n})


@dataclass(frozen=True, slots=True)
class Destination:
    """A named place to dial: exactly one of ``number`` (E.164) and ``sip_uri``."""

    name: str
    description: str
    number: str | None = None
    sip_uri: str | None = None
    dtmf: str | None = None
    warm: bool = False

    @property
    def target(self) -> str:
        return self.number or self.sip_uri or ""


# Worst first: which refusal a destination gets when the readings of its URI disagree.
_SEVERITY = (
    Reason.EMERGENCY,
    Reason.INJECTED,
    Reason.PREMIUM,
    Reason.SHARED_COST,
    Reason.RESTRICTED_TYPE,
    Reason.SHORT_CODE,
)


def uri_readings(uri: str, regions: Sequence[str] = ()) -> tuple[Classified, ...]:
    """What a SIP or tel URI's user part dials, read every way a carrier could read it
    (``dialing.uris``); () for a name such as ``support``. Non-ASCII digits are one
    INJECTED (or EMERGENCY) reading: no carrier gets to decide what they mean."""
    user = uri_user(uri)
    if not user:
        return ()
    if DIGITS.fullmatch(user):
        first, *rest = spellings(user)
        return (classify_number(first, regions), *map(classify_number, rest))
    if any(unicodedata.category(c) == "Nd" and not c.isascii() for c in user):
        return (classify_number(user),)
    return ()


def destination_readings(
    destination: Destination, regions: Sequence[str] = ()
) -> tuple[Classified, ...]:
    """What a destination reaches: its number, or every reading of its SIP URI."""
    if destination.number:
        return (classify_number(destination.number),)
    return uri_readings(destination.sip_uri or "", regions)


def destination_problem(destination: Destination, regions: Sequence[str] = ()) -> Classified:
    """The reading that refuses a destination (its ``problem`` set), or an empty one.

    Refused: any reading restricted (the most severe is reported), or a number written
    with "+" that is not valid. A bare-digit URI user that is no valid number in any
    reading is left alone: a PBX extension such as ``sip:4711@pbx``.
    """
    found = destination_readings(destination, regions)
    for reason in _SEVERITY:
        for reading in found:
            if reading.problem is reason:
                return reading
    plus = destination.number or (uri_user(destination.sip_uri or "") or "").startswith("+")
    if plus and found and found[0].problem is Reason.INVALID:
        return found[0]
    return Classified()


def loop_number(
    destination: Destination, own_numbers: frozenset[str], regions: Sequence[str] = ()
) -> str | None:
    """The line's own number some reading of ``destination`` is, or None."""
    found = destination_readings(destination, regions)
    return next((r.e164 for r in found if r.e164 in own_numbers), None)


@dataclass(frozen=True, slots=True)
class Named:
    name: str


@dataclass(frozen=True, slots=True)
class Dictated:
    number: str  # exactly as the model passed it: untrusted


@dataclass(frozen=True, slots=True)
class DialRequest:
    target: Named | Dictated
    caller_number: str | None  # untrusted too (a spoofable From header): a speed bump only
    call_id: str


@dataclass(frozen=True, slots=True)
class PriorDials:
    """Dials already placed: this caller's timestamps (epoch seconds), this call's count."""

    caller_times: tuple[float, ...] = ()
    call_count: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    spoken: str  # for the caller: never says which rule refused
    reason: Reason | None = None  # refused: why; allowed: the restricted kind overridden
    target: str | None = None  # the E.164 number or SIP URI to dial
    dtmf: str | None = None
    warm: bool = False
    log: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


ALLOWED_SPOKEN = "One moment, I'm placing that call."
REFUSED_SPOKEN = "I can't place that call for you."
_SPOKEN = {
    Reason.EMERGENCY: "I can't call emergency services for you. "
    "Please hang up and dial them directly.",
    Reason.PER_CALL_LIMIT: "I can't place any more calls for you right now.",
    Reason.PER_CALLER_LIMIT: "I can't place any more calls for you right now.",
    Reason.UNKNOWN_DESTINATION: "I don't have anyone by that name to connect you to.",
}


def decide(
    request: DialRequest,
    policy: DialPolicy,
    destinations: Mapping[str, Destination],
    history: PriorDials,
    now: float,
) -> Decision:
    """Allow or refuse one dial. Pure, except a WARNING for each unsafe override used."""
    target = request.target
    if isinstance(target, Named):
        destination = destinations.get(target.name)
        if destination is None:
            return _decision(request, policy, Reason.UNKNOWN_DESTINATION)
        return _named(request, policy, destination, history, now)
    number = classify_number(target.number, policy.allowed_regions)
    problem = number.problem
    # Emergency first, whatever else is wrong, so the caller hears to dial it directly; and
    # even under the override, which opens emergency numbers to named destinations only.
    if problem in (Reason.INJECTED, Reason.EMERGENCY):
        return _decision(request, policy, problem, number)
    if not policy.allow_caller_dictated:
        return _decision(request, policy, Reason.DICTATION_NOT_ALLOWED, number)
    if problem is not None and not (policy.unsafe_allow_restricted and problem in RESTRICTED):
        return _decision(request, policy, problem, number)
    if number.e164 in policy.own_numbers:
        return _decision(request, policy, Reason.LOOP, number)
    for destination in destinations.values():
        if number.e164 is not None and destination.number == number.e164:
            return _named(request, policy, destination, history, now)
    if policy.allow_named_only:
        return _decision(request, policy, Reason.NOT_NAMED, number)
    if number.region not in policy.allowed_regions:
        return _decision(request, policy, Reason.REGION_NOT_ALLOWED, number)
    e164 = number.e164 or ""
    if policy.allowed_patterns and not e164.startswith(policy.allowed_patterns):
        return _decision(request, policy, Reason.PATTERN_NOT_ALLOWED, number)
    limit = _limit(policy, history, now)
    return _decision(request, policy, limit or problem, number, allowed=limit is None)


def _named(
    request: DialRequest,
    policy: DialPolicy,
    destination: Destination,
    history: PriorDials,
    now: float,
) -> Decision:
    """Operator-vetted, so no region or pattern rule; still re-checked, in case the
    Destination did not come through load_policy."""
    number = destination_problem(destination, policy.allowed_regions)
    problem = number.problem
    if problem is not None and not (policy.unsafe_allow_restricted and problem in RESTRICTED):
        return _decision(request, policy, problem, number, destination)
    if loop := loop_number(destination, policy.own_numbers, policy.allowed_regions):
        return _decision(request, policy, Reason.LOOP, Classified(loop), destination)
    limit = _limit(policy, history, now)
    return _decision(request, policy, limit or problem, number, destination, limit is None)


def _limit(policy: DialPolicy, history: PriorDials, now: float) -> Reason | None:
    if history.call_count >= policy.max_dials_per_call:
        return Reason.PER_CALL_LIMIT
    # Timestamps ahead of ``now`` (clock steps) still count: the safe direction.
    recent = sum(1 for t in history.caller_times if t > now - HOUR)
    return Reason.PER_CALLER_LIMIT if recent >= policy.max_dials_per_caller_per_hour else None


def _decision(
    request: DialRequest,
    policy: DialPolicy,
    reason: Reason | None,
    number: Classified | None = None,
    destination: Destination | None = None,
    allowed: bool = False,
) -> Decision:
    dialled = destination.target if destination else number.e164 if number else None
    log: dict[str, object] = {
        "event": "dial_allowed" if allowed else "dial_refused",
        "reason": reason.name if reason else None,
        "policy": policy.name,
        "call_id": request.call_id,
        "caller": mask_number(request.caller_number),
        "destination": destination.name if destination else None,
        "number": mask_number(dialled),  # digits only: the raw text may carry injections
        "region": number.region if number else None,
    }
    if not allowed:
        return Decision(
            False,
            _SPOKEN.get(reason, REFUSED_SPOKEN) if reason else "",
            reason,
            log=MappingProxyType(log),
        )
    if reason is not None:
        log["unsafe_override"] = "UNSAFE_ALLOW_RESTRICTED_NUMBERS"
        logger.warning(
            "dialling a %s number under UNSAFE_ALLOW_RESTRICTED_NUMBERS: %s", reason.name, log
        )
    return Decision(
        True,
        ALLOWED_SPOKEN,
        reason,
        target=dialled,
        dtmf=destination.dtmf if destination else None,
        warm=destination.warm if destination else False,
        log=MappingProxyType(log),
    )


def caller_key(caller_number: str | None) -> str:
    """The rate-limit bucket: the caller's digits; all hidden numbers share one bucket."""
    digits = re.sub(r"[^0-9]", "", caller_number or "")
    return digits or "hidden"


class DialHistory:
    """Dials placed by this process: per caller for an hour, per call for a day.

    Per process and in memory: several workers each keep their own, so the per-caller
    limit is per worker. The per-call limit is exact (a call lives on one worker).
    """

    CALL_MEMORY = 24 * HOUR  # forget a call's count a day after its last dial

    def __init__(self) -> None:
        self._callers: dict[str, list[float]] = {}
        self._calls: dict[str, tuple[int, float]] = {}  # call id: (dials, last dial time)

    def record(self, caller: str | None, call_id: str, now: float) -> None:
        """Note one placed dial (call it after an allowed decision, before dialling)."""
        self._prune(now)
        self._callers.setdefault(caller_key(caller), []).append(now)
        count, _ = self._calls.get(call_id, (0, now))
        self._calls[call_id] = (count + 1, now)

    def carry_over(self, call_id: str, dials: int, now: float) -> None:
        """A call taken over from another process had already placed ``dials``: they
        count against its limit here too (never lowering what this process counted)."""
        self._prune(now)
        count, _ = self._calls.get(call_id, (0, now))
        if dials > count:
            self._calls[call_id] = (dials, now)

    def view(self, caller: str | None, call_id: str, now: float) -> PriorDials:
        times = tuple(t for t in self._callers.get(caller_key(caller), ()) if t > now - HOUR)
        return PriorDials(times, self._calls.get(call_id, (0, now))[0])

    def _prune(self, now: float) -> None:
        for key, times in list(self._callers.items()):
            if kept := [t for t in times if t > now - HOUR]:
                self._callers[key] = kept
            else:
                del self._callers[key]
        for call_id, (_, last) in list(self._calls.items()):
            if last <= now - self.CALL_MEMORY:
                del self._calls[call_id]
