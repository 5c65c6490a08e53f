"""Read policy.toml into a PolicyConfig, reporting every problem in one error.

Each problem names the file, the table and the field and says how to fix it: the reader
is editing a TOML file, and a dial policy that half-loads is worse than one that fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import phonenumbers as pn

from switchboard.config.errors import Problem
from switchboard.config.reader import Problems, Table, parse_toml
from switchboard.dialing.policy import (
    RESTRICTED,
    Destination,
    DialPolicy,
    Reason,
    destination_problem,
    loop_number,
)
from switchboard.routing import Route, RouteTable

OVERRIDE = "UNSAFE_ALLOW_RESTRICTED_NUMBERS"
TOP_KEYS = ("dial_policy", "destinations", OVERRIDE)
# One key per dataclass field; the name comes from the table, the override from the top.
POLICY_KINDS: Mapping[str, type] = MappingProxyType(
    {
        "allowed_regions": list,
        "allowed_patterns": list,
        "allow_named_only": bool,
        "max_dials_per_call": int,
        "max_dials_per_caller_per_hour": int,
        "allow_caller_dictated": bool,
    }
)
DESTINATION_KEYS = tuple(f.name for f in fields(Destination))[1:]
# Sane bounds: a typo such as 999999999999 must not silently lift the toll-fraud limits.
LIMITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"max_dials_per_call": (0, 20), "max_dials_per_caller_per_hour": (0, 1000)}
)
DESCRIPTION_MAX = 500  # characters: it is read to the model in every call's tool list
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(DialPolicy)}

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")  # short ones too, to name what they are
PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")
# No ;parameters or ?headers: they are how a URI smuggles routing past a trunk.
SIP_URI = re.compile(r"sips?:[A-Za-z0-9_.!~*'()%+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?", re.ASCII)
DTMF = re.compile(r"[0-9*#wW]{1,32}")  # w: half-second pause, as LiveKit's SIP dial takes
_OVERRIDE_FIX = f"remove it, or, if you mean it, put {OVERRIDE} = true at the top of the file"
_OVERRIDE_PLACE = f"write {OVERRIDE} = true at the top of the file, before any table"
_KIND = {
    Reason.EMERGENCY: "an emergency number",
    Reason.PREMIUM: "a premium-rate number",
    Reason.SHARED_COST: "a shared-cost number",
    Reason.RESTRICTED_TYPE: "a personal, pager, UAN or voicemail number",
    Reason.SHORT_CODE: "a short code",
}


SUBJECT = "the dial policy"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    policies: Mapping[str, DialPolicy]
    destinations: Mapping[str, Destination]
    unsafe_allow_restricted: bool = False
    source: str = "policy.toml"


def load_policy(path: str | Path, regions: Sequence[str] = ()) -> PolicyConfig:
    """Read and check a policy file. Raises FileNotFoundError, or ConfigError."""
    return parse_policy(Path(path).read_text(encoding="utf-8"), source=str(path), regions=regions)


def parse_policy(
    text: str, *, source: str = "policy.toml", regions: Sequence[str] = ()
) -> PolicyConfig:
    """Pure core of load_policy: the file's text and its name for error messages.

    A SIP URI's bare digits are also read as national numbers of ``regions`` (the
    default region) and of every policy's allowed regions."""
    problems = Problems(source)
    top = Table(problems, "the top level", parse_toml(problems, text, SUBJECT))
    top.keys(TOP_KEYS, _override_fixes(top))
    unsafe = top.flag(OVERRIDE)
    policies = {
        name: _policy(Table(problems, f"[dial_policy.{name}]", data), name, unsafe)
        for name, data in _tables(top, "dial_policy").items()
    }
    national = tuple(
        dict.fromkeys((*regions, *(r for p in policies.values() for r in p.allowed_regions)))
    )
    destinations = {
        name: _destination(Table(problems, f"[destinations.{name}]", data), name, unsafe, national)
        for name, data in _tables(top, "destinations").items()
    }
    problems.check(SUBJECT)
    return PolicyConfig(MappingProxyType(policies), MappingProxyType(destinations), unsafe, source)


