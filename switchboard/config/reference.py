"""The configuration reference (docs/CONFIGURATION.md), generated from the code.

Every environment variable comes from `settings.ENV_VARS`, grouped by the settings part
it fills (`settings.calls.ring_timeout`...); every routes.toml and
policy.toml field from the dataclasses the loaders read. A field without a description
here fails the test that regenerates the file, so the reference cannot drift.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, get_type_hints

from switchboard.config.file_secrets import FILE_SECRETS
from switchboard.config.settings import ENV_VARS, Settings
from switchboard.dialing.policy import Destination, DialPolicy
from switchboard.menu import Menu
from switchboard.routing import Match, Route
from switchboard.turn_taking import TurnTaking

ROUTE_FIELDS = {
    "name": "Unique name; the last route must be `default`, with no `match`.",
    "match": "The conditions (table below); all given ones must hold. First match wins.",
    "stt_model": "Deepgram model; unset: `nova-2-phonecall` for English phone callers, "
    "`nova-3` otherwise.",
    "language": "BCP-47 language of the conversation (speech-to-text, offline voice).",
    "prompt": "Instructions: a file in `prompts/`, without `.md`.",
    "greeting": "What the agent says first; unset: the model greets from its prompt.",
    "tools": "Tools the agent gets: `dial_out`, `transfer`, `list_participants`, "
    "`end_call`, `dtmf`.",
    "dial_policy": "The `[dial_policy.NAME]` in policy.toml governing `dial_out` "
    "(default: `default`).",
    "transfer_destinations": "Names of `[destinations.NAME]` the transfer tool may use.",
    "pin_env": "Require a PIN (keyed on the phone) before anything else: the name of the "
    "environment variable holding it, never the PIN itself.",
    "pin_attempts": "Wrong PINs allowed before the agent says goodbye and hangs up.",
    "pin_prompt": "What the agent says to ask for the PIN.",
    "allow_caller_selected_pin": "`true`: accept a PIN route whose match uses only custom "
    "`attributes`. Those come from SIP X- headers the caller sets or leaves out, so a caller "
    "skips this route (and its PIN) by leaving the header out, and lands on a later route: "
    "set it only when every later route is safe for anyone. Refused at load otherwise.",
    "turn": "Turn-taking: when the caller is judged finished, and what stops the agent "
    "(table below).",
    "menu": "A keypad menu for calls no AI can take (keyless mode, or every provider "
    "down mid-call): the table below.",
    "record": "`true`: record the call, caller left and agent right, into "
    "`SWITCHBOARD_RECORDINGS_DIR` (off by default).",
    "record_consent": "Said before the recording starts (which is only once it has been "
    'heard), e.g. `"This call is recorded."`; needs `record = true`.',
}
# What each turn-taking setting buys and what it costs: the operator trades speed against
# cutting callers off (bench/RESULTS.md, section 10, has the figures).
TURN_FIELDS = {
    "detection": '`"model"`: the framework\'s end-of-turn model (run locally) listens to '
    "the last 1.2 s of the caller's voice after 0.2 s of silence, not to the words, and waits "
    "up to `max_endpointing_delay` when the caller sounds unfinished (fewer callers cut off; "
    "costs up to that delay on the turns it misjudges: it judges espeak-ng's synthetic "
    'voices unfinished almost always). `"vad"`: silence alone ends the turn (fastest and '
    "steadiest; cuts off callers who pause mid-sentence).",
    "min_endpointing_delay": "Seconds after the caller's last sound before the turn may end. "
    "Lower answers sooner; too low answers into a pause. Counted from the last sound, so "
    "under `vad_min_silence` it costs nothing.",
    "max_endpointing_delay": "Longest wait (seconds) when the model judges the caller "
    "unfinished. Lower bounds the slow turns; too low answers callers still thinking.",
    "vad_min_silence": "Silence (seconds) before the voice detector reports the end of "
    "speech: the floor under every turn. Lower is faster; too low splits utterances at "
    'short pauses. At least 0.25 with `detection = "model"` (the model needs it), and '
    "under 0.3 it gains nothing there: the model's answer comes about then (bench/RESULTS.md, "
    "section 10).",
    "allow_interruptions": "The caller's voice stops the agent (barge-in).",
    "min_interruption_duration": "Seconds of caller speech before it stops the agent. "
    "Higher ignores coughs and backchannels; costs that long of talking over each other.",
    "min_interruption_words": "Words the transcript must hold before the agent stops "
    "(0: voice alone). Higher ignores noise; costs a transcript's delay per barge-in.",
    "false_interruption_timeout": "Silence (seconds) after an interruption with no words "
    "that makes it a false one (a cough, a door).",
    "resume_false_interruption": "After a false interruption, the agent resumes its reply "
    "instead of staying silent.",
    "preemptive_generation": "Start the reply from the transcript before the turn is "
    "confirmed: saves the LLM's time to first token; costs requests thrown away when the "
    "caller goes on.",
}
MENU_FIELDS = {
    "keys": 'Key → `[destinations.NAME]`: `{ "1" = "sales", "2" = "support" }`; 0 repeats '
    "the menu. Reached by a cold transfer (REFER), or for a `warm` destination by dialling "
    "the person into the call, under the route's `dial_policy` and its limits.",
    "timeout": "Seconds to wait for a key once the menu has been heard (2-60). No key, or a "
    "wrong one, plays the menu again; the second miss ends the call with a goodbye.",
    "prompt": "The menu's words; unset: built from the keys (English or Spanish, after "
    "`language`; other languages must set it).",
}
MATCH_FIELDS = {
    "kind": '`"sip"` (phone callers) or `"standard"` (web and app callers).',
    "called_number": "The dialled number (`sip.trunkPhoneNumber`), E.164.",
    "caller_number": "The caller's number (`sip.phoneNumber`), E.164.",
    "caller_prefix": 'The caller\'s number starts with it, e.g. `"+44"`.',
    "caller_region": 'The caller\'s country, ISO code such as `"GB"`.',
    "trunk_id": "`sip.trunkID`.",
    "rule_id": "`sip.ruleID`.",
    "number_hidden": "`true`: the dispatch rule hides the caller's number.",
    "attributes": "Custom attributes (X-* headers, dispatch-rule attributes): "
    '`{ name = "value" }` or `{ name = ["a", "b"] }`.',
    "directory": "Fields of the caller's directory entry, same form as `attributes`.",
}
POLICY_FIELDS = {
    "allowed_regions": "Countries (ISO codes) a dictated number may be in.",
    "allowed_patterns": "E.164 prefixes a dictated number must start with (empty: any).",
    "allow_named_only": "Only named destinations, even when the caller dictates a number.",
    "max_dials_per_call": "Dial-outs one call may place.",
    "max_dials_per_caller_per_hour": "Dial-outs one caller number may place per hour, "
    "across calls.",
    "allow_caller_dictated": "Whether the caller may dictate a number at all.",
}
DESTINATION_FIELDS = {
    "description": "What the model is told the destination is, e.g. `the sales team`.",
    "number": "E.164 number (exactly one of `number` and `sip_uri`).",
    "sip_uri": "`sip:user@host[:port]`; a user part made of digits is checked as a number "
    "(6 digits or fewer: a short code, refused; reach a PBX extension by a name user).",
    "dtmf": "Digits sent after the answer (`w` = half-second pause), e.g. `ww123#`.",
    "warm": "`true`: a warm transfer: the caller holds while the agent calls the person "
    "(a dial under the route's `dial_policy`), briefs them, and connects them once they agree: "
    "MoveParticipant where the server has it (LiveKit Cloud), else the agent bridges the two "
    "rooms (open-source livekit-server). From a keypad menu: the person is dialled into the "
    "caller's room. `false`: a cold transfer (SIP REFER).",
}


def _default(field: Any) -> str:
    if field.name == "match":
        return "any caller"
    if field.name == "turn":
        return "phone defaults"
    if field.default is not MISSING:
        value = field.default
    elif field.default_factory is not MISSING:
        value = field.default_factory()
    else:
        return "required"
    if value is None or value == () or (not value and not isinstance(value, bool | int)):
        return "unset"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{value!r}`".replace("'", '"').replace("True", "true").replace("False", "false")


def _table(cls: type, docs: dict[str, str], skip: tuple[str, ...] = ()) -> list[str]:
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for f in fields(cls):
        if f.name in skip:
            continue
        rows.append(f"| `{f.name}` | {_default(f)} | {docs[f.name]} |")
    return rows


def _environment() -> list[str]:
    out = []
    for part, cls in get_type_hints(Settings).items():
        out += ["", f"### `settings.{part}`: {cls.__doc__}", ""]
        out += ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
        out += [
            f"| `{v.name}` | `{v.default}` | {v.accepts or 'text'} | {v.help} |"
            for v in ENV_VARS
            if v.part == part
        ]
    return out


def reference() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated by `switchboard config-reference` from the code; do not edit by hand.",
        "",
        "## Environment (`.env.local`)",
        "",
        "Read once, when the worker starts; a bad value stops it with every problem listed.",
    ]
    out += _environment()
    out += ["", "### Secrets the configuration files name", ""]
    out += ["| variable | meaning |", "|---|---|"]
    out += [f"| `{name}` | {meaning} |" for name, meaning in FILE_SECRETS]
    out += ["", "## routes.toml: `[[route]]`", ""]
    out += _table(Route, ROUTE_FIELDS)
    out += ["", "## routes.toml: `[route.match]`", ""]
    out += _table(Match, MATCH_FIELDS)
    out += ["", "## routes.toml: `[route.turn]`", ""]
    out += _table(TurnTaking, TURN_FIELDS)
    out += ["", "## routes.toml: `[route.menu]`", ""]
    out += _table(Menu, MENU_FIELDS)
    out += ["", "## policy.toml: `[dial_policy.NAME]`", ""]
    skipped = ("name", "unsafe_allow_restricted", "own_numbers")  # not read from the table
    out += _table(DialPolicy, POLICY_FIELDS, skip=skipped)
    out += [
        "",
        "Emergency, premium-rate, shared-cost and other restricted numbers, short codes and",
        "anything unparseable are refused whatever a policy says, unless the top-level",
        "`UNSAFE_ALLOW_RESTRICTED_NUMBERS = true` is set (every such dial is then logged).",
        "That holds for every form a destination takes: a SIP or tel URI's user part is",
        "percent-decoded, stripped of visual separators and, when it is digits, read every",
        "way a carrier could (with and without `+`, after 00/011). The line's own numbers",
        "(`SWITCHBOARD_TELEPHONY`'s trunks, the number a call came in on) are never dialled:",
        "a loop.",
        "",
        "## policy.toml: `[destinations.NAME]`",
        "",
    ]
    out += _table(Destination, DESTINATION_FIELDS, skip=("name",))
    return "\n".join(out) + "\n"
