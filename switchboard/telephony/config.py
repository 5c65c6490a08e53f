"""telephony.toml: parse and validate the declarative SIP setup.

Everything here is pure (no network, no livekit imports): the file becomes frozen
dataclasses, the server's objects are converted to the same dataclasses elsewhere
(`switchboard.telephony.provision`), so deciding what to create/update/delete is a
plain diff (`switchboard.telephony.plan`) that unit tests can cover exhaustively.
The file is read with the shared reader (`switchboard.config.reader`): every problem
is reported at once, in one ConfigError.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard.config.reader import Problems, Table, parse_toml
from switchboard.numbers import InvalidNumberError, normalize_number

Pairs = tuple[tuple[str, str], ...]  # a sorted, immutable str->str map


@dataclass(frozen=True)
class InboundTrunk:
    name: str
    numbers: tuple[str, ...]
    allowed_addresses: tuple[str, ...] = ()
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)
    headers_to_attributes: Pairs = ()


@dataclass(frozen=True)
class OutboundTrunk:
    name: str
    address: str
    numbers: tuple[str, ...]
    transport: str = "auto"
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class DispatchRule:
    name: str
    trunks: tuple[str, ...]  # inbound trunk names from the file; IDs in ServerState
    agents: tuple[str, ...]
    room_prefix: str = ""
    hide_phone_number: bool = False
    attributes: Pairs = ()
    rule_type: str = "individual"  # only settable from the server side, to spot drift


Managed = InboundTrunk | OutboundTrunk | DispatchRule


@dataclass(frozen=True)
class TelephonyConfig:
    source: str
    inbound_trunks: tuple[InboundTrunk, ...] = ()
    outbound_trunks: tuple[OutboundTrunk, ...] = ()
    dispatch_rules: tuple[DispatchRule, ...] = ()
    # Passwords whose variable was not set, when read for a dry run (which shows the plan
    # without them), as (kind, trunk name, variable); a real run refuses to start without.
    unset_secrets: tuple[tuple[str, str, str], ...] = ()


SUBJECT = "the telephony setup"
KINDS = ("inbound_trunk", "outbound_trunk", "dispatch_rule")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # RFC 3261 token: a header name
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
TRANSPORTS = ("auto", "udp", "tcp", "tls")
_PASSWORD_FIX = 'never put a password in the file: set auth_password_env = "SOME_ENV_VAR"'
_INBOUND_KEYS = (
    "name",
    "numbers",
    "allowed_addresses",
    "auth_username",
    "auth_password_env",
    "headers_to_attributes",
)
_OUTBOUND_KEYS = ("name", "address", "numbers", "transport", "auth_username", "auth_password_env")
_RULE_KEYS = ("name", "trunks", "agent_name", "room_prefix", "hide_phone_number", "attributes")


def expand_env(value: str, env: Mapping[str, str]) -> str:
    """Expand ${VAR} and ${VAR:-default} (default also used when VAR is empty, as in sh).

    Raises LookupError naming the variable when it is unset and has no default."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if env.get(name):
            return env[name]
        if default is None:
            raise LookupError(name)
        return default

    return _ENV_REF.sub(sub, value)


