"""Identity accuracy on the demo brand: resolved profiles scored against its ground truth.

Generates the demo brand as `make demo` does (`quanyu demo --no-serve`: every event through the
collection API and the pipeline), runs a full identity rebuild, and scores the profiles with
`quanyu.identity.evaluate` (pairwise and cluster precision / recall / F1 over identifiers).

Two ceilings put recall in context, both computed from the stored events and the truth:

- **events show**: link every pair of truth identifiers that appear anywhere in one event (any
  JSON field, any column). No deterministic method can do better; what is left is pairs of one
  person's identifiers that no event ever shows together.
- **plus masked phones**: also link an event carrying a masked phone (`138****1234`, as
  marketplaces hand out) to the same person's full phone: a perfect probabilistic matcher on
  the one partial identifier the demo has.

    .venv/bin/python bench/identity_accuracy.py [--people 20000] [--seed 7] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).parent))
from dataset import write_result
from quanyu.identity.evaluate import accuracy, evaluate_workspace, label_truth, owned_identifiers, read_truth
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from quanyu.settings import Settings

TARGET_PRECISION, TARGET_RECALL = 0.995, 0.98

# Every text value an event carries, wherever it sits, paired with its message id.
_LEAVES = """
WITH mine AS (SELECT * FROM events WHERE workspace_id = $ws), leaves AS (
    SELECT message_id, user_id AS value FROM mine
    UNION ALL SELECT message_id, anonymous_id FROM mine
    UNION ALL SELECT message_id, previous_id FROM mine
    UNION ALL SELECT m.message_id, json_extract_string(j.value, '$') FROM mine m, json_tree(m.properties) j
        WHERE j.type = 'VARCHAR'
    UNION ALL SELECT m.message_id, json_extract_string(j.value, '$') FROM mine m, json_tree(m.traits) j
        WHERE j.type = 'VARCHAR'
    UNION ALL SELECT m.message_id, json_extract_string(j.value, '$') FROM mine m, json_tree(m.context) j
        WHERE j.type = 'VARCHAR'
)
SELECT DISTINCT message_id, value FROM leaves WHERE value IN (SELECT value FROM wanted)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate(data_dir: Path, people: int, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "quanyu", "demo", "--no-serve", "--reset", "--json", "--data-dir", str(data_dir),
           "--people", str(people), "--seed", str(seed), "--port", str(free_port())]  # fmt: skip
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def ceilings(db: Path, workspace_id: str, truth_csv: Path, nodes: pd.DataFrame) -> dict[str, Any]:
    """Recall ceilings over the same identifiers the evaluation scores (see the module docstring)."""
    owned = owned_identifiers(label_truth(read_truth(truth_csv).to_pandas(), IdentifierTypes(), nodes))
    items = owned.drop_duplicates("key")[["key", "id_type", "person_id"]]
    items = items[items["key"].isin(nodes["key"])].reset_index(drop=True)
    code = pd.Series(np.arange(len(items)), index=items["key"])
    by_value = owned[owned["key"].isin(items["key"])][["identifier_value", "key"]].drop_duplicates()
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.register("wanted", pa.table({"value": by_value["identifier_value"].unique()}))
        leaves = con.execute(_LEAVES, {"ws": workspace_id}).df()
        masked = con.execute(
            "SELECT message_id, coalesce(traits->>'$.phone', context->>'$.traits.phone') AS masked FROM events "
            "WHERE workspace_id = $ws AND masked LIKE '%*%'",
            {"ws": workspace_id},
        ).df()
    finally:
        con.close()
    hits = leaves.merge(by_value, left_on="value", right_on="identifier_value")[["message_id", "key"]]
    hits = hits.drop_duplicates().assign(node=lambda f: code[f["key"]].to_numpy())
    # Star per event around its first identifier, plus one identifier value under several types.
    centre = hits.groupby("message_id")["node"].transform("first").to_numpy()
    value_nodes = by_value.assign(node=code[by_value["key"]].to_numpy())
    src = [centre, value_nodes.groupby("identifier_value")["node"].transform("first").to_numpy()]
    dst = [hits["node"].to_numpy(), value_nodes["node"].to_numpy()]
    shown = _scores(items, src, dst)
    # A perfect masked-phone matcher: the event's identifiers join their person's matching phone.
    phones = items[items["id_type"] == "phone"].assign(value=lambda f: f["key"].str.removeprefix("phone:"))
    phones = phones.assign(masked=phones["value"].str[:3] + "****" + phones["value"].str[-4:])
    first = hits.drop_duplicates("message_id").merge(masked, on="message_id")
    first = first.assign(person_id=items["person_id"].to_numpy()[first["node"].to_numpy()])
    matched = first.merge(phones, on=["person_id", "masked"], suffixes=("", "_phone"))
    src.append(matched["node"].to_numpy())
    dst.append(code[matched["key_phone"]].to_numpy())
    with_masked = _scores(items, src, dst)
    return {"events_show": shown, "plus_masked_phones": with_masked}


