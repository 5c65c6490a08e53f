"""Make a LiveKit server's SIP setup match telephony.toml.

The thin async shell around `switchboard.telephony`: fetch what the server has, convert
it to the same dataclasses, plan (pure), print the plan, then apply it through
`livekit.api.LiveKitAPI().sip`. Updates go through Update*(replace=...), which replaces
the whole object, so the replacement starts from the server's current object and only
overwrites the fields the file manages: settings made elsewhere (krisp, media, pins,
metadata) survive a provision.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Iterable, Mapping, MutableSequence
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import aiohttp
from livekit.api import LiveKitAPI, ServerError
from livekit.api.sip_service import SipService
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    ListSIPOutboundTrunkRequest,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPOutboundTrunkInfo,
    SIPTransport,
)

from switchboard.safe_text import shown_lines
from switchboard.telephony.config import (
    DispatchRule,
    InboundTrunk,
    OutboundTrunk,
    TelephonyConfig,
)
from switchboard.telephony.plan import (
    Action,
    Change,
    Kind,
    ServerState,
    plan,
)

T = TypeVar("T")
_Proto = SIPInboundTrunkInfo | SIPOutboundTrunkInfo | SIPDispatchRuleInfo


class ProvisionError(RuntimeError):
    """An API call failed; the message names the object and what the server said."""


@dataclass(frozen=True)
class ProvisionResult:
    changes: tuple[Change, ...]
    inbound_trunk_ids: Mapping[str, str]  # file name -> server ID (unknown yet in a dry run)
    outbound_trunk_ids: Mapping[str, str]
    dispatch_rule_ids: Mapping[str, str]
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "inbound_trunks": dict(self.inbound_trunk_ids),
            "outbound_trunks": dict(self.outbound_trunk_ids),
            "dispatch_rules": dict(self.dispatch_rule_ids),
            "changes": [
                {"kind": c.kind.value, "name": c.name, "action": c.action.value, "id": c.server_id}
                for c in self.changes
            ],
        }


# --- protobuf <-> dataclasses (pure) ---------------------------------------------------


_TRANSPORTS = {
    "auto": SIPTransport.SIP_TRANSPORT_AUTO,
    "udp": SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": SIPTransport.SIP_TRANSPORT_TCP,
    "tls": SIPTransport.SIP_TRANSPORT_TLS,
}


def _transport_name(value: int) -> str:
    return next((k for k, v in _TRANSPORTS.items() if v == value), f"unknown({value})")


def inbound_from_proto(p: SIPInboundTrunkInfo) -> InboundTrunk:
    return InboundTrunk(
        p.name,
        tuple(sorted(p.numbers)),
        tuple(sorted(p.allowed_addresses)),
        p.auth_username,
        p.auth_password,
        tuple(sorted(p.headers_to_attributes.items())),
    )


def outbound_from_proto(p: SIPOutboundTrunkInfo) -> OutboundTrunk:
    return OutboundTrunk(
        p.name,
        p.address,
        tuple(sorted(p.numbers)),
        _transport_name(p.transport),
        p.auth_username,
        p.auth_password,
    )


def rule_from_proto(p: SIPDispatchRuleInfo) -> DispatchRule:
    """`trunks` holds the server's trunk IDs; plan() names the ones the file manages."""
    rule_type = (p.rule.WhichOneof("rule") or "none").removeprefix("dispatch_rule_")
    return DispatchRule(
        p.name,
        tuple(sorted(p.trunk_ids)),
        tuple(sorted(a.agent_name for a in p.room_config.agents)),
        p.rule.dispatch_rule_individual.room_prefix if rule_type == "individual" else "",
        p.hide_phone_number,
        tuple(sorted(p.attributes.items())),
        rule_type,
    )


def _set(container: MutableSequence[T], values: Iterable[T]) -> None:
    del container[:]
    container.extend(values)


def inbound_to_proto(t: InboundTrunk, base: SIPInboundTrunkInfo | None) -> SIPInboundTrunkInfo:
    p = SIPInboundTrunkInfo()
    if base is not None:
        p.CopyFrom(base)
    p.name, p.auth_username, p.auth_password = t.name, t.auth_username, t.auth_password
    _set(p.numbers, t.numbers)
    _set(p.allowed_addresses, t.allowed_addresses)
    p.headers_to_attributes.clear()
    p.headers_to_attributes.update(dict(t.headers_to_attributes))
    return p


