"""Candidate pairs: the queries that find which records are worth comparing at all.

A blocking rule (`match_spec.BLOCKING_RULES`) is a conjunction of columns or expressions;
two records are candidates when they agree on all of them. Each rule becomes one 64-bit key
per record (null when any part is missing), computed in a single pass, so counting a rule's
pairs and joining on it are integer operations. The builders here return sqlglot
expressions and hold no connection; the scoring session runs them.

A hash collision between two different key values can only add a candidate pair, which the
model then scores like any other; it cannot lose one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from quanyu.identity.match_spec import Rule

_DIALECT = "duckdb"


def key_column(index: int) -> str:
    return f"k{index}"


def keys_query(table: str, rules: Sequence[Rule]) -> exp.Select:
    """One row per record: `unique_id` and a key column per rule."""
    keys = [_key(rule).as_(key_column(i)) for i, rule in enumerate(rules)]
    return sqlglot.select("unique_id", *keys).from_(table)


def _key(rule: Rule) -> exp.Expression:
    parts = [sqlglot.parse_one(part, read=_DIALECT) for part in rule]
    known = exp.and_(*(exp.Not(this=exp.Is(this=p.copy(), expression=exp.Null())) for p in parts))
    return exp.Case().when(known, exp.func("hash", *parts))


def pair_count_query(keys_table: str, index: int) -> exp.Select:
    """How many candidate pairs rule `index` makes: the sum over its blocks of n(n-1)/2."""
    key = key_column(index)
    blocks = (
        sqlglot.select(exp.Count(this=exp.Star()).as_("n"))
        .from_(keys_table)
        .where(exp.column(key).is_(exp.null()).not_())
        .group_by(key)
    )
    pairs = exp.Sum(this=sqlglot.parse_one("n * (n - 1) / 2", read=_DIALECT))
    total = exp.cast(exp.func("coalesce", pairs, exp.Literal.number(0)), exp.DataType.build("bigint"))
    return sqlglot.select(total).from_(blocks.subquery("blocks"))


def blocked_pairs_query(keys_table: str, indexes: Sequence[int]) -> exp.Select:
    """Each candidate pair once, as Splink's registered blocked pairs expect them:
    `match_key` (the first rule that found the pair), `join_key_l` < `join_key_r`."""
    joins = [_rule_pairs(keys_table, n, i) for n, i in enumerate(indexes)]
    union: exp.Query = joins[0]
    for join in joins[1:]:
        union = exp.union(union, join, distinct=False)
    match_key = exp.cast(exp.Min(this=exp.column("rule")), exp.DataType.build("varchar")).as_("match_key")
    return (
        sqlglot.select(match_key, "join_key_l", "join_key_r")
        .from_(union.subquery("candidates"))
        .group_by("join_key_l", "join_key_r")
    )


def _rule_pairs(keys_table: str, rule_number: int, index: int) -> exp.Select:
    key = key_column(index)
    return (
        sqlglot.select(
            exp.Literal.number(rule_number).as_("rule"),
            exp.column("unique_id", "l").as_("join_key_l"),
            exp.column("unique_id", "r").as_("join_key_r"),
        )
        .from_(exp.to_table(keys_table).as_("l"))
        .join(
            exp.to_table(keys_table).as_("r"),
            on=exp.and_(
                exp.column(key, "l").eq(exp.column(key, "r")),
                exp.column("unique_id", "l") < exp.column("unique_id", "r"),
            ),
        )
    )


def sql(query: exp.Expression) -> str:
    return query.sql(dialect=_DIALECT)
