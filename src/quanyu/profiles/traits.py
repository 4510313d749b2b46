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

TRAIT_SOURCE = dt.Struct({"key": dt.string, "source_type": dt.string, "source_id": dt.string,
                          "at": dt.Timestamp(timezone="UTC")})  # fmt: skip


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


@ibis.udf.agg.builtin(name="json_group_object")
def _json_object(key: str, value: dt.JSON) -> dt.JSON:
    """DuckDB's aggregate of key/value pairs into one JSON object."""


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
    order = [precedence.priority(kv.source_type).desc(), kv.timestamp.desc(), kv.received_at.desc(),
             kv.message_id.desc()]  # fmt: skip
    ranked = kv.mutate(rank=ibis.row_number().over(group_by=[kv.profile_id, kv.key], order_by=order))
    winners = ranked.filter(ranked.rank == 0)
    provenance = ibis.struct(
        {"key": winners.key, "source_type": winners.source_type, "source_id": winners.source_id,
         "at": winners.timestamp}
    )  # fmt: skip
    return winners.group_by("profile_id").aggregate(
        traits=_json_object(winners.key, winners.value),
        trait_sources=provenance.collect(order_by=winners.key),
    )
