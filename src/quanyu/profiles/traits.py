"""Merged traits: one JSON object per profile, each key from its most trusted, latest source.

Traits arrive on `identify` calls and in `context.traits` of other calls (the pipeline keeps
either in the events' `traits` column). For every trait key of a person, the value comes from
the event whose source type has the highest priority, then the most recent one; ties fall to
the later-received event, then the larger message id, so the result never depends on scan
order. A trait sent as `null` is ignored rather than erasing a value. `group` calls carry the
group's traits, not the person's, and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.datatypes as dt
from pydantic import BaseModel, ConfigDict, Field

from quanyu.warehouse.schema import TS

# The brand's own systems of record first (member CRM, store tills, its order service), then
# channels where people type their own details (app, mini-program, WeCom guides), then web,
# then marketplaces and ads, which hand out receivers' names and masked phones.
DEFAULT_SOURCE_PRIORITY: dict[str, int] = {
    "crm": 100,
    "pos": 90,
    "server": 85,
    "wecom": 80,
    "app": 70,
    "mini_program": 70,
    "wechat_oa": 60,
    "offline_event": 55,
    "form": 55,
    "website": 50,
    "h5": 50,
    "youzan": 40,
    "tmall": 30,
    "jd": 30,
    "douyin": 30,
    "xiaohongshu": 30,
    "live_stream": 20,
    "ads": 10,
}


class TraitPrecedence(BaseModel):
    """Source-type priorities for merging traits (higher wins; unknown types count 0).

    Overrides merge over the defaults: `TraitPrecedence.with_overrides({"youzan": 95})`.
    """

    model_config = ConfigDict(frozen=True)

    source_priority: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_PRIORITY))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, int]) -> TraitPrecedence:
        return cls(source_priority={**DEFAULT_SOURCE_PRIORITY, **overrides})

    def priority(self, source_type: ibis.StringValue) -> ibis.IntegerValue:
        return source_type.substitute(self.source_priority, else_=0)


_RANK = dt.Struct({"priority": dt.int64, "at": TS, "received_at": TS, "message_id": dt.string})
_WON = dt.Struct({"source_type": dt.string, "source_id": dt.string, "at": TS, "value": dt.json})


@ibis.udf.agg.builtin(name="arg_max")
def _winner(arg: _WON, key: _RANK) -> _WON:  # type: ignore[valid-type]
    """The value of the best-ranked row, in one streaming pass per (profile, trait)."""


def merged_traits(events: ibis.Table, precedence: TraitPrecedence) -> ibis.Table:
    """(profile_id, traits JSON, trait_sources) per profile that has any trait.

    `events` are profile events (`identity.membership.profile_events`).
    """
    carrying = events.filter(events.traits.notnull(), events.type != "group")
    as_map = carrying.select(
        "profile_id", "source_type", "source_id", "timestamp", "received_at", "message_id",
        pairs=carrying.traits.try_cast(dt.Map(dt.string, dt.json)),
    )  # fmt: skip
    # DuckDB unnests two lists of one projection side by side: key i goes with value i.
    kv = as_map.select(
        "profile_id", "source_type", "source_id", "timestamp", "received_at", "message_id",
        key=as_map.pairs.keys().unnest(), value=as_map.pairs.values().unnest(),
    )  # fmt: skip
    kv = kv.filter(kv.value.notnull())
    rank = ibis.struct({"priority": precedence.priority(kv.source_type), "at": kv.timestamp,
                        "received_at": kv.received_at, "message_id": kv.message_id})  # fmt: skip
    value = ibis.struct({"source_type": kv.source_type, "source_id": kv.source_id, "at": kv.timestamp,
                         "value": kv.value})  # fmt: skip
    best = kv.group_by(["profile_id", "key"]).aggregate(best=_winner(value, rank))
    won = ibis.struct(
        {"key": best.key, **{k: best.best[k] for k in ("source_type", "source_id", "at", "value")}}
    )
    # Collected unordered, then sorted by key: one object layout whatever the scan order.
    merged = best.group_by("profile_id").aggregate(won=won.collect().sort())
    keys, values = merged.won.map(lambda w: w["key"]), merged.won.map(lambda w: w["value"])
    sources = merged.won.map(
        lambda w: ibis.struct({"key": w["key"], "source_type": w["source_type"], "source_id": w["source_id"],
                               "at": w["at"]})
    )  # fmt: skip
    return merged.select("profile_id", traits=ibis.map(keys, values).cast(dt.json), trait_sources=sources)
