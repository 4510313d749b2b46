"""Accuracy against a ground truth: the metrics against brute force, the workspace report, the demo."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.collect.messages import Envelope
from quanyu.errors import InvalidInput
from quanyu.identity.evaluate import Scores, accuracy, cluster_scores, evaluate_workspace, pairwise_scores
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from testkit import Tenant, free_port, run_cli


def brute_pairwise(truth: Sequence[Any], predicted: Sequence[Any]) -> tuple[int, int, int]:
    """(correct, predicted, true) pairs, by looking at every pair."""
    pairs = list(combinations(range(len(truth)), 2))
    same_true = {(i, j) for i, j in pairs if truth[i] == truth[j]}
    same_pred = {(i, j) for i, j in pairs if predicted[i] == predicted[j]}
    return len(same_true & same_pred), len(same_pred), len(same_true)


def clusters(labels: Sequence[Any]) -> set[frozenset[int]]:
    groups: dict[Any, set[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, set()).add(i)
    return {frozenset(g) for g in groups.values()}


def ratio(hits: int, claimed: int) -> float:
    return hits / claimed if claimed else 1.0


labels = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
    )
)


@given(labels)
def test_pairwise_counts_match_every_pair_looked_at(case: tuple[list[int], list[int]]) -> None:
    truth, predicted = case
    acc = accuracy(truth, predicted)
    correct, claimed, real = brute_pairwise(truth, predicted)
    assert (acc.correct_pairs, acc.predicted_pairs, acc.true_pairs) == (correct, claimed, real)
    assert acc.pairwise.precision == pytest.approx(ratio(correct, claimed))
    assert acc.pairwise.recall == pytest.approx(ratio(correct, real))
    assert acc.items == len(truth)


@given(labels)
def test_cluster_scores_count_people_recovered_exactly(case: tuple[list[int], list[int]]) -> None:
    truth, predicted = case
    true_sets, predicted_sets = clusters(truth), clusters(predicted)
    exact = len(true_sets & predicted_sets)
    acc = accuracy(truth, predicted)
    assert acc.exact_clusters == exact
    assert (acc.true_clusters, acc.predicted_clusters) == (len(true_sets), len(predicted_sets))
    assert acc.cluster.precision == pytest.approx(exact / len(predicted_sets))
    assert acc.cluster.recall == pytest.approx(exact / len(true_sets))


@given(labels)
def test_label_names_do_not_matter_and_perfect_is_perfect(case: tuple[list[int], list[int]]) -> None:
    truth, predicted = case
    renamed = [f"profile-{p * 7 + 3}" for p in predicted]
    assert accuracy(truth, predicted) == accuracy(np.array(truth), renamed)
    perfect = accuracy(truth, [f"p{t}" for t in truth])
    assert perfect.pairwise == perfect.cluster == Scores(1.0, 1.0, 1.0)


def test_edge_cases() -> None:
    empty = accuracy([], [])
    assert empty.items == 0 and empty.pairwise == empty.cluster == Scores(1.0, 1.0, 1.0)
    singles = accuracy(["a", "b", "c"], [1, 2, 3])
    assert singles.pairwise == singles.cluster == Scores(1.0, 1.0, 1.0)
    # Everybody in one profile: every pair claimed, none right; nobody recovered.
    lumped = accuracy(["a", "b", "c", "d"], [0, 0, 0, 0])
    assert lumped.pairwise == Scores(0.0, 1.0, 0.0) and lumped.cluster == Scores(0.0, 0.0, 0.0)
    # One person split into singletons: nothing claimed wrongly, every pair missed.
    split = accuracy(["a"] * 4, [1, 2, 3, 4])
    assert split.pairwise == Scores(1.0, 0.0, 0.0) and split.cluster == Scores(0.0, 0.0, 0.0)
    assert pairwise_scores(["a", "a", "b"], [1, 1, 1]) == Scores(1 / 3, 1.0, 0.5)
    assert cluster_scores(["a", "a", "b"], [1, 1, 2]) == Scores(1.0, 1.0, 1.0)


def test_millions_of_items_are_counted_not_enumerated() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 400_000, 2_000_000)
    predicted = np.where(rng.random(2_000_000) < 0.01, -1 - truth, truth)  # 1% split off
    acc = accuracy(truth, predicted)
    assert acc.items == 2_000_000 and acc.pairwise.precision == 1.0
    assert 0.97 < acc.pairwise.recall < 0.99


def ingest(platform: Platform, tenant: Tenant, *messages: dict[str, Any]) -> None:
    source = platform.sources.get(tenant.workspace_id, tenant.source_id)
    future, _ = platform.intake.accept(source, list(messages), None, Envelope())
    future.result()
    platform.pipeline.drain()


def write_truth(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["person_id", "source_key", "identifier_type", "identifier_value"])
        writer.writerows(rows)
    return path


def test_workspace_report_says_what_it_could_not_score(
    platform: Platform, tenant: Tenant, tmp_path: Path
) -> None:
    ingest(
        platform,
        tenant,
        {
            "type": "identify",
            "userId": "u-1",
            "anonymousId": "c-1",
            "timestamp": "2026-03-01T10:00:00Z",
            "traits": {"phone": "+86 138-0000-1234"},
        },
        {
            "type": "track",
            "event": "Order Completed",
            "anonymousId": "oq3-a",
            "timestamp": "2026-03-02T10:00:00Z",
            "context": {"externalIds": [{"id": "oq3-a", "type": "wechat_openid", "app_id": "wx_oa"}]},
        },
        # A shared tablet puts two people in one profile.
        {
            "type": "track",
            "event": "Event Attended",
            "userId": "u-2",
            "timestamp": "2026-03-03T10:00:00Z",
            "context": {"device": {"id": "KIOSK-1"}},
        },
        {
            "type": "track",
            "event": "Event Attended",
            "userId": "u-3",
            "timestamp": "2026-03-04T10:00:00Z",
            "context": {"device": {"id": "KIOSK-1"}},
        },
    )
    rebuild(platform.warehouse, tenant.workspace_id)
    truth = write_truth(
        tmp_path / "truth.csv",
        [
            ("P1", "web", "user_id", "u-1"),
            ("P1", "web", "anonymous_id", "c-1"),
            ("P1", "web", "phone", "13800001234"),  # normalised to the graph's key
            ("P1", "oa", "wechat_openid", "oq3-a"),  # no scope in the truth: matched on its value
            ("P1", "oa", "anonymous_id", "oq3-a"),
            ("P1", "tmall", "phone_masked", "138****1234"),
            ("P1", "web", "anonymous_id", "null"),
            ("P1", "web", "email", "never-sent@example.com"),
            ("P2", "salon", "user_id", "u-2"),
            ("P2", "salon", "device_id", "KIOSK-1"),
            ("P3", "salon", "user_id", "u-3"),
            ("P3", "salon", "device_id", "KIOSK-1"),
        ],
    )
    ev = evaluate_workspace(platform.warehouse, tenant.workspace_id, truth)
    assert ev.refused == {"anonymous_id": 1} and ev.unlinkable == {"phone_masked": 1}
    assert ev.shared == {"device_id": 1}
    assert ev.missing == {"email": 1} and ev.missing_by_source == {"web": 1}
    assert ev.missing_examples == {"email": ["email:never-sent@example.com"]}
    # P1's openid sits apart from their login (no event links them): one split, no wrong merge.
    assert ev.accuracy.items == 7 and ev.accuracy.true_clusters == 3
    assert [s["person_id"] for s in ev.split] == ["P1"] and ev.split[0]["parts"] == 2
    assert ev.merged == [] or ev.merged[0]["parts"] == 2
    assert ev.public()["accuracy"]["pairwise"]["precision"] == ev.accuracy.pairwise.precision


def test_an_empty_truth_scores_nothing_and_a_wrong_file_says_why(
    platform: Platform, tenant: Tenant, tmp_path: Path
) -> None:
    empty = evaluate_workspace(platform.warehouse, tenant.workspace_id, write_truth(tmp_path / "t.csv", []))
    assert empty.accuracy.items == 0 and empty.missing == {} and empty.merged == []
    (tmp_path / "bad.csv").write_text("person,value\nP1,u-1\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="identifier_type"):
        evaluate_workspace(platform.warehouse, tenant.workspace_id, tmp_path / "bad.csv")
    with pytest.raises(InvalidInput, match="cannot read"):
        evaluate_workspace(platform.warehouse, tenant.workspace_id, tmp_path / "absent.csv")


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A small demo brand, scored as the pipeline resolved it."""
    d = tmp_path_factory.mktemp("evaluate") / "demo"
    run_cli(
        "demo", "--people", "300", "--no-serve", "--json", "--data-dir", str(d), "--port", str(free_port())
    )
    return d, json.loads(run_cli("identity", "evaluate", "--data-dir", str(d), "--json").stdout)


