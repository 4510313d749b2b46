"""RFM scores (1–5) and the eight classic RFM segments, for buyers.

Recency is when a person last bought, frequency their order count, monetary their net revenue
(orders less refunds). Each is scored against the workspace's buyers by quintile **cut points**:
the 20th, 40th, 60th and 80th percentiles (discrete: each is a value some buyer has), and a
value scores 1 plus the number of cut points it exceeds.

Why cut points rather than NTILE's row positions: NTILE(5) must split equal values across
quintiles by some arbitrary order, so two customers with the same single order could get F=1
and F=2 depending on their ids. With cut points equal values always share a score (with no
ties the two agree), and a profile's score depends only on its own value and the distribution,
which is what lets an incremental refresh score a few people against the stored rest.

A score of 3 or more counts as "high" for the segment (at or above the median quintile).
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

QUINTILES = (0.2, 0.4, 0.6, 0.8)
HIGH = 3

# (recency high, frequency high, monetary high) → (code, 中文, English)
SEGMENTS: dict[tuple[bool, bool, bool], tuple[str, str, str]] = {
    (True, True, True): ("important_value", "重要价值客户", "Important value"),
    (True, False, True): ("important_development", "重要发展客户", "Important development"),
    (False, True, True): ("important_retention", "重要保持客户", "Important retention"),
    (False, False, True): ("important_winback", "重要挽留客户", "Important win-back"),
    (True, True, False): ("general_value", "一般价值客户", "General value"),
    (True, False, False): ("general_development", "一般发展客户", "General development"),
    (False, True, False): ("general_retention", "一般保持客户", "General retention"),
    (False, False, False): ("general_winback", "一般挽留客户", "General win-back"),
}
SEGMENT_LABELS: dict[str, tuple[str, str]] = {code: (zh, en) for code, zh, en in SEGMENTS.values()}


@ibis.udf.agg.builtin(name="quantile_disc")
def _cuts(value: dt.float64, quantiles: dt.Array(dt.float64)) -> dt.Array(dt.float64):  # type: ignore[valid-type]
    """DuckDB's discrete quantiles: each cut point is a value of the column."""


def _values(t: ibis.Table) -> dict[str, ibis.FloatingValue]:
    return {
        "r": t.last_purchase_at.epoch_seconds().cast(dt.float64),
        "f": t.order_count.cast(dt.float64),
        "m": t.net_revenue,
    }


def _is_buyer(t: ibis.Table) -> ibis.BooleanValue:
    return (t.order_count > 0) & t.last_purchase_at.notnull()


def cut_points(population: ibis.Table) -> ibis.Table:
    """One row: the quintile cut points of recency, frequency and monetary over the buyers of
    `population` (any table with order_count, net_revenue, last_purchase_at)."""
    buyers = population.filter(_is_buyer(population))
    at = ibis.literal(list(QUINTILES), type=dt.Array(dt.float64))
    return buyers.aggregate(**{f"{k}_cuts": _cuts(v, at) for k, v in _values(buyers).items()})


def _score(value: ibis.FloatingValue, cuts: ibis.ArrayValue) -> ibis.IntegerValue:
    above = [(value > cuts[i]).fill_null(False).cast(dt.int64) for i in range(len(QUINTILES))]
    return sum(above, ibis.literal(1, dt.int64))


def scored(rows: ibis.Table, population: ibis.Table) -> ibis.Table:
    """`rows` with rfm_recency, rfm_frequency, rfm_monetary and rfm_segment (null for people
    who have not bought), scored against `population`'s distribution."""
    with_cuts = rows.cross_join(cut_points(population))
    values = _values(with_cuts)
    buyer = _is_buyer(with_cuts)
    none = ibis.null(dt.int64)
    scores = {
        name: ibis.ifelse(buyer, _score(values[k], with_cuts[f"{k}_cuts"]), none)
        for name, k in (("rfm_recency", "r"), ("rfm_frequency", "f"), ("rfm_monetary", "m"))
    }
    out = with_cuts.mutate(**scores).drop("r_cuts", "f_cuts", "m_cuts")
    high = {k: out[f"rfm_{k}"] >= HIGH for k in ("recency", "frequency", "monetary")}
    segment = ibis.cases(
        *[
            (ibis.and_(*[high[k] if want else ~high[k] for k, want in zip(high, key, strict=True)]), code)
            for key, (code, _, _) in SEGMENTS.items()
        ],
        else_=ibis.null(dt.string),
    )
    return out.mutate(rfm_segment=segment)
