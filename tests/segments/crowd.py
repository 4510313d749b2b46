"""People for the compiler tests, written straight into a DuckDB warehouse.

`World` wraps profilekit's `Ledger` (person `p` is profile `prof_p`) with what segments read
beyond events: identifiers other than the user id (a phone, an email, an openid), manual tags,
event properties and page views. `World.members(definition)` compiles and runs a definition and
answers with the person names, so a test reads as the people it expects.

`restaurant(seed)` generates a few hundred diners of a restaurant brand (POS, mini program,
delivery apps, Tmall, WeChat) with a seeded random generator, for the scenarios and the
property-based tests.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from profiles.profilekit import T0, Ledger
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.profiles import refresh
from quanyu.profiles.tags import MANUAL, log_rows
from quanyu.segments.compiler import compile_segment, segment_context
from quanyu.segments.definition import Definition, parse_definition
from quanyu.warehouse.base import Append, Warehouse
from quanyu.warehouse.duckdb import DuckDBWarehouse
from quanyu.warehouse.schema import IDENTITY_NODES

# The evaluation moment: day 60 after T0, 2026-04-30 00:00 UTC (08:00 in Shanghai).
NOW = T0 + timedelta(days=60)
TOUCH = ("Message Delivered", "Coupon Sent", "SMS Delivered", "WeCom Message Sent")
EVENT_GROUPS: dict[str, Sequence[str]] = {"touch": TOUCH, "orders": ("Order Completed",)}


# The example of issue 4, the language's contract.
ISSUE_EXAMPLE: dict[str, Any] = {
    "match": "all",
    "conditions": [
        {"trait": "city", "op": "in", "value": ["上海", "杭州"]},
        {"event": "Order Completed", "where": [{"property": "amount", "op": "gte", "value": 100}],
         "window": {"last": 90, "unit": "day"}, "count": {"op": "gte", "value": 2}},
        {"not": {"event": ["Message Delivered", "Coupon Sent"], "window": {"calendar": "this_month"}}},
        {"identifier": "phone", "op": "exists"},
        {"tag": "VIP"},
        {"match": "any", "conditions": [{"segment": "seg_123"},
                                        {"trait": "member_level", "op": "eq", "value": "gold"}]},
    ],
}  # fmt: skip


@dataclass
class World:
    ledger: Ledger
    now: datetime = NOW
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    segments: dict[str, Definition] = field(default_factory=dict)

    @classmethod
    def empty(cls, workspace_id: str = "ws_seg") -> World:
        return cls(Ledger(DuckDBWarehouse(":memory:"), workspace_id))

    @property
    def warehouse(self) -> Warehouse:
        return self.ledger.warehouse

    @property
    def workspace_id(self) -> str:
        return self.ledger.workspace_id

    def event(self, person: str, at: float, source_type: str, event: str | None, **extra: Any) -> None:
        """One track event (`properties` as a dict); `page=` makes it a page view of that name.
        A `store_id` property fills the typed column too, as the pipeline's normalisation does."""
        if "properties" in extra:
            if "store_id" in extra["properties"]:
                extra.setdefault("store_id", extra["properties"]["store_id"])
            extra["properties"] = orjson.dumps(extra["properties"]).decode()
        if "page" in extra:
            extra.update(type="page", name=extra.pop("page"))
        self.ledger.add(person, at, source_type, event, **extra)  # type: ignore[arg-type]

    def order(self, person: str, at: float, amount: float, source_type: str = "tmall", **extra: Any) -> None:
        if "properties" in extra:
            extra["properties"] = orjson.dumps(extra["properties"]).decode()
        self.ledger.order(person, at, amount, source_type, **extra)

    def identify(self, person: str, id_type: str, raw: str, scope: str = "") -> None:
        """Give `person` an identifier, normalised as the pipeline would."""
        found = IdentifierTypes().identify(id_type, raw, scope)
        assert found is not None, (id_type, raw)
        self.identifiers.append(
            {"workspace_id": self.workspace_id, "key": found.key, "id_type": found.type, "value": found.value,
             "scope": found.scope, "profile_id": f"prof_{person}", "is_anchor": False,
             "first_seen": T0, "component": person}
        )  # fmt: skip

    def tag(self, person: str, tag: str) -> None:
        self.tags.append((person, tag))

    def build(self) -> World:
        """Store the events and identity rows, then materialise the profiles as of `now`."""
        self.ledger.store()
        if self.identifiers:
            rows = pa.Table.from_pylist(self.identifiers, schema=IDENTITY_NODES.to_pyarrow())
            self.warehouse.write([Append("identity_nodes", rows)])
        if self.tags:  # manual tags, as add_tag logs them (in one write)
            changes = [(f"prof_{person}", tag, MANUAL, "add", "test") for person, tag in self.tags]
            self.warehouse.write([Append("profile_tags", log_rows(self.workspace_id, changes, T0))])
        refresh(self.warehouse, self.workspace_id, now=self.now)
        return self

    def people(self) -> set[str]:
        profiles = self.warehouse.table("profiles")
        rows = self.warehouse.execute(
            profiles.filter(profiles.workspace_id == self.workspace_id).select("profile_id")
        )
        return {pid.removeprefix("prof_") for pid in rows.column(0).to_pylist()}

    def members(
        self,
        definition: Mapping[str, Any] | Definition,
        *,
        now: datetime | None = None,
        event_groups: Mapping[str, Sequence[str]] | None = None,
        **context: Any,
    ) -> set[str]:
        ctx = segment_context(
            self.warehouse,
            self.workspace_id,
            now=now or self.now,
            event_groups=EVENT_GROUPS if event_groups is None else event_groups,
            segments=self.segments.get,
            **context,
        )
        table = self.warehouse.execute(compile_segment(parse_definition(definition), ctx))
        ids = table.column("profile_id").to_pylist()
        assert len(ids) == len(set(ids)), "a member appears once"
        return {pid.removeprefix("prof_") for pid in ids}

    def holding(self, *conditions: Mapping[str, Any], match: str = "all") -> set[str]:
        return self.members({"match": match, "conditions": list(conditions)})

    def close(self) -> None:
        self.warehouse.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# A restaurant brand's diners

