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
# Identifier type -> the channel it reaches (a device id needs the app; push is not a journey channel).
_CHANNEL_OF = {r.id_type: r.channel for r in REACH if r.channel != "push"}


@dataclass(frozen=True)
class Person:
    profile_id: str
    addresses: dict[str, str] = field(default_factory=dict)  # channel -> address
    timezone: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)

    def address(self, channel: str) -> str | None:
        if channel == "sink":
            return self.profile_id
        return self.addresses.get(channel)

    def snapshot(self, trait_names: Sequence[str] | None = None) -> dict[str, Any]:
        traits = (
            self.traits
            if trait_names is None
            else {k: self.traits[k] for k in trait_names if k in self.traits}
        )
        return {"a": self.addresses, "tz": self.timezone, "t": traits}

    @classmethod
    def from_snapshot(cls, profile_id: str, data: Mapping[str, Any] | None) -> Person:
        data = data or {}
        return cls(profile_id, dict(data.get("a") or {}), data.get("tz"), dict(data.get("t") or {}))


class People(Protocol):
    def lookup(self, workspace_id: str, profile_ids: Sequence[str]) -> dict[str, Person]: ...


class WarehousePeople:
    """People from the warehouse's materialised profiles."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def lookup(self, workspace_id: str, profile_ids: Sequence[str]) -> dict[str, Person]:
        if not profile_ids:
            return {}
        t = self.warehouse.table("profiles")
        expr = t.filter(t.workspace_id == workspace_id, t.profile_id.isin(list(set(profile_ids)))).select(
            "profile_id", "traits", "identifiers", *COMPUTED
        )
        found: dict[str, Person] = {}
        for row in self.warehouse.execute(expr).to_pylist():
            traits = row["traits"]
            if isinstance(traits, str | bytes):
                traits = orjson.loads(traits)
            traits = traits if isinstance(traits, dict) else {}
            # Templates may also name computed fields ({{ profile.last_purchase_at }}); a trait
            # of the same name, set by the brand, wins.
            traits = {**{k: row[k] for k in COMPUTED if row.get(k) is not None}, **traits}
            found[row["profile_id"]] = Person(row["profile_id"], addresses_of(row["identifiers"] or []),
                                              _zone(traits), traits)  # fmt: skip
        return found


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