def _tables(top: Table, key: str) -> dict[str, dict[str, Any]]:
    tables = top.data.get(key, {})
    if not isinstance(tables, dict):
        top.fail(key, "is not a table", f"write [{key}.NAME] tables")
        return {}
    good: dict[str, dict[str, Any]] = {}
    for name, data in tables.items():
        if not NAME.fullmatch(name):
            top.fail(f"{key}.{name}", "has unsupported characters", "use letters, digits, . _ -")
        elif not isinstance(data, dict):
            top.fail(f"{key}.{name}", "is not a table", f"write [{key}.{name}] and its fields")
        else:
            good[name] = data
    return good


def _policy(t: Table, name: str, unsafe: bool) -> DialPolicy:
    t.keys(POLICY_KINDS, _override_fixes(t))
    values = {key: _read(t, key, kind) for key, kind in POLICY_KINDS.items()}
    regions: tuple[str, ...] = values["allowed_regions"]
    for region in regions:
        if region not in pn.SUPPORTED_REGIONS:
            hint = {"UK": "GB"}.get(region.upper(), region.upper())
            hint = hint if hint in pn.SUPPORTED_REGIONS else "US"
            t.fail("allowed_regions", f"{region!r} is not a region code", f'write "{hint}"')
    for prefix in values["allowed_patterns"]:
        _check_prefix(t, prefix, regions)
    if values["allow_caller_dictated"] and not values["allow_named_only"] and not regions:
        fix = 'add allowed_regions = ["US"] (your callers\' countries), or dictation = false'
        t.fail("allowed_regions", "is empty, so no dictated number could be dialled", fix)
    return DialPolicy(name, **values, unsafe_allow_restricted=unsafe)


def _read(t: Table, key: str, kind: type) -> Any:
    default = _DEFAULTS[key]
    if kind is bool:
        return t.flag(key, default)
    if kind is int:
        return t.integer(key, default, *LIMITS[key])
    values = t.strings(key)
    return default if values is None else values


def _override_fixes(t: Table) -> dict[str, str]:
    # The override belongs at the top of the file, never in a table.
    return {k: _OVERRIDE_PLACE for k in t.data if k.upper() == OVERRIDE}


def _check_prefix(t: Table, prefix: str, regions: Sequence[str]) -> None:
    if not PREFIX.fullmatch(prefix):
        t.fail("allowed_patterns", f"{prefix!r} is not an E.164 prefix", 'write e.g. "+1510555"')
        return
    codes = [int(prefix[1 : n + 1]) for n in (1, 2, 3) if len(prefix) > n]
    code = next((c for c in codes if c in pn.COUNTRY_CODE_TO_REGION_CODE), None)
    if code is None:
        t.fail("allowed_patterns", f"{prefix!r} has no whole country code", 'e.g. "+44"')
    elif regions and not set(pn.region_codes_for_country_code(code)) & set(regions):
        fix = f"add its region to allowed_regions, or remove {prefix!r}"
        t.fail(
            "allowed_patterns", f"{prefix!r} can never match: +{code} is in no allowed region", fix
        )