# (source_type, source_id, event) of what a diner may do; delivery apps report through the server.
ORDER_SOURCES = (("pos", "src_pos"), ("mini_program", "src_mini"), ("server", "src_meituan"),
                 ("server", "src_eleme"), ("tmall", "src_tmall"))  # fmt: skip
STORES = ("SH01", "SH02", "HZ01", "BJ01")
CITIES = ("上海", "杭州", "北京", "成都")


def restaurant(seed: int, people: int = 300, days: int = 120) -> World:
    """Diners over `days` days ending at `now` (day 60 after T0), generated from `seed`.

    Each diner gets a habit: how often they order and where, whether they browse the mini
    program, whether the brand has messaged them, whether they followed the official account
    through a store's QR code. Times are spread over the whole day (hours in UTC, so local days
    and months cut through them), with some events in the future (a skewed clock) and some
    before the period.
    """
    rng = random.Random(seed)
    world = World.empty(f"ws_rest_{seed}")
    start = 60 - days
    for n in range(people):
        person = f"d{n:04d}"
        world.event(person, start - rng.random() * 30, "website", "Signed Up",
                    traits={"city": rng.choice(CITIES), "member_level": rng.choice(["gold", "silver", "none"]),
                            "age": rng.randint(18, 70)})  # fmt: skip
        orders = rng.choice([0, 0, 1, 1, 2, 2, 3, 5, 8])
        for _ in range(orders):
            source_type, source_id = rng.choice(ORDER_SOURCES)
            amount = round(rng.choice([38, 58, 88, 128, 268, 520]) * rng.uniform(0.8, 1.6), 2)
            store = {"store_id": rng.choice(STORES)} if source_type == "pos" else {}
            world.order(person, _when(rng, start), amount, source_type, source_id=source_id, **store)
        if rng.random() < 0.35:  # browsing the mini program without ordering
            for _ in range(rng.randint(1, 4)):
                world.event(
                    person, _when(rng, start), "mini_program", None, page=rng.choice(["/menu", "/coupons"])
                )
        if rng.random() < 0.15:
            world.event(person, _when(rng, start), "pos", "Store Visited", store_id=rng.choice(STORES))
        for _ in range(rng.choice([0, 0, 0, 1, 2])):  # the brand reached out
            event = rng.choice(TOUCH)
            source = "wecom" if event == "WeCom Message Sent" else "wechat_oa"
            world.event(person, _when(rng, start), source, event)
        if rng.random() < 0.2:
            scene = rng.choice(["store_qr", "store_qr", "article", "search"])
            props = {"scene": scene, **({"store_id": rng.choice(STORES)} if scene == "store_qr" else {})}
            world.event(person, _when(rng, start), "wechat_oa", "Official Account Followed", properties=props)
        if rng.random() < 0.05:
            world.event(person, _when(rng, start), "wechat_oa", "QR Scanned",
                        properties={"qr_type": rng.choice(["store", "table"]), "store_id": rng.choice(STORES)})  # fmt: skip
        if rng.random() < 0.4:
            world.identify(person, "phone", f"1{rng.randint(30, 99)}{rng.randint(0, 99_999_999):08d}")
        if rng.random() < 0.1:
            world.tag(person, "VIP")
    return world.build()


def _when(rng: random.Random, start: float) -> float:
    """A day number in the period, at any time of day; now and then a little in the future."""
    if rng.random() < 0.02:
        return 60 + rng.random() * 2
    # Cluster some events around the edges of local months and of the 30-day window.
    edge = rng.random()
    if edge < 0.1:
        return rng.choice([30.0, 30.6667, 29.6667, 31.0]) + rng.uniform(-0.2, 0.2)
    return start + rng.random() * (60 - start)