def outbound_to_proto(t: OutboundTrunk, base: SIPOutboundTrunkInfo | None) -> SIPOutboundTrunkInfo:
    p = SIPOutboundTrunkInfo()
    if base is not None:
        p.CopyFrom(base)
    p.name, p.address, p.auth_username, p.auth_password = (
        t.name,
        t.address,
        t.auth_username,
        t.auth_password,
    )
    p.transport = _TRANSPORTS[t.transport]
    _set(p.numbers, t.numbers)
    return p


def rule_to_proto(
    r: DispatchRule, base: SIPDispatchRuleInfo | None, trunk_ids: Mapping[str, str]
) -> SIPDispatchRuleInfo:
    p = SIPDispatchRuleInfo()
    if base is not None:
        p.CopyFrom(base)
    p.name, p.hide_phone_number = r.name, r.hide_phone_number
    p.rule.dispatch_rule_individual.SetInParent()  # selects the oneof; a pin on it survives
    p.rule.dispatch_rule_individual.room_prefix = r.room_prefix
    _set(p.trunk_ids, [trunk_ids[name] for name in r.trunks])
    p.attributes.clear()
    p.attributes.update(dict(r.attributes))
    # Keep an existing dispatch entry (its metadata/attributes) when the agent stays.
    old = {a.agent_name: a for a in p.room_config.agents}
    _set(p.room_config.agents, [old.get(n) or RoomAgentDispatch(agent_name=n) for n in r.agents])
    return p


# --- talking to the server ------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    inbound: dict[str, SIPInboundTrunkInfo]
    outbound: dict[str, SIPOutboundTrunkInfo]
    rules: dict[str, SIPDispatchRuleInfo]

    def state(self) -> ServerState:
        return ServerState(
            {i: inbound_from_proto(t) for i, t in self.inbound.items()},
            {i: outbound_from_proto(t) for i, t in self.outbound.items()},
            {i: rule_from_proto(r) for i, r in self.rules.items()},
        )


def _explain(e: BaseException) -> str:
    if isinstance(e, ServerError):
        if e.status == 401:
            return "HTTP 401: the server rejected LIVEKIT_API_KEY / LIVEKIT_API_SECRET"
        return f"the server said {e.code}: {e.message or '(no message)'} (HTTP {e.status})"
    return f"cannot reach the LiveKit server: {e or type(e).__name__}"


async def _call(what: str, awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except (ServerError, aiohttp.ClientError, TimeoutError) as e:
        raise ProvisionError(f"{what} failed: {_explain(e)}") from e


async def _fetch(sip: SipService) -> _Raw:
    # One unpaginated List per kind: livekit-server collects every page itself.
    ins = await _call(
        "listing inbound trunks", sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
    )
    outs = await _call(
        "listing outbound trunks", sip.list_outbound_trunk(ListSIPOutboundTrunkRequest())
    )
    rules = await _call(
        "listing dispatch rules", sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    )
    return _Raw(
        {t.sip_trunk_id: t for t in ins.items},
        {t.sip_trunk_id: t for t in outs.items},
        {r.sip_dispatch_rule_id: r for r in rules.items},
    )


async def _upsert(sip: SipService, c: Change, raw: _Raw, trunk_ids: Mapping[str, str]) -> str:
    what = f"{c.action.value} {c.kind.value} {c.name!r}" + (
        f" ({c.server_id})" if c.server_id else ""
    )
    sid, d = c.server_id, c.desired
    if isinstance(d, InboundTrunk):
        p = inbound_to_proto(d, raw.inbound.get(sid))
        if sid:
            return (await _call(what, sip.update_inbound_trunk(sid, p))).sip_trunk_id
        req = CreateSIPInboundTrunkRequest(trunk=p)
        return (await _call(what, sip.create_inbound_trunk(req))).sip_trunk_id
    if isinstance(d, OutboundTrunk):
        q = outbound_to_proto(d, raw.outbound.get(sid))
        if sid:
            return (await _call(what, sip.update_outbound_trunk(sid, q))).sip_trunk_id
        oreq = CreateSIPOutboundTrunkRequest(trunk=q)
        return (await _call(what, sip.create_outbound_trunk(oreq))).sip_trunk_id
    assert isinstance(d, DispatchRule), c
    r = rule_to_proto(d, raw.rules.get(sid), trunk_ids)
    if sid:
        return (await _call(what, sip.update_dispatch_rule(sid, r))).sip_dispatch_rule_id
    rreq = CreateSIPDispatchRuleRequest(dispatch_rule=r)
    return (await _call(what, sip.create_dispatch_rule(rreq))).sip_dispatch_rule_id


async def _delete(sip: SipService, c: Change) -> None:
    what = f"delete {c.kind.value} {c.name!r} ({c.server_id})"
    if c.kind is Kind.DISPATCH_RULE:
        await _call(
            what,
            sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=c.server_id)
            ),
        )
    else:
        await _call(what, sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=c.server_id)))


