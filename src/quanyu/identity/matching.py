"""Probabilistic matching of person records that lack a shared strong identifier.

Offline forms, POS tills, CRM imports and event sign-ups describe people by name, birth date,
address and often a partial phone. `match` standardises such records (`person_records`),
picks comparisons and blocking rules for the fields present (`match_spec`, compiled by
`comparisons`), trains a Fellegi-Sunter model with Splink on an in-memory DuckDB (`scoring`)
and clusters the pairs whose match probability reaches the threshold. Pairs between the review threshold and the
threshold are returned apart, with their match weights, for a person to decide.

    result = match(records, {"full_name": "姓名", "phone": "手机"}, threshold=0.95,
                   review_threshold=0.5, id_column="id")
    result.clusters   # record_id, cluster_id (the smallest record id of its cluster)
    result.review     # left_id, right_id, match_weight, match_probability
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from quanyu.errors import InvalidInput
from quanyu.identity.match_spec import PersonMatchSpec, person_spec
from quanyu.identity.person_records import standardise
from quanyu.identity.scoring import score_pairs

DEFAULT_THRESHOLD = 0.95
# A phone, email or national id on more records than this is a shop's, a placeholder or a
# test value: it says nothing about who someone is, so it neither blocks nor compares.
MAX_RECORDS_SHARING_A_CONTACT = 1000
_CONTACT_COLUMNS = ("phone", "email", "national_id")
# What `progress` is called with, in order, as a match goes.
STAGES = ("standardising", "training", "scoring", "clustering")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MatchResult:
    """What a match found. Record ids are the input's; every input record has a cluster."""

    clusters: pa.Table  # record_id, cluster_id
    pairs: pa.Table  # left_id, right_id, match_weight, match_probability (≥ threshold)
    review: pa.Table  # the same columns, review_threshold ≤ match_probability < threshold
    threshold: float
    review_threshold: float | None
    spec: PersonMatchSpec
    blocking_rules: tuple[tuple[str, ...], ...]  # the spec's rules affordable on this data
    model: dict[str, Any] = field(default_factory=dict)  # trained Splink settings (prior, m, u)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.clusters.num_rows

    @property
    def cluster_count(self) -> int:
        return len(pc.unique(self.clusters.column("cluster_id")))


def match(
    records: pa.Table,
    roles: Mapping[str, str],
    threshold: float = DEFAULT_THRESHOLD,
    review_threshold: float | None = None,
    *,
    id_column: str = "record_id",
    progress: Progress | None = None,
) -> MatchResult:
    """Match `records` to one another and cluster them into people.

    `roles` maps a role (`person_records.ROLES`: first_name, full_name, birth_date, phone, …)
    to the column of `records` holding it. Pairs with a match probability at or above
    `threshold` merge; pairs at or above `review_threshold` (if given) and below `threshold`
    come back in `review`. Each run opens its own in-memory DuckDB and closes it, so nothing
    is left behind between calls; the same input gives the same result.
    """
    _check_thresholds(threshold, review_threshold)
    ids = _record_ids(records, id_column)
    seconds: dict[str, float] = {}
    clock = _Clock(progress, seconds)
    clock.start("standardising")
    people = standardise(records, roles, id_column)
    if len(people) > 1:  # an empty list has nothing to match, whatever its columns
        people = _without_shared_contacts(_without_empty_columns(people))
    spec = person_spec(people.column_names)
    if not spec.comparisons:
        raise InvalidInput(
            "没有可用于匹配的列 / no usable matching column (every mapped column is empty)",
            code="no_matching_columns",
        )
    floor = threshold if review_threshold is None else review_threshold
    scored = score_pairs(people, spec, floor, on_stage=clock.start)
    clock.start("clustering")
    merged = pc.greater_equal(scored.pairs.column("match_probability"), threshold)
    clusters = cluster(ids, scored.pairs.filter(merged))
    result = MatchResult(
        clusters=clusters,
        pairs=_with_record_ids(scored.pairs.filter(merged), ids),
        review=_with_record_ids(scored.pairs.filter(pc.invert(merged)), ids),
        threshold=threshold,
        review_threshold=review_threshold,
        spec=spec,
        blocking_rules=scored.blocking_rules,
        model=scored.model,
        seconds=seconds,
    )
    clock.stop()
    return result


