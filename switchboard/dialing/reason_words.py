"""Why a dial was refused, in plain words for the operator: a refusal's code alone
("INJECTED") says nothing to someone who typed "abc". Used by `switchboard dial-check` and
by the call records' timelines."""

from __future__ import annotations

from switchboard.dialing.policy import Reason

REASON_WORDS: dict[Reason, str] = {
    Reason.EMERGENCY: "an emergency number: never dialled by the agent; callers are told to "
    "dial it themselves",
    Reason.PREMIUM: "a premium-rate number",
    Reason.SHARED_COST: "a shared-cost number",
    Reason.RESTRICTED_TYPE: "a personal, pager, UAN or voicemail number",
    Reason.SHORT_CODE: "a short code, not a full phone number",
    Reason.LOOP: "one of this line's own numbers: the call would ring back into this agent",
    Reason.INVALID: "not a valid phone number (too short, too long, or no such number)",
    Reason.INJECTED: "not a phone number: it holds characters other than digits, spaces, "
    "+, -, ., ( and )",
    Reason.REGION_NOT_ALLOWED: "in a country the policy's allowed_regions does not list",
    Reason.PATTERN_NOT_ALLOWED: "does not start with one of the policy's allowed_patterns",
    Reason.NOT_NAMED: "the policy allows named destinations only (allow_named_only)",
    Reason.DICTATION_NOT_ALLOWED: "the policy does not let callers dictate numbers "
    "(allow_caller_dictated = false)",
    Reason.PER_CALL_LIMIT: "this call has placed its max_dials_per_call already",
    Reason.PER_CALLER_LIMIT: "this caller has placed max_dials_per_caller_per_hour already",
    Reason.UNKNOWN_DESTINATION: "no [destinations.NAME] of that name",
}


def refusal_words(code: str) -> str | None:
    """The words for a reason's code as records keep it ("PREMIUM"); None if unknown."""
    reason = Reason.__members__.get(code)
    return None if reason is None else REASON_WORDS[reason]