@pytest.mark.slow
def test_demo_identifiers_are_all_in_the_graph(demo_result: tuple[Path, dict[str, Any]]) -> None:
    d, result = demo_result
    assert result["missing"] == {} and result["refused"] == {}
    assert set(result["unknown"]) <= {"click_id"}  # the truth lists the ad click under its anonymous id
    human = run_cli(
        "identity", "evaluate", "--data-dir", str(d), "--ground-truth", str(d / "ground_truth.csv")
    )
    assert "成对 / pairwise" in human.stdout and "错误拆分 / wrongly split" in human.stdout


@pytest.mark.slow
def test_demo_pipeline_resolves_as_a_rebuild_does(demo_result: tuple[Path, dict[str, Any]]) -> None:
    d, result = demo_result
    rebuilt = json.loads(run_cli("identity", "evaluate", "--data-dir", str(d), "--rebuild", "--json").stdout)
    assert rebuilt["rebuilt"] is not None
    assert rebuilt["accuracy"] == result["accuracy"]


@pytest.mark.slow
def test_demo_recall_reaches_what_the_events_show(demo_result: tuple[Path, dict[str, Any]]) -> None:
    # About 41% of a person's identifier pairs share no event at all (marketplace buyers, guest
    # checkouts, cookies that never logged in), so 0.98 is out of reach for deterministic
    # stitching; it does reach that bound (docs/performance.md, "Identity accuracy"), and this
    # floor guards it.
    assert demo_result[1]["accuracy"]["pairwise"]["recall"] >= 0.55


@pytest.mark.slow
def test_demo_precision_target(demo_result: tuple[Path, dict[str, Any]]) -> None:
    assert demo_result[1]["accuracy"]["pairwise"]["precision"] >= 0.995