def _scores(items: pd.DataFrame, src: list[np.ndarray], dst: list[np.ndarray]) -> dict[str, Any]:
    a, b = np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)
    n = len(items)
    _, labels = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    acc = accuracy(items["person_id"].to_numpy(), labels)
    return {"pairwise_precision": round(acc.pairwise.precision, 4), "pairwise_recall": round(acc.pairwise.recall, 4),
            "cluster_recall": round(acc.cluster.recall, 4), "correct_pairs": acc.correct_pairs}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="keep the demo here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quanyu-accuracy-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "demo"
        started = time.perf_counter()
        demo = generate(data_dir, args.people, args.seed)
        demo_s = time.perf_counter() - started
        platform = Platform(Settings(data_dir=data_dir, pipeline_enabled=False))
        try:
            workspace_id = demo["workspace_id"]
            started = time.perf_counter()
            rebuilt = rebuild(platform.warehouse, workspace_id).public()
            rebuild_s = time.perf_counter() - started
            started = time.perf_counter()
            ev = evaluate_workspace(platform.warehouse, workspace_id, data_dir / "ground_truth.csv")
            evaluate_s = time.perf_counter() - started
            nodes = platform.warehouse.execute(platform.warehouse.table("identity_nodes")).to_pandas()
        finally:
            platform.close()
        bounds = ceilings(data_dir / "warehouse.duckdb", workspace_id, data_dir / "ground_truth.csv", nodes)
    acc = ev.accuracy
    write_result(
        "identity_accuracy",
        {
            "people": args.people,
            "seed": args.seed,
            "events": demo["processed"],
            "identifiers_scored": acc.items,
            "profiles": acc.predicted_clusters,
            "pairwise": {k: round(v, 4) for k, v in vars(acc.pairwise).items()},
            "cluster": {k: round(v, 4) for k, v in vars(acc.cluster).items()},
            "pairs": {"true": acc.true_pairs, "predicted": acc.predicted_pairs, "correct": acc.correct_pairs},
            "meets_target": {
                "precision": acc.pairwise.precision >= TARGET_PRECISION,
                "recall": acc.pairwise.recall >= TARGET_RECALL,
            },
            "ceilings": bounds,
            "recall_of_pairs_events_show": round(
                acc.correct_pairs / max(bounds["events_show"]["correct_pairs"], 1), 4
            ),
            "left_out": {
                "refused": ev.refused,
                "unlinkable": ev.unlinkable,
                "shared": ev.shared,
                "missing": ev.missing,
                "unknown": ev.unknown,
            },
            "profiles_merging_people": ev.merged_profiles,
            "people_split": ev.split_people,
            "rebuild": rebuilt,
            "seconds": {
                "demo": round(demo_s, 1),
                "rebuild": round(rebuild_s, 1),
                "evaluate": round(evaluate_s, 1),
            },
        },
    )


if __name__ == "__main__":
    main()
