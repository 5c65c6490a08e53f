"""What provisioning would change: telephony.toml against what the server has, as a plan.

Pure: the server's objects arrive converted to the same dataclasses as the file's
(`switchboard.telephony.provision`), so a plan is a field-by-field diff, and what is on
the server but not in the file is left alone unless pruning is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TypeVar

from switchboard.telephony.config import (
    DispatchRule,
    InboundTrunk,
    Managed,
    OutboundTrunk,
    TelephonyConfig,
)

T = TypeVar("T", InboundTrunk, OutboundTrunk)


class Kind(StrEnum):
    INBOUND_TRUNK = "inbound_trunk"
    OUTBOUND_TRUNK = "outbound_trunk"
    DISPATCH_RULE = "dispatch_rule"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # in place: the API's Update*(replace=full object) keeps the ID
    UNCHANGED = "unchanged"
    UNMANAGED = "unmanaged"  # on the server, not in the file: left alone without --prune
    DELETE = "delete"


@dataclass(frozen=True)
class FieldDiff:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Change:
    kind: Kind
    name: str
    action: Action
    server_id: str = ""  # empty for CREATE
    desired: Managed | None = None  # None for UNMANAGED / DELETE
    diffs: tuple[FieldDiff, ...] = ()


@dataclass(frozen=True)
class ServerState:
    """What the server has, keyed by server ID, converted to our dataclasses.

    Server-side dispatch rules list trunk *IDs* in `trunks`; plan() swaps in the names of
    the trunks it manages, so a rule pointing at a stray same-named trunk still differs.
    """

    inbound_trunks: Mapping[str, InboundTrunk] = field(default_factory=dict)
    outbound_trunks: Mapping[str, OutboundTrunk] = field(default_factory=dict)
    dispatch_rules: Mapping[str, DispatchRule] = field(default_factory=dict)


def _render(name: str, value: object) -> str:
    if name == "auth_password":
        return "<set>" if value else "<empty>"  # never print secrets, even in a plan
    if name in ("headers_to_attributes", "attributes") and isinstance(value, tuple):  # Pairs
        return "{" + ", ".join(f"{k}={v}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value).lower() if isinstance(value, bool) else repr(value)


def diff_fields(old: Managed | None, new: Managed) -> tuple[FieldDiff, ...]:
    """Fields that differ; with old=None (a create), every field that is set."""
    out = []
    for f in fields(new):
        before, after = (getattr(old, f.name) if old else None), getattr(new, f.name)
        if before != after and (old is not None or after not in ("", (), False)):
            shown_before = "-" if old is None else _render(f.name, before)
            shown_after = _render(f.name, after)
            if f.name == "auth_password" and shown_before == shown_after:
                shown_after = "<changed>"
            out.append(FieldDiff(f.name, shown_before, shown_after))
    return tuple(out)


def _plan_kind(
    kind: Kind, want: Sequence[Managed], have: Mapping[str, Managed], prune: bool
) -> list[Change]:
    ids_by_name: dict[str, list[str]] = {}
    for sid in sorted(have):
        ids_by_name.setdefault(have[sid].name, []).append(sid)
    changes = []
    for obj in want:
        ids = ids_by_name.pop(obj.name, [])
        if not ids:
            changes.append(Change(kind, obj.name, Action.CREATE, "", obj, diff_fields(None, obj)))
            continue
        # Several server objects with our name: manage the one closest to the file; the
        # rest are extras, treated like unmanaged objects (so --prune removes them).
        ids.sort(key=lambda i: (len(diff_fields(have[i], obj)), i))
        diffs = diff_fields(have[ids[0]], obj)
        action = Action.UPDATE if diffs else Action.UNCHANGED
        changes.append(Change(kind, obj.name, action, ids[0], obj, diffs))
        ids_by_name[obj.name] = ids[1:]
    for name, ids in sorted(ids_by_name.items()):
        for sid in ids:
            changes.append(Change(kind, name, Action.DELETE if prune else Action.UNMANAGED, sid))
    return changes


def with_server_passwords(desired: TelephonyConfig, current: ServerState) -> TelephonyConfig:
    """A dry run read without the password variables (``unset_secrets``): each such trunk
    keeps the server's password, so the plan shows no password change it cannot know."""
    unknown = {(kind, name) for kind, name, _ in desired.unset_secrets}
    if not unknown:
        return desired

    def keep(kind: str, trunk: T, have: Mapping[str, T]) -> T:
        on_server = next((t for t in have.values() if t.name == trunk.name), None)
        if (kind, trunk.name) not in unknown or on_server is None:
            return trunk
        return replace(trunk, auth_password=on_server.auth_password)

    return replace(
        desired,
        inbound_trunks=tuple(
            keep("inbound_trunk", t, current.inbound_trunks) for t in desired.inbound_trunks
        ),
        outbound_trunks=tuple(
            keep("outbound_trunk", t, current.outbound_trunks) for t in desired.outbound_trunks
        ),
    )


def plan(desired: TelephonyConfig, current: ServerState, *, prune: bool = False) -> list[Change]:
    """Match objects by name (the file's name is the identity) and say what to do."""
    desired = with_server_passwords(desired, current)
    inbound = _plan_kind(Kind.INBOUND_TRUNK, desired.inbound_trunks, current.inbound_trunks, prune)
    managed = {c.server_id: c.name for c in inbound if c.desired is not None and c.server_id}
    rules = {
        rule_id: replace(r, trunks=tuple(sorted(managed.get(t, t) for t in r.trunks)))
        for rule_id, r in current.dispatch_rules.items()
    }
    return [
        *inbound,
        *_plan_kind(Kind.OUTBOUND_TRUNK, desired.outbound_trunks, current.outbound_trunks, prune),
        *_plan_kind(Kind.DISPATCH_RULE, desired.dispatch_rules, rules, prune),
    ]
