"""The person a step acts on: where they can be reached, their time zone and traits.

Read from the warehouse's profiles (`WarehousePeople`) when the engine runs beside it; an
enrollment also carries a snapshot taken when it entered (addresses, time zone, the traits the
journey's templates use), which worker processes without the warehouse send from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from quanyu.profiles.identifiers import REACH
from quanyu.warehouse.base import Warehouse

# Profile fields templates and steps can read besides the traits.
COMPUTED = ("order_count", "revenue", "avg_order_value", "first_purchase_at", "last_purchase_at", "first_seen",
            "last_seen", "preferred_channel", "first_touch_channel", "rfm_segment")  # fmt: skip
# Channels whose addresses are per app (openids).
SCOPED_CHANNELS = frozenset({"wechat_oa", "mini_program"})
# Identifier type -> the channel it reaches (a device id needs the app; push is not a journey channel).
_CHANNEL_OF = {r.id_type: r.channel for r in REACH if r.channel != "push"}


@dataclass(frozen=True)
class Person:
    profile_id: str
    addresses: dict[str, str] = field(default_factory=dict)  # channel -> address (the newest)
    timezone: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    # Openids belong to one app: channel -> {app id: openid}. A send through an official
    # account must use that account's openid, never another app's.
    scoped: dict[str, dict[str, str]] = field(default_factory=dict)
    # Profile ids that merged into this one: consent recorded under them still speaks for it.
    aliases: tuple[str, ...] = ()

    def address(self, channel: str, scope: str | None = None) -> str | None:
        if channel == "sink":
            return self.profile_id
        if scope and channel in SCOPED_CHANNELS:
            return self.scoped.get(channel, {}).get(scope)
        return self.addresses.get(channel)

    def snapshot(self, trait_names: Sequence[str] | None = None) -> dict[str, Any]:
        traits = (
            self.traits
            if trait_names is None
            else {k: self.traits[k] for k in trait_names if k in self.traits}
        )
        return {
            "a": self.addresses,
            "tz": self.timezone,
            "t": traits,
            "s": self.scoped,
            "al": list(self.aliases),
        }

    @classmethod
    def from_snapshot(cls, profile_id: str, data: Mapping[str, Any] | None) -> Person:
        data = data or {}
        return cls(profile_id, dict(data.get("a") or {}), data.get("tz"), dict(data.get("t") or {}),
                   {k: dict(v) for k, v in (data.get("s") or {}).items()}, tuple(data.get("al") or ()))  # fmt: skip


class People(Protocol):
    def lookup(self, workspace_id: str, profile_ids: Sequence[str]) -> dict[str, Person]: ...


class WarehousePeople:
    """People from the warehouse's materialised profiles."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def _aliases(self, workspace_id: str, profile_ids: Sequence[str]) -> dict[str, list[str]]:
        """Old profile ids that merged into these people (two hops: a merge of a merge)."""
        r = self.warehouse.table("identity_redirects")

        def into(targets: Sequence[str]) -> dict[str, list[str]]:
            if not targets:
                return {}
            rows = self.warehouse.execute(r.filter(r.workspace_id == workspace_id, r.profile_id.isin(list(targets)))
                                          .select("old_profile_id", "profile_id")).to_pylist()  # fmt: skip
            found: dict[str, list[str]] = {}
            for row in rows:
                found.setdefault(row["profile_id"], []).append(row["old_profile_id"])
            return found

        first = into(sorted(set(profile_ids)))
        second = into(sorted({old for olds in first.values() for old in olds}))
        return {
            pid: [*olds, *[o for old in olds for o in second.get(old, [])]] for pid, olds in first.items()
        }

    def lookup(self, workspace_id: str, profile_ids: Sequence[str]) -> dict[str, Person]:
        if not profile_ids:
            return {}
        t = self.warehouse.table("profiles")
        expr = t.filter(t.workspace_id == workspace_id, t.profile_id.isin(list(set(profile_ids)))).select(
            "profile_id", "traits", "identifiers", *COMPUTED
        )
        aliases = self._aliases(workspace_id, profile_ids)
        found: dict[str, Person] = {}
        for row in self.warehouse.execute(expr).to_pylist():
            traits = row["traits"]
            if isinstance(traits, str | bytes):
                traits = orjson.loads(traits)
            traits = traits if isinstance(traits, dict) else {}
            # Templates may also name computed fields ({{ profile.last_purchase_at }}); a trait
            # of the same name, set by the brand, wins.
            traits = {**{k: row[k] for k in COMPUTED if row.get(k) is not None}, **traits}
            idents = row["identifiers"] or []
            found[row["profile_id"]] = Person(row["profile_id"], addresses_of(idents), _zone(traits), traits,
                                              scoped_of(idents), tuple(aliases.get(row["profile_id"], ())))  # fmt: skip
        return found


def scoped_of(identifiers: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per-app addresses: channel -> {app id: openid} (the newest per app)."""
    best: dict[tuple[str, str], tuple[Any, str]] = {}
    for ident in identifiers:
        channel = _CHANNEL_OF.get(ident.get("type") or "")
        scope, value, seen = ident.get("scope") or "", ident.get("value"), ident.get("first_seen")
        if channel not in SCOPED_CHANNELS or not scope or not value:
            continue
        key = (channel, scope)
        if key not in best or (seen is not None and best[key][0] is not None and seen > best[key][0]):
            best[key] = (seen, value)
    out: dict[str, dict[str, str]] = {}
    for (channel, scope), (_seen, value) in best.items():
        out.setdefault(channel, {})[scope] = value
    return out


def addresses_of(identifiers: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The newest identifier of each reachable type, as the channel's address."""
    best: dict[str, tuple[Any, str]] = {}
    for ident in identifiers:
        channel = _CHANNEL_OF.get(ident.get("type") or "")
        value = ident.get("value")
        if channel is None or not value:
            continue
        seen = ident.get("first_seen")
        if channel not in best or (
            seen is not None and best[channel][0] is not None and seen > best[channel][0]
        ):
            best[channel] = (seen, value)
    return {channel: value for channel, (_seen, value) in best.items()}


def _zone(traits: Mapping[str, Any]) -> str | None:
    value = traits.get("timezone") or traits.get("time_zone")
    return value if isinstance(value, str) and value else None
