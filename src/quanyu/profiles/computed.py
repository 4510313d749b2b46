"""Computed traits: one row per profile, typed columns, from the person's events.

Pure builders over profile events (`identity.membership.profile_events`):

- `activity`: event count, first/last seen, 公域/私域 and 线上/线下 membership, first touch;
- `channel_stats`: channels seen with first/last seen and events each, the preferred channel;
- `purchases`: orders, revenue, first/last purchase, refunds;
- `computed`: the three joined, with averages and net revenue.

Timestamps flagged implausible by the pipeline (far future or past) are kept as events but do
not move first/last seen; the first touch prefers an unflagged event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt

from quanyu.warehouse.schema import TS


@dataclass(frozen=True)
class Commerce:
    """Which event names are orders and refunds (Segment's e-commerce spec by default).

    An order counts once per order id (events without one count once each), for the largest
    total any of its events reported; refunds likewise once per order.
    """

    order_events: Sequence[str] = ("Order Completed",)
    refund_events: Sequence[str] = ("Order Refunded",)


# The event columns profiles read: everything else (properties, context) stays on disk.
EVENT_COLUMNS = ("profile_id", "message_id", "type", "event", "timestamp", "timestamp_flag", "received_at",
                 "source_id", "source_type", "channel", "domain", "presence", "utm_source", "utm_campaign",
                 "order_id", "amount", "traits")  # fmt: skip

# Amounts are summed as decimals (to the cent): float sums would depend on the order the
# engine adds them in, and an incremental refresh must give the same figures as a full one.
MONEY = dt.Decimal(18, 2)

CHANNEL_ACTIVITY = dt.Struct({"channel": dt.string, "first_seen": TS, "last_seen": TS, "events": dt.int64})
_TOUCH = dt.Struct({"channel": dt.string, "source": dt.string, "campaign": dt.string})
_EARLIEST = dt.Struct({"flagged": dt.boolean, "at": TS, "message_id": dt.string})


@ibis.udf.agg.builtin(name="arg_min")
def _first_touch(arg: _TOUCH, key: _EARLIEST) -> _TOUCH:  # type: ignore[valid-type]
    """The touch of the row with the smallest key, in one streaming pass (no sort)."""


_BUSIEST = dt.Struct({"events": dt.int64, "last_seen": TS, "channel": dt.string})


@ibis.udf.agg.builtin(name="arg_max")
def _most(arg: str, key: _BUSIEST) -> str:  # type: ignore[valid-type,empty-body]
    """The channel of the row with the largest key."""


def _seen(events: ibis.Table) -> ibis.TimestampValue:
    return ibis.ifelse(events.timestamp_flag.isnull(), events.timestamp, ibis.null(TS))


def activity(events: ibis.Table) -> ibis.Table:
    seen = _seen(events)
    touch = ibis.struct(
        {"channel": events.channel, "source": ibis.coalesce(events.utm_source, events.channel),
         "campaign": events.utm_campaign}
    )  # fmt: skip
    earliest = ibis.struct(
        {"flagged": events.timestamp_flag.notnull(), "at": events.timestamp, "message_id": events.message_id}
    )
    agg = events.group_by("profile_id").aggregate(
        event_count=events.count(),
        first_seen=seen.min(),
        last_seen=seen.max(),
        in_private_domain=(events.domain == "private").any(),
        in_public_domain=(events.domain == "public").any(),
        online=(events.presence == "online").any(),
        offline=(events.presence == "offline").any(),
        touch=_first_touch(touch, earliest),
    )
    return agg.select(
        *[c for c in agg.columns if c != "touch"],
        first_touch_channel=agg.touch["channel"],
        first_touch_source=agg.touch["source"],
        first_touch_campaign=agg.touch["campaign"],
    )


def channel_stats(events: ibis.Table) -> ibis.Table:
    """Channels seen and their activity (both by channel name), and the preferred channel: most
    events, ties to the most recently seen (then the name, for determinism).

    Lists are aggregated unordered and sorted afterwards: DuckDB's ordered aggregates cost
    several times more per group."""
    with_channel = events.filter(events.channel.notnull())
    seen = _seen(with_channel)
    per = with_channel.group_by(["profile_id", "channel"]).aggregate(
        first_seen=seen.min(), last_seen=seen.max(), events=with_channel.count()
    )
    row = ibis.struct({"channel": per.channel, "first_seen": per.first_seen, "last_seen": per.last_seen,
                       "events": per.events})  # fmt: skip
    busiest = ibis.struct({"events": per.events, "last_seen": per.last_seen, "channel": per.channel})
    stats = per.group_by("profile_id").aggregate(
        channel_activity=row.collect().sort(), preferred_channel=_most(per.channel, busiest)
    )
    return stats.mutate(channels=stats.channel_activity.map(lambda c: c["channel"]))


def purchases(events: ibis.Table, commerce: Commerce) -> ibis.Table:
    orders = _per_order(events, commerce.order_events).group_by("profile_id").aggregate(
        order_count=ibis._.count(), revenue=ibis._.amount.sum(), first_purchase_at=ibis._.at.min(),
        last_purchase_at=ibis._.at.max(),
    )  # fmt: skip
    refunds = (
        _per_order(events, commerce.refund_events)
        .group_by("profile_id")
        .aggregate(refund_count=ibis._.count(), refund_amount=ibis._.amount.sum())
    )
    return orders.outer_join(refunds, "profile_id").select(
        profile_id=ibis.coalesce(orders.profile_id, refunds.profile_id),
        order_count=orders.order_count,
        revenue=orders.revenue,
        first_purchase_at=orders.first_purchase_at,
        last_purchase_at=orders.last_purchase_at,
        refund_count=refunds.refund_count,
        refund_amount=refunds.refund_amount,
    )


def _per_order(events: ibis.Table, names: Sequence[str]) -> ibis.Table:
    mine = events.filter(events.event.isin(list(names)))
    key = ibis.coalesce(mine.order_id, mine.message_id)
    return mine.group_by([mine.profile_id, key.name("order_key")]).aggregate(
        amount=mine.amount.max().cast(MONEY), at=mine.timestamp.min()
    )


def _money(total: ibis.Value) -> ibis.DecimalValue:
    return ibis.coalesce(total, ibis.literal(0, MONEY))


def net_revenue(revenue: ibis.Value, refunded: ibis.Value) -> ibis.FloatingValue:
    """Orders less refunds, summed exactly in cents and handed out as a float."""
    return (_money(revenue) - _money(refunded)).cast(dt.float64)


def attach(left: ibis.Table, *rights: ibis.Table) -> ibis.Table:
    """`left` with the columns of each of `rights` joined on profile_id (nulls where absent)."""
    for right in rights:
        left = left.left_join(right, "profile_id").drop("profile_id_right")
    return left


def computed(events: ibis.Table, commerce: Commerce | None = None) -> ibis.Table:
    """Every computed column, one row per profile with events."""
    commerce = commerce or Commerce()
    base = activity(events)
    chans = channel_stats(events)
    buys = purchases(events, commerce)
    joined = attach(base, chans, buys)
    zero = ibis.literal(0, dt.int64)
    orders = ibis.coalesce(joined.order_count, zero)
    revenue, refunded = _money(joined.revenue), _money(joined.refund_amount)
    return joined.select(
        "profile_id", "event_count", "first_seen", "last_seen", "channels", "channel_activity",
        "preferred_channel", "first_touch_channel", "first_touch_source", "first_touch_campaign",
        "in_private_domain", "in_public_domain", "online", "offline",
        order_count=orders,
        revenue=revenue.cast(dt.float64),
        avg_order_value=ibis.ifelse(orders > 0, (revenue / orders).cast(dt.float64), ibis.null(dt.float64)),
        first_purchase_at=joined.first_purchase_at,
        last_purchase_at=joined.last_purchase_at,
        refund_count=ibis.coalesce(joined.refund_count, zero),
        refund_amount=refunded.cast(dt.float64),
        net_revenue=net_revenue(joined.revenue, joined.refund_amount),
    )  # fmt: skip