def _destination(t: Table, name: str, unsafe: bool, regions: Sequence[str]) -> Destination:
    t.keys(DESTINATION_KEYS, _override_fixes(t))
    number, uri = t.data.get("number"), t.data.get("sip_uri")
    if (number is None) == (uri is None):
        fix = 'give exactly one: number = "+15105550100" or sip_uri = "sip:ops@pbx.example.com"'
        t.fail("number", "needs exactly one of number and sip_uri", fix)
    if number is not None and not (isinstance(number, str) and E164.fullmatch(number)):
        t.fail("number", f"{number!r} is not E.164", 'write "+" and digits, e.g. "+15105550100"')
        number = None
    if uri is not None and not (isinstance(uri, str) and SIP_URI.fullmatch(uri)):
        t.fail("sip_uri", f"{uri!r} is not a plain SIP URI", 'write "sip:user@host" (no ;params)')
        uri = None
    dtmf = t.data.get("dtmf")
    if dtmf is not None and not (isinstance(dtmf, str) and DTMF.fullmatch(dtmf)):
        t.fail("dtmf", f"{dtmf!r} is not DTMF", 'use 0-9 * # and w (pause), e.g. "ww123#"')
        dtmf = None
    if "description" not in t.data:
        fix = 'write description = "the sales team": the agent is told it, to choose'
        t.fail("description", "is missing", fix)
    description = t.text("description") or ""
    if len(description) > DESCRIPTION_MAX:
        long = f"is {len(description)} characters long; at most {DESCRIPTION_MAX}"
        t.fail("description", long, "say in a few words who it is, e.g. the sales team")
    found = Destination(name, description, number, uri, dtmf, t.flag("warm"))
    # A SIP URI's user part reaches a number through the trunk, whatever its spelling
    # (sip:%2B1-900...@, sip:00449...@, sip:911@): every reading of it is checked too.
    reading = destination_problem(found, regions)
    problem, key = reading.problem, "number" if number else "sip_uri"
    shown = f"{found.target!r}" + (f" (read as {reading.e164})" if uri and reading.e164 else "")
    if problem is not None and problem not in RESTRICTED:
        what = "not a valid phone number" if problem is Reason.INVALID else "not plain ASCII digits"
        t.fail(key, f"{shown} is {what}", "check the digits")
    elif problem is not None and not unsafe:
        t.fail(key, f"{shown} is {_KIND[problem]}, which is never dialled", _OVERRIDE_FIX)
    return found


DEFAULT_POLICY = "default"


def loop_problems(policy: PolicyConfig, own_numbers: frozenset[str]) -> list[Problem]:
    """Destinations that dial the line's own numbers (telephony.toml's): the call would
    ring back into this agent, which could dial again (pure; for start-up and check)."""
    problems = Problems(policy.source)
    regions = tuple(r for p in policy.policies.values() for r in p.allowed_regions)
    for name, destination in policy.destinations.items():
        if loop := loop_number(destination, own_numbers, regions):
            key = "number" if destination.number else "sip_uri"
            problem = f"{destination.target!r} is {loop}, this line's own number (a loop)"
            problems.add(f"[destinations.{name}]", key, problem, "remove it, or dial another line")
    return problems.items


def with_own_numbers(policy: PolicyConfig, own_numbers: frozenset[str]) -> PolicyConfig:
    """Every dial policy refusing the line's own numbers at dial time too."""
    policies = {n: p.with_own_numbers(own_numbers) for n, p in policy.policies.items()}
    return replace(policy, policies=MappingProxyType(policies))


def route_policy(route: Route, policy: PolicyConfig) -> DialPolicy:
    """The dial policy a route's transfers obey (the agent's warm ones, the menu's): the
    route's, or, for a route that does not dial out and names none that exists, the
    defaults (one dial per call)."""
    name = route.dial_policy or DEFAULT_POLICY
    return policy.policies.get(name) or DialPolicy(name)


def policy_problems(routes: RouteTable, policy: PolicyConfig) -> list[Problem]:
    """Names a route uses that the policy file does not define (pure; for start-up and
    `switchboard check`)."""
    problems = Problems(routes.source)
    for route in routes.routes:
        where = f'route "{route.name}"'
        name = route.dial_policy or DEFAULT_POLICY
        # Named, it must exist whatever the tools (a warm transfer dials under it too).
        if ("dial_out" in route.tools or route.dial_policy) and name not in policy.policies:
            known = ", ".join(sorted(policy.policies)) or "none"
            problem = f"no [dial_policy.{name}] in {policy.source}"
            problems.add(where, "dial_policy", problem, f"add it, or name one of: {known}")
        for dest in route.transfer_destinations:
            if dest not in policy.destinations:
                problem = f"no [destinations.{dest}] in {policy.source}"
                problems.add(where, "transfer_destinations", problem, f"add it or remove {dest!r}")
        for key, dest in route.menu.keys if route.menu else ():
            if dest not in policy.destinations:
                problem = f"no [destinations.{dest}] in {policy.source}"
                problems.add(where, f"menu.keys.{key}", problem, "add it, or name another one")
    return problems.items