class _Table(Table):
    """One [[kind]] table: the shared reader, with ${VAR} expanded in every string."""

    def __init__(
        self,
        problems: Problems,
        where: str,
        data: dict[str, Any],
        env: Mapping[str, str],
        unset_secrets: list[tuple[str, str, str]] | None = None,
        kind: str = "",
    ) -> None:
        super().__init__(problems, where, data)
        self.env = env
        self.kind = kind
        # None: every password must be set; a list: collect the unset ones (a dry run).
        self.unset_secrets = unset_secrets

    def expand(self, key: str, value: str) -> str | None:
        try:
            return expand_env(value, self.env)
        except LookupError as e:
            var = e.args[0]
            fix = f"export {var}=..., or give a default: ${{{var}:-value}}"
            self.fail(key, f"environment variable {var} is not set", fix)
            return None

    def texts(self, key: str) -> tuple[str, ...]:
        # Order carries no meaning to the server: compare as sets.
        return tuple(sorted(self.strings(key) or ()))

    def password(self, username: str) -> str:
        """Secrets come from the environment variable the file names, never the file."""
        var = self.text("auth_password_env", "", empty=True)
        if bool(var) != bool(username):
            self.fail(
                "auth_password_env" if username else "auth_username",
                "auth_username and auth_password_env go together",
                "set both or neither",
            )
        if var and not self.env.get(var) and self.unset_secrets is not None:
            self.unset_secrets.append((self.kind, str(self.data.get("name", "")), var))
        elif var and not self.env.get(var):
            self.fail(
                "auth_password_env",
                f"environment variable {var} is not set",
                f"export {var}=<the SIP password> before provisioning",
            )
        return self.env.get(var, "") if var else ""

    def numbers(self, key: str, *, required: bool) -> tuple[str, ...]:
        numbers = self.texts(key)
        if required and not numbers:
            self.fail(key, "at least one number is required", f'write {key} = ["+15105550100"]')
        for n in numbers:
            if not _E164.match(n):
                self.fail(
                    key,
                    f"{n!r} is not in E.164 form",
                    "write it as + country code + number, digits only, e.g. +15105550100",
                )
        return numbers


def _tables(
    problems: Problems,
    doc: dict[str, Any],
    kind: str,
    env: Mapping[str, str],
    unset_secrets: list[tuple[str, str, str]] | None = None,
) -> list[_Table]:
    items = doc.get(kind, [])
    if not isinstance(items, list):
        fix = f"write [[{kind}]] (double brackets)"
        problems.add("the file", kind, "must be an array of tables", fix)
        return []
    tables = []
    for i, data in enumerate(items):
        where = f"[[{kind}]] #{i + 1}"
        if not isinstance(data, dict):
            fix = f"write [[{kind}]] followed by key = value lines"
            problems.add(where, None, "is not a table", fix)
            continue
        t = _Table(problems, where, data, env, unset_secrets, kind)
        name = t.required("name", empty=True)
        if name == "":
            t.fail("name", "is empty", "give every object a unique, non-empty name")
        if name:
            t.where += f" ({name!r})"
        tables.append(t)
    return tables