async def _apply(sip: SipService, changes: list[Change], raw: _Raw) -> dict[Kind, dict[str, str]]:
    ids: dict[Kind, dict[str, str]] = {k: {} for k in Kind}
    for c in changes:
        if c.action is Action.UNCHANGED:
            ids[c.kind][c.name] = c.server_id
    # Deletes first (rules before the trunks they point at): with --prune this also clears
    # number/trunk conflicts that would make the creates below fail. Then trunks before
    # rules, because rules need the trunks' IDs.
    deletes = [c for c in changes if c.action is Action.DELETE]
    upserts = [c for c in changes if c.action in (Action.CREATE, Action.UPDATE)]
    done = 0
    try:
        for c in sorted(deletes, key=lambda c: c.kind is not Kind.DISPATCH_RULE):
            await _delete(sip, c)
            done += 1
        for c in sorted(upserts, key=lambda c: c.kind is Kind.DISPATCH_RULE):
            ids[c.kind][c.name] = await _upsert(sip, c, raw, ids[Kind.INBOUND_TRUNK])
            done += 1
    except ProvisionError as e:
        raise ProvisionError(
            f"{e}\n  {done} earlier change(s) were applied; fix the problem and run again "
            "(provisioning is idempotent)"
        ) from e
    return ids


# --- printing and the entry point -----------------------------------------------------

_VERB = {
    Action.CREATE: "create",
    Action.UPDATE: "update in place",
    Action.UNCHANGED: "unchanged",
    Action.UNMANAGED: "unmanaged, left alone (--prune deletes it)",
    Action.DELETE: "delete (--prune)",
}


def format_plan(changes: Iterable[Change], *, source: str, dry_run: bool) -> str:
    changes = list(changes)
    mode = "dry run, nothing will be changed" if dry_run else "applying"
    lines = [f"Plan for {source} ({mode}):"]
    for c in changes:
        at = f" [{c.server_id}]" if c.server_id else ""
        lines.append(f"  {c.kind.value:<15} {c.name or '(unnamed)':<24} {_VERB[c.action]}{at}")
        lines += [f"      {d.field}: {d.old} -> {d.new}" for d in c.diffs]
    counts = {a: sum(c.action is a for c in changes) for a in Action}
    lines.append(
        f"  {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.DELETE]} to delete, {counts[Action.UNCHANGED]} unchanged, "
        f"{counts[Action.UNMANAGED]} unmanaged"
    )
    return "\n".join(lines)


async def provision(
    config: TelephonyConfig,
    *,
    url: str,
    api_key: str,
    api_secret: str,
    dry_run: bool = False,
    prune: bool = False,
    out: TextIO | None = None,
) -> ProvisionResult:
    """Bring the server in line with `config`; print the plan to `out` (default stdout)."""
    out = out or sys.stdout
    async with LiveKitAPI(url, api_key, api_secret) as lk:
        raw = await _fetch(lk.sip)
        changes = plan(config, raw.state(), prune=prune)
        # Names and values come from the file and from the server (anyone with its keys).
        print(shown_lines(format_plan(changes, source=config.source, dry_run=dry_run)), file=out)
        if dry_run:
            ids: dict[Kind, dict[str, str]] = {k: {} for k in Kind}
            for c in changes:
                if c.desired is not None and c.server_id:
                    ids[c.kind][c.name] = c.server_id
        else:
            ids = await _apply(lk.sip, changes, raw)
            print("Done.", file=out)
    return ProvisionResult(
        tuple(changes),
        ids[Kind.INBOUND_TRUNK],
        ids[Kind.OUTBOUND_TRUNK],
        ids[Kind.DISPATCH_RULE],
        dry_run,
    )
