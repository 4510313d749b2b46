"""Helpers for the profile tests: a brand sending through real sources, and a hand-written ledger.

`Brand` goes through the collector, the pipeline and identity resolution, as users do.
`Ledger` writes events and identity rows straight into a warehouse (one person per user id),
for tests that need many people quickly (RFM distributions, incremental vs full).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from quanyu.collect.messages import Envelope
from quanyu.collect.source_types import SOURCE_TYPES
from quanyu.identity import person_events
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from quanyu.warehouse.base import Append, Replace, Warehouse
from quanyu.warehouse.schema import EVENTS, IDENTITY_EVENT_KEYS, IDENTITY_NODES

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def day(n: float) -> str:
    return (T0 + timedelta(days=n)).isoformat().replace("+00:00", "Z")


@dataclass
class Brand:
    platform: Platform
    workspace_id: str
    sources: dict[str, Any] = field(default_factory=dict)

    def send(self, source_type: str, *messages: dict[str, Any]) -> None:
        """Send through a source of `source_type` (created on first use) and process."""
        if source_type not in self.sources:
            created = self.platform.sources.create(self.workspace_id, f"{source_type} 来源", source_type)
            self.sources[source_type] = created.source
        source = self.sources[source_type]
        future, receipt = self.platform.intake.accept(source, list(messages), None, Envelope())
        future.result()
        assert not receipt.quarantined, receipt.quarantined
        self.platform.pipeline.drain()

    def resolve(self) -> None:
        rebuild(self.platform.warehouse, self.workspace_id)

    def profile_of(self, user_id: str) -> str:
        nodes = self.platform.warehouse.table("identity_nodes")
        rows = self.platform.warehouse.execute(
            nodes.filter(nodes.workspace_id == self.workspace_id, nodes.key == f"user_id:{user_id}")
        ).to_pylist()
        assert rows, f"no profile holds user_id {user_id}"
        return str(rows[0]["profile_id"])


_ids = itertools.count()


@dataclass
class Ledger:
    """Events and identity rows written directly: person `p` is profile `prof_p`."""

    warehouse: Warehouse
    workspace_id: str = "ws_ledger"
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, person: str, at: float, source_type: str = "website", event: str = "Viewed",
            **extra: Any) -> dict[str, Any]:  # fmt: skip
        kind = SOURCE_TYPES[source_type]
        traits = extra.pop("traits", None)
        row = {
            "workspace_id": self.workspace_id, "message_id": f"m{next(_ids):08d}", "type": "track",
            "event": event, "user_id": person, "timestamp": T0 + timedelta(days=at), "received_at": T0,
            "source_id": f"src_{source_type}", "source_type": source_type, "channel": kind.channel,
            "domain": kind.domain, "presence": kind.presence,
            "traits": orjson.dumps(traits).decode() if traits is not None else None, "batch_id": 0, **extra,
        }  # fmt: skip
        self.events.append(row)
        return row

    def order(self, person: str, at: float, amount: float, source_type: str = "tmall", **extra: Any) -> None:
        self.add(
            person, at, source_type, "Order Completed", order_id=f"o{next(_ids)}", amount=amount, **extra
        )

    def store(self) -> None:
        """Write the events and the identity rows for every person seen so far."""
        ws = self.workspace_id
        people = sorted({e["user_id"] for e in self.events})
        first = {p: min(e["timestamp"] for e in self.events if e["user_id"] == p) for p in people}
        nodes = [
            {"workspace_id": ws, "key": f"user_id:{p}", "id_type": "user_id", "value": p, "scope": "",
             "profile_id": f"prof_{p}", "is_anchor": True, "first_seen": first[p], "component": p}
            for p in people
        ]  # fmt: skip
        keys = [
            {"workspace_id": ws, "message_id": e["message_id"], "key": f"user_id:{e['user_id']}",
             "timestamp": e["timestamp"]}
            for e in self.events
        ]  # fmt: skip
        self.warehouse.write(
            [
                Replace("events", ws, pa.Table.from_pylist(self.events, schema=EVENTS.to_pyarrow())),
                Replace("identity_nodes", ws, pa.Table.from_pylist(nodes, schema=IDENTITY_NODES.to_pyarrow())),
                Replace("identity_event_keys", ws,
                        pa.Table.from_pylist(keys, schema=IDENTITY_EVENT_KEYS.to_pyarrow())),
                person_events.refill(self.warehouse, ws),
            ]
        )  # fmt: skip

    def merge(self, gone: str, into: str) -> None:
        """Person `gone` turns out to be `into`: their identifier now belongs to `prof_<into>`."""
        ws, table = self.workspace_id, self.warehouse.table("identity_nodes")
        rows = self.warehouse.execute(table.filter(table.workspace_id == ws)).to_pylist()
        for row in rows:
            if row["profile_id"] == f"prof_{gone}":
                row["profile_id"], row["is_anchor"] = f"prof_{into}", False
        redirect = pa.table(
            {"workspace_id": [ws], "old_profile_id": [f"prof_{gone}"], "profile_id": [f"prof_{into}"],
             "at": pa.array([datetime.now(UTC)], pa.timestamp("us", "UTC"))}
        )  # fmt: skip
        self.warehouse.write(
            [
                Replace("identity_nodes", ws, pa.Table.from_pylist(rows, schema=IDENTITY_NODES.to_pyarrow())),
                Append("identity_redirects", redirect),
                person_events.refill(self.warehouse, ws),
            ]
        )


def row_of(warehouse: Warehouse, workspace_id: str, profile_id: str) -> dict[str, Any] | None:
    profiles = warehouse.table("profiles")
    rows = warehouse.execute(
        profiles.filter(profiles.workspace_id == workspace_id, profiles.profile_id == profile_id)
    ).to_pylist()
    return rows[0] if rows else None
