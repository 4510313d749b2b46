"""How right the resolved people are: pairwise and cluster scores against a ground truth.

The items are identifiers; the truth puts each in one real person, the graph puts it in one
profile. **Pairwise** scores count pairs of identifiers placed together: precision is the
share of pairs in one profile that are one person, recall the share of one person's pairs
that ended up in one profile. The pairs are counted from the contingency table of
(person, profile) cells, never enumerated, so millions of identifiers cost one sort.
**Cluster** scores count whole people: precision is the share of profiles that are exactly
one person's identifiers, recall the share of people recovered exactly.

`evaluate_workspace()` scores a workspace's `identity_nodes` against a ground-truth CSV like
the one `quanyu demo` writes (`person_id,source_key,identifier_type,identifier_value`, and
an optional `identifier_scope`), and says what it could not score and why: values refused as
junk, partial evidence never linked on, identifiers the graph never saw, identifiers the
truth gives to several people (a store's check-in tablet); plus the worst wrong merges and
splits, with their identifiers, to debug from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from quanyu.errors import InvalidInput
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.warehouse.base import Warehouse

Labels: TypeAlias = Sequence[Any] | np.ndarray | pa.Array | pa.ChunkedArray | pd.Series
TRUTH_COLUMNS = ("person_id", "source_key", "identifier_type", "identifier_value")


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


def scores(hits: int, claimed: int, real: int) -> Scores:
    """Precision hits/claimed and recall hits/real; nothing claimed (or nothing to find) is
    never wrong (or never missed), so an empty side scores 1."""
    precision = hits / claimed if claimed else 1.0
    recall = hits / real if real else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


@dataclass(frozen=True)
class Contingency:
    """Non-empty (true cluster, predicted cluster) cells and the size of every cluster."""

    true_of_cell: np.ndarray
    predicted_of_cell: np.ndarray
    cell_size: np.ndarray
    true_size: np.ndarray
    predicted_size: np.ndarray


def contingency(truth: Labels, predicted: Labels) -> Contingency:
    """Cluster labels of any hashable kind, one per item, aligned."""
    t, p = _codes(truth), _codes(predicted)
    if len(t) != len(p):
        raise InvalidInput(f"两组标签长度不同 / label arrays differ in length: {len(t)} vs {len(p)}")
    n_pred = int(p.max()) + 1 if len(p) else 0
    cells, sizes = np.unique(t * n_pred + p, return_counts=True)
    return Contingency(
        cells // max(n_pred, 1),
        cells % max(n_pred, 1),
        sizes,
        np.bincount(t),
        np.bincount(p, minlength=n_pred),
    )


def _codes(labels: Labels) -> np.ndarray:
    if isinstance(labels, pa.Array | pa.ChunkedArray):
        labels = labels.to_numpy(zero_copy_only=False)
    values = labels if isinstance(labels, np.ndarray | pd.Series) else np.asarray(labels, dtype=object)
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _pairs(sizes: np.ndarray) -> int:
    s = sizes.astype(np.int64)
    return int((s * (s - 1) // 2).sum())


@dataclass(frozen=True)
class Accuracy:
    items: int
    true_clusters: int
    predicted_clusters: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    exact_clusters: int  # predicted clusters that are exactly one true cluster
    pairwise: Scores
    cluster: Scores


def accuracy(truth: Labels, predicted: Labels) -> Accuracy:
    """Pairwise and cluster scores of `predicted` against `truth` (aligned labels)."""
    c = contingency(truth, predicted)
    true_pairs, predicted_pairs, correct = _pairs(c.true_size), _pairs(c.predicted_size), _pairs(c.cell_size)
    exact = int(
        (
            (c.cell_size == c.true_size[c.true_of_cell])
            & (c.cell_size == c.predicted_size[c.predicted_of_cell])
        ).sum()
    )
    return Accuracy(
        items=int(c.cell_size.sum()),
        true_clusters=len(c.true_size),
        predicted_clusters=len(c.predicted_size),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        exact_clusters=exact,
        pairwise=scores(correct, predicted_pairs, true_pairs),
        cluster=scores(exact, len(c.predicted_size), len(c.true_size)),
    )


def pairwise_scores(truth: Labels, predicted: Labels) -> Scores:
    return accuracy(truth, predicted).pairwise


def cluster_scores(truth: Labels, predicted: Labels) -> Scores:
    return accuracy(truth, predicted).cluster


@dataclass(frozen=True)
class Evaluation:
    """A workspace's profiles scored against a ground truth, with what was left out and why."""

    workspace_id: str
    accuracy: Accuracy
    truth_rows: int
    truth_identifiers: int  # distinct normalised identifiers in the truth
    # By identifier type: values normalisation refused (junk, malformed, unknown type) ...
    refused: dict[str, int]
    # ... partial evidence that is never linked on (masked phones) ...
    unlinkable: dict[str, int]
    # ... identifiers the truth gives to several people (a shared tablet): nobody's alone ...
    shared: dict[str, int]
    # ... and identifiers the graph does not hold, by type and by source, with examples.
    missing: dict[str, int]
    missing_by_source: dict[str, int]
    missing_examples: dict[str, list[str]]
    # Graph identifiers the truth does not know (junk that got through, or a truth gap).
    unknown: dict[str, int]
    unknown_examples: dict[str, list[str]]
    merged_profiles: int  # profiles holding identifiers of several people
    split_people: int  # people whose identifiers are in several profiles
    merged: list[dict[str, Any]] = field(default_factory=list)  # worst wrong merges
    split: list[dict[str, Any]] = field(default_factory=list)  # worst wrong splits

    def public(self) -> dict[str, Any]:
        return asdict(self)