def _address_ok(value: str) -> bool:
    """host:port or [v6]:port; a port is required so calls never go to a guessed one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.match(host))


def _network_ok(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return bool(_HOST.match(value))  # the server also accepts hostnames


def _pairs(t: _Table, key: str) -> Pairs:
    return tuple(sorted(t.pairs(key).items()))


def _inbound(t: _Table) -> InboundTrunk:
    t.keys(_INBOUND_KEYS, {"auth_password": _PASSWORD_FIX})
    addresses = t.texts("allowed_addresses")
    for a in addresses:
        if not _network_ok(a):
            t.fail(
                "allowed_addresses",
                f"{a!r} is not an IP, CIDR or hostname",
                'write e.g. "203.0.113.10" or "10.0.0.0/8"',
            )
    headers = _pairs(t, "headers_to_attributes")
    for header, attribute in headers:
        if not _TOKEN.match(header) or not attribute:
            t.fail(
                "headers_to_attributes",
                f"{header!r} = {attribute!r} is not a valid mapping",
                'map a SIP header to an attribute: { "X-Customer-Id" = "customer_id" }',
            )
    username = t.text("auth_username", "", empty=True) or ""
    numbers = t.numbers("numbers", required=False)
    if not (numbers or addresses or username):
        t.fail(
            "allowed_addresses",
            "the trunk would accept calls from anyone",
            "set allowed_addresses, numbers, or auth_username + auth_password_env",
        )
    name = t.text("name") or ""
    return InboundTrunk(name, numbers, addresses, username, t.password(username), headers)


def _outbound(t: _Table) -> OutboundTrunk:
    t.keys(_OUTBOUND_KEYS, {"auth_password": _PASSWORD_FIX})
    address = t.required("address") or ""
    if address and not _address_ok(address):
        t.fail("address", f"{address!r} is not host:port", 'write e.g. "sip.example.com:5060"')
    transport = t.text("transport", "auto") or "auto"
    if transport not in TRANSPORTS:
        t.fail("transport", f"unknown transport {transport!r}", f"use one of {list(TRANSPORTS)}")
    username = t.text("auth_username", "", empty=True) or ""
    return OutboundTrunk(
        t.text("name") or "",
        address,
        t.numbers("numbers", required=True),
        transport,
        username,
        t.password(username),
    )


def _rule(t: _Table, trunk_names: set[str]) -> DispatchRule:
    t.keys(_RULE_KEYS)
    trunks = t.texts("trunks")
    if not trunks:
        t.fail(
            "trunks",
            "no trunks listed (an empty list would catch calls on every trunk)",
            'name the inbound trunks of this file: trunks = ["my-inbound"]',
        )
    for name in trunks:
        if name not in trunk_names:
            t.fail(
                "trunks",
                f"no [[inbound_trunk]] named {name!r} in this file",
                f"use one of {sorted(trunk_names)} or add that trunk",
            )
    agent = t.required("agent_name", empty=True)
    if agent == "":
        t.fail("agent_name", "is empty", "name the agent the worker registers with")
    return DispatchRule(
        t.text("name") or "",
        trunks,
        (agent or "",),
        t.text("room_prefix", "", empty=True) or "",
        t.flag("hide_phone_number"),
        _pairs(t, "attributes"),
    )


def parse_config(
    text: str, *, source: str, env: Mapping[str, str], secrets: bool = True
) -> TelephonyConfig:
    """Read and check a telephony file, ``${VAR}`` expanded from ``env``; one ConfigError
    lists every problem. ``secrets=False`` (a dry run) lets password variables be unset:
    they are listed in ``unset_secrets`` instead."""
    problems = Problems(source)
    unset: list[tuple[str, str, str]] | None = None if secrets else []
    doc = parse_toml(problems, text, SUBJECT)
    for key in doc:
        if key not in KINDS:
            fix = f"use only [[{']], [['.join(KINDS)}]] tables"
            problems.add("the file", None, f"unknown top-level key {key!r}", fix)
    inbound = tuple(_inbound(t) for t in _tables(problems, doc, "inbound_trunk", env, unset))
    outbound = tuple(_outbound(t) for t in _tables(problems, doc, "outbound_trunk", env, unset))
    names = {i.name for i in inbound}
    rules = tuple(_rule(t, names) for t in _tables(problems, doc, "dispatch_rule", env))
    named: tuple[Sequence[Managed], ...] = (inbound, outbound, rules)
    for kind, objs in zip(KINDS, named, strict=True):
        used = [o.name for o in objs]
        if dupes := sorted({n for n in used if n and used.count(n) > 1}):
            fix = "names identify server objects; make them unique"
            problems.add(f"[[{kind}]]", "name", f"names {dupes} are used twice", fix)
    problems.check(SUBJECT)
    return TelephonyConfig(source, inbound, outbound, rules, tuple(unset or ()))


def line_numbers(path: str | Path, env: Mapping[str, str]) -> frozenset[str]:
    """The line's own numbers (its inbound trunks' ``numbers``, in E.164), never to be
    dialled: a call to one rings back into this agent. (An outbound trunk's numbers are
    the caller IDs it presents, which may be anyone's.) Read leniently, without the passwords
    provisioning needs: a missing file, bad TOML or an unset ${VAR} gives fewer numbers,
    and `switchboard provision` reports those problems."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return frozenset()
    found: set[str] = set()
    tables = doc.get("inbound_trunk", [])
    for table in tables if isinstance(tables, list) else ():
        numbers = table.get("numbers", []) if isinstance(table, dict) else []
        for raw in numbers if isinstance(numbers, list) else ():
            try:
                found.add(normalize_number(expand_env(str(raw), env)))
            except (LookupError, InvalidNumberError):
                continue
    return frozenset(found)


def load_config(
    path: str | Path, env: Mapping[str, str], *, secrets: bool = True
) -> TelephonyConfig:
    """Read a telephony file; FileNotFoundError, or ConfigError with every problem."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_config(text, source=str(path), env=env, secrets=secrets)
