"""The graph as rows: identifier nodes and evidenced links, merged from old and new data.

Both the full rebuild and the incremental stitch feed the stitcher the same way: stored rows of
the part of the graph they recompute plus rows from new records, merged here so that a node
keeps its earliest sighting and a link its earliest evidence, whatever order they arrived in.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.identity.extract import Links

# In memory, times are epoch micros (int64), as the stitcher wants them.
NODE_ROWS = pa.schema(
    [("key", pa.string()), ("id_type", pa.string()), ("value", pa.string()), ("scope", pa.string()),
     ("first_seen", pa.int64())]
)  # fmt: skip
EDGE_ROWS = pa.schema(
    [("a_key", pa.string()), ("b_key", pa.string()), ("first_seen", pa.int64()),
     ("message_id", pa.string()), ("channel", pa.string()), ("source_type", pa.string()),
     ("kind", pa.string())]
)  # fmt: skip


def nodes_from_links(found: Links) -> pa.Table:
    """Every identifier the new records carry, with the earliest time it was seen."""
    keys = pa.chunked_array([found.a_keys, found.b_keys, found.single_keys], pa.string())
    seen = np.concatenate([found.seen, found.seen, found.single_seen]).astype(np.int64)
    firsts = pa.table({"key": keys, "first_seen": seen}).group_by("key").aggregate([("first_seen", "min")])
    parts = [found.identifiers[k] for k in firsts["key"].to_pylist()]
    return pa.table(
        {"key": firsts["key"], "id_type": [p[0] for p in parts], "value": [p[1] for p in parts],
         "scope": [p[2] for p in parts], "first_seen": firsts["first_seen_min"]},
        schema=NODE_ROWS,
    )  # fmt: skip


def edges_from_links(found: Links) -> pa.Table:
    ev = found.evidence
    return pa.table(
        {"a_key": found.a_keys, "b_key": found.b_keys, "first_seen": pa.array(found.seen, pa.int64()),
         "message_id": ev["message_id"], "channel": ev["channel"], "source_type": ev["source_type"],
         "kind": pa.array(["record"] * len(found.seen), pa.string())},
        schema=EDGE_ROWS,
    )  # fmt: skip


def merge_nodes(*parts: pa.Table) -> pa.Table:
    """One row per key, with its earliest sighting."""
    rows = pa.concat_tables([p.select(NODE_ROWS.names).cast(NODE_ROWS) for p in parts])
    merged = rows.group_by("key").aggregate(
        [("id_type", "min"), ("value", "min"), ("scope", "min"), ("first_seen", "min")]
    )
    return merged.rename_columns([n.removesuffix("_min") for n in merged.column_names]).select(
        NODE_ROWS.names
    )


def merge_edges(*parts: pa.Table) -> pa.Table:
    """One row per unordered identifier pair (stored as a_key < b_key), keeping the earliest
    evidence (ties: the smaller message id, so the choice never depends on arrival order)."""
    rows = pa.concat_tables([p.select(EDGE_ROWS.names).cast(EDGE_ROWS) for p in parts])
    a, b = rows["a_key"], rows["b_key"]
    swap = pc.greater(a, b)
    rows = rows.set_column(0, "a_key", pc.if_else(swap, b, a)).set_column(1, "b_key", pc.if_else(swap, a, b))
    rows = rows.filter(pc.not_equal(rows["a_key"], rows["b_key"]))
    rows = rows.sort_by([("first_seen", "ascending"), ("message_id", "ascending")])
    firsts = [(c, "first") for c in EDGE_ROWS.names[2:]]
    merged = rows.group_by(["a_key", "b_key"], use_threads=False).aggregate(firsts)
    return merged.rename_columns([n.removesuffix("_first") for n in merged.column_names]).select(
        EDGE_ROWS.names
    )


def pair_keys(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray) -> pa.Array:
    """An unordered pair as one string, for set membership (exclusions)."""
    lo = pc.if_else(pc.less_equal(a, b), a, b)
    hi = pc.if_else(pc.less_equal(a, b), b, a)
    joined = pc.binary_join_element_wise(lo, hi, "\x1f")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