def read_truth(path: Path) -> pa.Table:
    """The ground-truth CSV, every column as text; `identifier_scope` is optional."""
    try:
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(TRUTH_COLUMNS, pa.string()))
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"无法读取基准数据 / cannot read ground truth {path}: {exc}") from None
    absent = [c for c in TRUTH_COLUMNS if c not in table.column_names]
    if absent:
        raise InvalidInput(f"基准数据缺少列 / ground truth {path} lacks columns: {', '.join(absent)}")
    if "identifier_scope" not in table.column_names:
        table = table.append_column("identifier_scope", pa.array([""] * table.num_rows, pa.string()))
    return table.select([*TRUTH_COLUMNS, "identifier_scope"])


def nodes_query(nodes: ibis.Table, workspace_id: str) -> ibis.Table:
    return nodes.filter(nodes.workspace_id == workspace_id).select("key", "id_type", "value", "profile_id")


def evaluate_workspace(
    warehouse: Warehouse,
    workspace_id: str,
    ground_truth_csv: Path,
    types: IdentifierTypes | None = None,
    examples: int = 5,
) -> Evaluation:
    """Score the workspace's resolved profiles (`identity_nodes`) against the ground truth."""
    types = types or IdentifierTypes()
    truth = read_truth(Path(ground_truth_csv)).to_pandas()
    nodes = warehouse.execute(nodes_query(warehouse.table("identity_nodes"), workspace_id)).to_pandas()
    labelled = label_truth(truth, types, nodes)
    status = labelled["status"]
    owned = owned_identifiers(labelled)
    linked = labelled[status == "ok"]
    shared = linked[~linked["key"].isin(owned["key"])].drop_duplicates(["key"])
    items = owned.drop_duplicates(["key"])[["key", "id_type", "person_id"]]
    items = items.merge(nodes[["key", "profile_id"]], on="key", how="left")
    absent = items["profile_id"].isna()
    present, missing = items[~absent], items[absent]
    missing_rows = owned[owned["key"].isin(missing["key"])].drop_duplicates(["key", "source_key"])
    unknown = nodes[~nodes["key"].isin(labelled["key"].dropna())]
    return Evaluation(
        workspace_id=workspace_id,
        accuracy=accuracy(present["person_id"].to_numpy(), present["profile_id"].to_numpy()),
        truth_rows=len(truth),
        truth_identifiers=int(labelled["key"].nunique()),
        refused=_by_type(labelled[status == "refused"].drop_duplicates(["id_type", "identifier_value"])),
        unlinkable=_by_type(
            labelled[status == "unlinkable"].drop_duplicates(["id_type", "identifier_value"])
        ),
        shared=_by_type(shared),
        missing=_by_type(missing),
        missing_by_source=_counts(missing_rows["source_key"]),
        missing_examples=_examples(missing, "key", examples),
        unknown=_by_type(unknown),
        unknown_examples=_examples(unknown, "key", examples),
        merged_profiles=_spread(present, "profile_id", "person_id"),
        split_people=_spread(present, "person_id", "profile_id"),
        merged=_worst_merges(present, types, examples),
        split=_worst_splits(present, types, examples),
    )


