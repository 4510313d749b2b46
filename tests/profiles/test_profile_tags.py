"""Manual tags (add, remove, merges) and rule-based tags, as an append-only log."""

from __future__ import annotations

from typing import Any

import pytest
from profilekit import Ledger, row_of

from quanyu.errors import Conflict, InvalidInput, NotFound
from quanyu.profiles import add_tag, profile_tags, profile_view, refresh, remove_tag, search

BIG_SPENDER = {"tag": "高价值", "all": [{"field": "net_revenue", "op": ">=", "value": 1000}]}
TMALL_FAN = {"tag": "天猫粉", "all": [{"field": "preferred_channel", "op": "=", "value": "tmall"}]}


def _log(ledger: Ledger) -> list[tuple[str, str, str, str, str]]:
    log = ledger.warehouse.table("profile_tags")
    rows = ledger.warehouse.execute(log.order_by(["at", "profile_id", "op"])).to_pylist()
    return [(r["profile_id"], r["tag"], r["source"], r["op"], r["actor"]) for r in rows]


def _tags(ledger: Ledger, person: str) -> list[str]:
    row = row_of(ledger.warehouse, ledger.workspace_id, f"prof_{person}")
    assert row is not None
    return list(row["tags"])


@pytest.fixture
def shop(ledger: Ledger) -> Ledger:
    ledger.order("ann", 1, 800.0)
    ledger.order("ann", 2, 400.0)
    ledger.order("bob", 3, 50.0, source_type="jd")
    ledger.store()
    refresh(ledger.warehouse, ledger.workspace_id)
    return ledger


def test_manual_tags(shop: Ledger) -> None:
    w, ws = shop.warehouse, shop.workspace_id
    tags = add_tag(w, ws, "prof_bob", " VIP ", "alice")
    assert [(t["tag"], t["source"], t["actor"]) for t in tags] == [("VIP", "manual", "alice")]
    add_tag(w, ws, "prof_bob", "VIP", "carol")  # already held: nothing new
    assert _log(shop) == [("prof_bob", "VIP", "manual", "add", "alice")]
    view = profile_view(w, ws, "prof_bob")
    assert view is not None and [t["tag"] for t in view["tags"]] == ["VIP"]  # live, before any refresh
    refresh(w, ws, ["prof_bob"])
    assert _tags(shop, "bob") == ["VIP"]
    assert [p["profile_id"] for p in search(w, ws, tags=["VIP"])["profiles"]] == ["prof_bob"]
    assert remove_tag(w, ws, "prof_bob", "VIP", "alice") == []
    with pytest.raises(NotFound):
        remove_tag(w, ws, "prof_bob", "VIP", "alice")
    with pytest.raises(NotFound):
        add_tag(w, ws, "prof_nobody", "VIP", "alice")
    with pytest.raises(InvalidInput):
        add_tag(w, ws, "prof_bob", "", "alice")
    refresh(w, ws, ["prof_bob"])
    assert _tags(shop, "bob") == []


def test_rule_tags_follow_the_data_and_are_logged(shop: Ledger) -> None:
    w, ws = shop.warehouse, shop.workspace_id
    rules: list[dict[str, Any]] = [BIG_SPENDER, TMALL_FAN]
    refresh(w, ws, rules=rules)
    assert (_tags(shop, "ann"), _tags(shop, "bob")) == (["天猫粉", "高价值"], [])
    with pytest.raises(Conflict):
        remove_tag(w, ws, "prof_ann", "高价值", "alice")
    refresh(w, ws, rules=rules)  # nothing changed: nothing logged
    assert len(_log(shop)) == 2
    shop.add("ann", 4, "tmall", "Order Refunded", order_id=shop.events[0]["order_id"], amount=800.0)
    shop.store()
    refresh(w, ws, ["prof_ann"], rules=rules)
    assert _tags(shop, "ann") == ["天猫粉"]
    assert _log(shop)[-1] == ("prof_ann", "高价值", "rule", "remove", "rule")
    assert [t["tag"] for t in profile_tags(w, ws, "prof_ann")] == ["天猫粉"]


def test_tags_move_to_the_survivor_of_a_merge(shop: Ledger) -> None:
    w, ws = shop.warehouse, shop.workspace_id
    add_tag(w, ws, "prof_bob", "VIP", "alice")
    refresh(w, ws, rules=[TMALL_FAN])
    shop.merge("ann", into="bob")
    result = refresh(w, ws, ["prof_ann"], rules=[TMALL_FAN])  # the survivor is refreshed too
    assert (result.profiles, result.removed) == (1, 1)
    assert row_of(w, ws, "prof_ann") is None
    assert _tags(shop, "bob") == ["VIP", "天猫粉"]  # 2 tmall orders, 1 jd: still a tmall fan
    assert ("prof_ann", "天猫粉", "rule", "remove", "merge") in _log(shop)
    view = profile_view(w, ws, "prof_ann")
    assert view is not None and view["profile_id"] == "prof_bob" and view["redirected_from"] == "prof_ann"
    # Tagging the old id tags the survivor.
    add_tag(w, ws, "prof_ann", "回访", "alice")
    assert [t["tag"] for t in profile_tags(w, ws, "prof_bob")] == ["VIP", "回访", "天猫粉"]


def test_manual_tags_of_a_merged_away_id_move(shop: Ledger) -> None:
    w, ws = shop.warehouse, shop.workspace_id
    add_tag(w, ws, "prof_ann", "VIP", "alice")
    shop.merge("ann", into="bob")
    refresh(w, ws)  # a full refresh finds them too
    assert _tags(shop, "bob") == ["VIP"]
    assert ("prof_ann", "VIP", "manual", "remove", "merge:prof_ann") in _log(shop)
    assert ("prof_bob", "VIP", "manual", "add", "merge:prof_ann") in _log(shop)
    assert profile_tags(w, ws, "prof_ann") == []
    assert refresh(w, ws).tag_changes == 0  # moved once


def test_a_bad_rule_stops_the_refresh_before_anything_is_written(shop: Ledger) -> None:
    before = row_of(shop.warehouse, shop.workspace_id, "prof_ann")
    bad = {"tag": "高价值", "all": [{"field": "net_revenue", "op": ">=", "value": "1000"}]}
    with pytest.raises(InvalidInput) as caught:
        refresh(shop.warehouse, shop.workspace_id, rules=[TMALL_FAN, bad])
    assert "needs a number" in caught.value.message
    assert row_of(shop.warehouse, shop.workspace_id, "prof_ann") == before
    assert profile_view(shop.warehouse, shop.workspace_id, "prof_nobody") is None