def cluster(ids: pa.Array, pairs: pa.Table) -> pa.Table:
    """record_id, cluster_id for every record; `pairs` holds row numbers (unique_id_l, _r).

    A cluster is a connected component of the pairs; its id is its smallest record id (in
    numeric order when every id is an integer), so it does not depend on the pairs' order.
    """
    n = len(ids)
    left = pairs.column("unique_id_l").to_numpy()
    right = pairs.column("unique_id_r").to_numpy()
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(_id_order(ids), kind="stable")
    _, first = np.unique(labels[order], return_index=True)
    representative = order[first]  # per component label, the row with the smallest id
    cluster_rows = representative[labels]
    return pa.table({"record_id": ids, "cluster_id": ids.take(pa.array(cluster_rows))})


def _id_order(ids: pa.Array) -> np.ndarray:
    if pa.types.is_integer(ids.type):
        return ids.to_numpy(zero_copy_only=False)
    text = ids.cast(pa.string())
    if pc.all(pc.match_substring_regex(text, r"^(?:0|-?[1-9]\d{0,17})$")).as_py():
        return text.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return pc.rank(text, sort_keys="ascending", tiebreaker="first").to_numpy(zero_copy_only=False)


def _record_ids(records: pa.Table, id_column: str) -> pa.Array:
    if id_column not in records.column_names:
        raise InvalidInput(f"缺少 ID 列 / missing id column: {id_column}", code="missing_id_column")
    ids = records.column(id_column).combine_chunks()
    if ids.null_count:
        raise InvalidInput(f"ID 列有空值 / id column {id_column} has empty values", code="empty_ids")
    if len(pc.unique(ids)) != len(ids):
        counts = pc.value_counts(ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")[0].as_py()
        raise InvalidInput(f"ID 重复 / duplicate id: {dup!r} in {id_column}", code="duplicate_ids")
    return ids


def _check_thresholds(threshold: float, review_threshold: float | None) -> None:
    for name, value in (("threshold", threshold), ("review_threshold", review_threshold)):
        if value is not None and not 0 < value < 1:
            raise InvalidInput(
                f"阈值须在 0 和 1 之间 / {name} must be between 0 and 1 (exclusive), got {value}",
                code="invalid_threshold",
            )
    if review_threshold is not None and review_threshold >= threshold:
        raise InvalidInput(
            f"复核阈值须低于合并阈值 / review_threshold ({review_threshold}) must be below threshold ({threshold})",
            code="invalid_threshold",
        )


def _without_empty_columns(people: pa.Table) -> pa.Table:
    empty = [
        c for c in people.column_names if c != "unique_id" and people.column(c).null_count == len(people)
    ]
    return people.drop_columns(empty)


def _without_shared_contacts(people: pa.Table) -> pa.Table:
    for name in _CONTACT_COLUMNS:
        if name not in people.column_names:
            continue
        values = people.column(name)
        counts = pc.value_counts(values)
        shared = counts.filter(pc.greater(counts.field("counts"), MAX_RECORDS_SHARING_A_CONTACT))
        if len(shared):
            keep = pc.invert(pc.is_in(values, value_set=shared.field("values")))
            cleared = pc.if_else(keep, values, pa.scalar(None, values.type))
            people = people.set_column(people.column_names.index(name), name, cleared)
    return people


def _with_record_ids(pairs: pa.Table, ids: pa.Array) -> pa.Table:
    order = pc.sort_indices(pairs, sort_keys=[("unique_id_l", "ascending"), ("unique_id_r", "ascending")])
    pairs = pairs.take(order)
    return pa.table(
        {
            "left_id": ids.take(pairs.column("unique_id_l")),
            "right_id": ids.take(pairs.column("unique_id_r")),
            "match_weight": pairs.column("match_weight"),
            "match_probability": pairs.column("match_probability"),
        }
    )


class _Clock:
    """Reports each stage as it starts and keeps how long each took."""

    def __init__(self, progress: Progress | None, seconds: dict[str, float]) -> None:
        self._progress, self._seconds = progress, seconds
        self._stage: str | None = None
        self._started = 0.0

    def start(self, stage: str) -> None:
        self.stop()
        self._stage, self._started = stage, time.perf_counter()
        if self._progress is not None:
            self._progress(stage)

    def stop(self) -> None:
        if self._stage is not None:
            self._seconds[self._stage] = round(time.perf_counter() - self._started, 3)
            self._stage = None