def label_truth(truth: pd.DataFrame, types: IdentifierTypes, nodes: pd.DataFrame) -> pd.DataFrame:
    """Each truth row with its identifier key (as `identity_nodes.key`), normalised type and a
    status: ok, refused (junk, malformed, unknown type) or unlinkable (partial evidence).

    A scoped identifier (openid) without a scope in the truth is matched on type and value:
    openids are unique enough that one node at most holds a given one.
    """
    raw = truth[["identifier_type", "identifier_value", "identifier_scope"]].fillna("")
    distinct = raw.drop_duplicates()
    by_value = nodes.drop_duplicates(["id_type", "value"], keep=False).set_index(["id_type", "value"])["key"]
    keys, kinds, states = [], [], []
    for id_type, value, scope in distinct.itertuples(index=False):
        key, kind, state = _identify(types, id_type, value, scope, by_value)
        keys.append(key)
        kinds.append(kind)
        states.append(state)
    columns = {"key": keys, "id_type": kinds, "status": states}
    distinct = distinct.assign(
        **{k: pd.Series(v, index=distinct.index, dtype=object) for k, v in columns.items()}
    )
    return truth.fillna({"identifier_scope": ""}).merge(
        distinct, on=["identifier_type", "identifier_value", "identifier_scope"], how="left"
    )


def owned_identifiers(labelled: pd.DataFrame) -> pd.DataFrame:
    """The linkable truth rows whose identifier belongs to one person only: what is scored.
    An identifier the truth gives to several people (a store's tablet) is nobody's alone."""
    linked = labelled[labelled["status"] == "ok"]
    people = linked.groupby("key")["person_id"].nunique()
    return linked[linked["key"].isin(people.index[people == 1])]


def _identify(
    types: IdentifierTypes, id_type: str, value: str, scope: str, by_value: pd.Series
) -> tuple[str | None, str, str]:
    if id_type not in types:
        return None, id_type, "refused"
    unscoped = types.get(id_type).scoped and not scope
    ident = types.identify(id_type, value, "?" if unscoped else scope)
    if ident is None:
        return None, id_type, "refused"
    if not types.get(ident.type).links:
        return ident.key, ident.type, "unlinkable"
    if unscoped:
        # The graph's node of this type and value, whatever its app; else an unscoped key
        # that no node has, so the identifier counts as missing.
        return str(by_value.get((ident.type, ident.value), f"{ident.type}:?:{ident.value}")), ident.type, "ok"
    return ident.key, ident.type, "ok"


def _by_type(frame: pd.DataFrame) -> dict[str, int]:
    return _counts(frame["id_type"])


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.value_counts().items()}


def _examples(frame: pd.DataFrame, column: str, n: int) -> dict[str, list[str]]:
    return {str(t): group[column].head(n).tolist() for t, group in frame.groupby("id_type", sort=True)}


def _spread(present: pd.DataFrame, whole: str, part: str) -> int:
    return int((present.groupby(whole)[part].nunique() > 1).sum())


_SHOWN = 8  # identifiers shown per person or profile in an example, strongest first


def _worst_merges(present: pd.DataFrame, types: IdentifierTypes, n: int) -> list[dict[str, Any]]:
    """Profiles holding several people: most people first, then the largest."""
    return _worst(present, types, "profile_id", "person_id", n)


def _worst_splits(present: pd.DataFrame, types: IdentifierTypes, n: int) -> list[dict[str, Any]]:
    """People spread over several profiles: most profiles first, then the largest."""
    return _worst(present, types, "person_id", "profile_id", n)


def _worst(
    present: pd.DataFrame, types: IdentifierTypes, whole: str, part: str, n: int
) -> list[dict[str, Any]]:
    grouped = present.groupby(whole)
    ranked = pd.DataFrame({"parts": grouped[part].nunique(), "size": grouped.size()})
    ranked = (
        ranked[ranked["parts"] > 1].sort_values(["parts", "size"], ascending=False, kind="stable").head(n)
    )
    priority = {t.name: t.priority for t in types}
    chosen = present[present[whole].isin(ranked.index)]
    rank = -chosen["id_type"].map(priority).astype("int64")
    chosen = chosen.assign(rank=rank).sort_values([whole, part, "rank", "key"])
    out = []
    for name, row in ranked.iterrows():
        rows = chosen[chosen[whole] == name]
        members = [
            {part: p, "identifiers": len(g), "keys": g["key"].head(_SHOWN).tolist()}
            for p, g in rows.groupby(part, sort=True)
        ]
        out.append(
            {whole: name, "parts": int(row["parts"]), "identifiers": int(row["size"]), "members": members}
        )
    return out
