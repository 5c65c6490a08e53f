"""telephony.toml: parse and validate the declarative SIP setup.

Everything here is pure (no network, no livekit imports): the file becomes frozen
dataclasses, the server's objects are converted to the same dataclasses elsewhere
(`switchboard.telephony.provision`), so deciding what to create/update/delete is a
plain diff (`switchboard.telephony.plan`) that unit tests can cover exhaustively.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

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


class TelephonyConfigError(ValueError):
    """A problem in telephony.toml: says where (file, table, field) and how to fix it."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # RFC 3261 token: a header name
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
TRANSPORTS = ("auto", "udp", "tcp", "tls")
_PASSWORD_FIX = 'never put a password in the file: set auth_password_env = "SOME_ENV_VAR"'


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


class _Table:
    """One [[kind]] table of the file; every read reports errors with full context."""

    def __init__(self, source: str, kind: str, index: int, data: Any, env: Mapping[str, str]):
        self.source, self.env, self.where = source, env, f"[[{kind}]] #{index + 1}"
        if not isinstance(data, dict):
            self.fail(None, "is not a table", f"write [[{kind}]] followed by key = value lines")
        self.data: dict[str, Any] = data
        if not (name := self.text("name")):
            self.fail("name", "is empty", "give every object a unique, non-empty name")
        self.where += f" ({name!r})"

    def fail(self, key: str | None, problem: str, fix: str) -> NoReturn:
        at = f", field '{key}'" if key else ""
        raise TelephonyConfigError(f"{self.source}: {self.where}{at}: {problem}\n  fix: {fix}")

    def check_keys(self, allowed: set[str]) -> None:
        for key in sorted(set(self.data) - allowed):
            fix = f"remove it; known keys: {sorted(allowed)}"
            if key == "auth_password":
                fix = _PASSWORD_FIX
            self.fail(key, "unknown key", fix)

    def _expand(self, key: str, value: str) -> str:
        try:
            return expand_env(value, self.env)
        except LookupError as e:
            var = e.args[0]
            self.fail(
                key,
                f"environment variable {var} is not set",
                f"export {var}=..., or give a default: ${{{var}:-value}}",
            )

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "missing required field", f'add {key} = "..."')
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {type(value).__name__}", f'write {key} = "..."')
        return self._expand(key, value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "expected a list of strings", f'write {key} = ["...", "..."]')
        items = [self._expand(key, v) for v in value]
        if dupes := sorted({v for v in items if items.count(v) > 1}):
            self.fail(key, f"duplicate entries {dupes}", "list each value once")
        return tuple(sorted(items))  # order carries no meaning to the server: compare as sets

    def pairs(self, key: str) -> Pairs:
        value = self.data.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.fail(key, "expected a table of strings", f'write {key} = {{ "a" = "b" }}')
        return tuple(sorted((k, self._expand(key, v)) for k, v in value.items()))

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {value!r}", f"write {key} = true")
        return value

    def password(self, username: str) -> str:
        """Secrets come from the environment variable the file names, never the file."""
        var = self.text("auth_password_env", "")
        if bool(var) != bool(username):
            self.fail(
                "auth_password_env" if username else "auth_username",
                "auth_username and auth_password_env go together",
                "set both or neither",
            )
        if var and not self.env.get(var):
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


def _inbound(t: _Table) -> InboundTrunk:
    t.check_keys(
        {
            "name",
            "numbers",
            "allowed_addresses",
            "auth_username",
            "auth_password_env",
            "headers_to_attributes",
        }
    )
    addresses = t.texts("allowed_addresses")
    for a in addresses:
        if not _network_ok(a):
            t.fail(
                "allowed_addresses",
                f"{a!r} is not an IP, CIDR or hostname",
                'write e.g. "203.0.113.10" or "10.0.0.0/8"',
            )
    headers = t.pairs("headers_to_attributes")
    for header, attribute in headers:
        if not _TOKEN.match(header) or not attribute:
            t.fail(
                "headers_to_attributes",
                f"{header!r} = {attribute!r} is not a valid mapping",
                'map a SIP header to an attribute: { "X-Customer-Id" = "customer_id" }',
            )
    username, numbers = t.text("auth_username", ""), t.numbers("numbers", required=False)
    if not (numbers or addresses or username):
        t.fail(
            "allowed_addresses",
            "the trunk would accept calls from anyone",
            "set allowed_addresses, numbers, or auth_username + auth_password_env",
        )
    return InboundTrunk(t.text("name"), numbers, addresses, username, t.password(username), headers)


def _outbound(t: _Table) -> OutboundTrunk:
    t.check_keys({"name", "address", "numbers", "transport", "auth_username", "auth_password_env"})
    address = t.text("address")
    if not _address_ok(address):
        t.fail("address", f"{address!r} is not host:port", 'write e.g. "sip.example.com:5060"')
    transport = t.text("transport", "auto")
    if transport not in TRANSPORTS:
        t.fail("transport", f"unknown transport {transport!r}", f"use one of {list(TRANSPORTS)}")
    username = t.text("auth_username", "")
    return OutboundTrunk(
        t.text("name"),
        address,
        t.numbers("numbers", required=True),
        transport,
        username,
        t.password(username),
    )


def _rule(t: _Table, trunk_names: set[str]) -> DispatchRule:
    t.check_keys({"name", "trunks", "agent_name", "room_prefix", "hide_phone_number", "attributes"})
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
    agent = t.text("agent_name")
    if not agent:
        t.fail("agent_name", "is empty", "name the agent the worker registers with")
    return DispatchRule(
        t.text("name"),
        trunks,
        (agent,),
        t.text("room_prefix", ""),
        t.flag("hide_phone_number"),
        t.pairs("attributes"),
    )


def parse_config(text: str, *, source: str, env: Mapping[str, str]) -> TelephonyConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TelephonyConfigError(f"{source}: not valid TOML: {e}") from e
    kinds = ("inbound_trunk", "outbound_trunk", "dispatch_rule")
    for key in doc:
        if key not in kinds:
            raise TelephonyConfigError(
                f"{source}: unknown top-level key {key!r}\n"
                f"  fix: use only [[{']], [['.join(kinds)}]] tables"
            )

    def tables(kind: str) -> list[_Table]:
        items = doc.get(kind, [])
        if not isinstance(items, list):
            raise TelephonyConfigError(
                f"{source}: '{kind}' must be an array of tables\n"
                f"  fix: write [[{kind}]] (double brackets)"
            )
        return [_Table(source, kind, i, item, env) for i, item in enumerate(items)]

    inbound = tuple(_inbound(t) for t in tables("inbound_trunk"))
    outbound = tuple(_outbound(t) for t in tables("outbound_trunk"))
    rules = tuple(_rule(t, {i.name for i in inbound}) for t in tables("dispatch_rule"))
    named: tuple[Sequence[Managed], ...] = (inbound, outbound, rules)
    for kind, objs in zip(kinds, named, strict=True):
        names = [o.name for o in objs]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise TelephonyConfigError(
                f"{source}: [[{kind}]] names {dupes} are used twice\n"
                "  fix: names identify server objects; make them unique"
            )
    return TelephonyConfig(source, inbound, outbound, rules)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> TelephonyConfig:
    return parse_config(
        Path(path).read_text(encoding="utf-8"),
        source=str(path),
        env=os.environ if env is None else env,
    )
