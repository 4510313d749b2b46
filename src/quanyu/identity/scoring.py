"""Scoring candidate pairs with Splink on an in-memory DuckDB: where a match meets a database.

Each call opens its own in-memory DuckDB, loads the standardised people, trains the model
(u by random sampling, then EM on a couple of blocking rules, with a fixed seed), scores the
pairs the blocking rules generate and closes the database: no table outlives the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from sqlglot.expressions import Expression

from quanyu.identity import blocking
from quanyu.identity.comparisons import blocking_rule, splink_settings
from quanyu.identity.match_spec import PersonMatchSpec, Rule, trained_by

_TABLE = "people"
_KEYS = "blocking_keys"
_BLOCKED = "blocked_pairs"
# Below this many candidate pairs in all, blocking is affordable whatever the list's size.
_MIN_BUDGET = 100_000
_BATCH_ROWS = 65_536
# EM needs enough pairs to tell matches from non-matches.
_MIN_TRAINING_PAIRS = 1000
_MIN_M = 1e-4
_MAX_TRAINING_RULES = 3
_PAIR_COLUMNS = ("unique_id_l", "unique_id_r", "match_weight", "match_probability")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredPairs:
    pairs: pa.Table  # unique_id_l, unique_id_r (row numbers), match_weight, match_probability
    blocking_rules: tuple[Rule, ...]
    model: dict[str, Any]  # the trained Splink settings: prior, m and u of every level


def score_pairs(
    people: pa.Table, spec: PersonMatchSpec, floor: float, on_stage: Callable[[str], None]
) -> ScoredPairs:
    """The pairs of `people` (see `person_records.standardise`) scoring at least `floor`."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        # In batches, so DuckDB scans the people on every core.
        con.register(
            _TABLE, pa.Table.from_batches(people.to_batches(max_chunksize=_BATCH_ROWS), people.schema)
        )
        candidates = list(dict.fromkeys([*spec.blocking_rules, *spec.training_rules]))
        con.sql(blocking.sql(blocking.keys_query(_TABLE, candidates))).create(_KEYS)
        counts = {rule: _count(con, blocking.pair_count_query(_KEYS, i)) for i, rule in enumerate(candidates)}
        rules = affordable_rules(spec, counts, len(people))
        on_stage("training")
        if not rules:
            on_stage("scoring")
            return ScoredPairs(_no_pairs(), (), {})
        db_api = DuckDBAPI(con)
        frame = db_api.register(_TABLE)
        with _quiet_splink():
            linker = Linker(frame, splink_settings(spec, rules, len(people)), log_level=None)
            model = _train(linker, spec, counts, len(people))
            linker = Linker(frame, model, log_level=None)
            on_stage("scoring")
            chosen = [candidates.index(r) for r in rules]
            con.sql(blocking.sql(blocking.blocked_pairs_query(_KEYS, chosen))).create(_BLOCKED)
            linker.table_management.register_blocked_pairs_for_predict(db_api.register(_BLOCKED))
            predictions = linker.inference.predict(threshold_match_probability=floor, warning_mode="never")
        pairs = con.table(predictions.physical_name).select(*_PAIR_COLUMNS).to_arrow_table()
        return ScoredPairs(pairs, rules, model)
    finally:
        con.close()


def affordable_rules(spec: PersonMatchSpec, counts: dict[Rule, int], records: int) -> tuple[Rule, ...]:
    """The spec's blocking rules, in order, while their candidate pairs fit the budget of
    `max_pairs_per_record`; a rule that would overflow it is skipped, so the broad rules at
    the end (a name alone) serve small lists only and a million records stay in the low
    millions of pairs."""
    budget = max(spec.max_pairs_per_record * records, _MIN_BUDGET)
    chosen: list[Rule] = []
    for rule in spec.blocking_rules:
        if 0 < counts[rule] <= budget:
            chosen.append(rule)
            budget -= counts[rule]
    return tuple(chosen)


def _count(con: duckdb.DuckDBPyConnection, query: Expression) -> int:
    row = con.sql(blocking.sql(query)).fetchone()
    return int(row[0]) if row else 0


def training_plan(spec: PersonMatchSpec, counts: dict[Rule, int]) -> list[Rule]:
    """EM rules, in the spec's order, until every comparison is estimated by one of them."""
    plan: list[Rule] = []
    covered: set[str] = set()
    for rule in spec.training_rules:
        gain = trained_by(rule, spec) - covered
        if gain and counts.get(rule, 0) >= _MIN_TRAINING_PAIRS:
            plan.append(rule)
            covered |= gain
        if covered == set(spec.comparisons) or len(plan) == _MAX_TRAINING_RULES:
            break
    return plan


def _train(linker: Linker, spec: PersonMatchSpec, counts: dict[Rule, int], records: int) -> dict[str, Any]:
    """The trained model (Splink settings with m and u). Lists too small to learn from keep
    the priors of the spec's levels; only the share of matching pairs is always estimated."""
    training = linker.training
    deterministic: list[str | BlockingRuleCreator] = [
        blocking_rule(r) for r in spec.deterministic_rules if counts.get(r, 0) > 0
    ]
    if deterministic:
        try:
            training.estimate_probability_two_random_records_match(
                deterministic, recall=spec.deterministic_recall
            )
        except ValueError as exc:  # more deterministic matches than the recall allows
            log.info("prior left at its default: %s", exc)
    if records >= spec.min_records_to_train:
        # One pass over the sample per comparison: levels that non-matches rarely reach (swapped
        # names) would otherwise keep Splink sampling chunk after chunk for a count it never gets.
        training.estimate_u_using_random_sampling(max_pairs=spec.u_max_pairs, seed=spec.seed, num_chunks=1)
        for rule in training_plan(spec, counts):
            sample = spec.em_max_pairs if counts[rule] > spec.em_max_pairs else None
            training.estimate_parameters_using_expectation_maximisation(
                blocking_rule(rule), estimate_without_term_frequencies=True, max_pairs=sample
            )
    return settle(linker.misc.save_model_to_json())


def settle(model: dict[str, Any]) -> dict[str, Any]:
    """No level may rule a pair out on its own: EM gives a level no pair of its training sample
    reached an m of 0, a weight of minus infinity, which one real match on it would meet."""
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("m_probability") is not None:
                level["m_probability"] = max(level["m_probability"], _MIN_M)
    return model


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink's training notes (levels not observed, default parameters) are written for a
    notebook; here they would interleave with the caller's progress display."""
    splink_log = logging.getLogger("splink")
    level = splink_log.level
    splink_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_log.setLevel(level)


def _no_pairs() -> pa.Table:
    return pa.table(
        {
            "unique_id_l": pa.array([], pa.int64()),
            "unique_id_r": pa.array([], pa.int64()),
            "match_weight": pa.array([], pa.float64()),
            "match_probability": pa.array([], pa.float64()),
        }
    )
