"""Saved segments in the operational store (SQLite and PostgreSQL): versions are kept, names are
unique among live segments, references to unknown segments and cycles are refused with the path
of the node, and a segment another one uses cannot be deleted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from quanyu.errors import Conflict, InvalidInput, NotFound
from quanyu.org.workspaces import Workspaces
from quanyu.segments.event_groups import EventGroupSpec
from quanyu.segments.saved import SavedSegments, SegmentCreate, SegmentUpdate
from quanyu.store import make_engine, upgrade

BUYERS = {"conditions": [{"event": "Order Completed", "window": {"last": 90, "unit": "day"}}]}
SHANGHAI = {"conditions": [{"trait": "city", "op": "in", "value": ["上海", "杭州"]}]}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> SavedSegments:
    return SavedSegments(engine)


@pytest.fixture
def ws(engine: Engine) -> str:
    return Workspaces(engine).create("茶 Tea").id


def uses(*ids: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"segment": i} for i in ids]
    return {
        "match": "all",
        "conditions": [extra or {"tag": "VIP"}, {"match": "any", "conditions": conditions}],
    }


def create(store: SavedSegments, ws: str, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    return store.create(ws, SegmentCreate(name=name, definition=definition), "token:tok_a")


def test_every_update_is_a_new_version_and_the_old_ones_stay(store: SavedSegments, ws: str) -> None:
    made = create(store, ws, "买家 Buyers", BUYERS)
    assert made["id"].startswith("seg_") and made["version"] == 1 and made["definition"] == BUYERS
    store.update(ws, made["id"], SegmentUpdate(definition=SHANGHAI), "token:tok_b")
    renamed = store.update(ws, made["id"], SegmentUpdate(name="沪杭 Shanghai/Hangzhou"), "token:tok_c")

    assert renamed["version"] == 3 and renamed["name"] == "沪杭 Shanghai/Hangzhou"
    assert renamed["definition"] == SHANGHAI
    history = [(v["version"], v["name"], v["definition"], v["created_by"]) for v in renamed["versions"]]
    assert history == [
        (3, "沪杭 Shanghai/Hangzhou", SHANGHAI, "token:tok_c"),
        (2, "买家 Buyers", SHANGHAI, "token:tok_b"),
        (1, "买家 Buyers", BUYERS, "token:tok_a"),
    ]
    assert renamed["created_by"] == "token:tok_a" and renamed["updated_by"] == "token:tok_c"
    assert store.current(ws, made["id"])[0] == 3


def test_names_are_unique_among_live_segments_of_a_workspace(
    store: SavedSegments, ws: str, engine: Engine
) -> None:
    first = create(store, ws, "高价值 VIP", BUYERS)
    with pytest.raises(Conflict) as taken:
        create(store, ws, "高价值 VIP", SHANGHAI)
    assert taken.value.code == "segment_name_taken"
    other = create(store, ws, "其他 Other", SHANGHAI)
    with pytest.raises(Conflict):
        store.update(ws, other["id"], SegmentUpdate(name="高价值 VIP"), "me")
    elsewhere = Workspaces(engine).create("另一个 Other brand").id
    assert create(store, elsewhere, "高价值 VIP", BUYERS)["name"] == "高价值 VIP"

    store.delete(ws, first["id"], "me")
    again = create(store, ws, "高价值 VIP", SHANGHAI)
    assert again["id"] != first["id"]
    assert [s["name"] for s in store.all(ws)] == ["其他 Other", "高价值 VIP"]


def test_a_bad_definition_is_refused_with_the_path_of_the_node(store: SavedSegments, ws: str) -> None:
    bad = {
        "conditions": [
            {"trait": "city"},
            {"event": "Order Completed", "where": [{"property": "amount", "op": "about"}]},
        ]
    }
    with pytest.raises(InvalidInput) as refused:
        create(store, ws, "坏 Bad", bad)
    assert refused.value.code == "invalid_segment"
    assert refused.value.details[0]["path"] == "conditions[1].where[0].op"
    assert store.all(ws) == []


def test_unknown_segments_and_cycles_are_refused(store: SavedSegments, ws: str) -> None:
    with pytest.raises(InvalidInput) as unknown:
        create(store, ws, "A", uses("seg_nowhere"))
    assert unknown.value.code == "unknown_segment"
    assert unknown.value.details[0]["path"] == "conditions[1].conditions[0].segment"

    a = create(store, ws, "A", BUYERS)
    b = create(store, ws, "B", uses(a["id"]))
    c = create(store, ws, "C", {"conditions": [{"not": {"segment": b["id"]}}]})
    with pytest.raises(InvalidInput) as cycle:
        store.update(ws, a["id"], SegmentUpdate(definition=uses(c["id"])), "me")
    assert cycle.value.code == "segment_cycle"
    detail = cycle.value.details[0]
    assert detail["path"] == "conditions[1].conditions[0].segment"
    assert detail["cycle"] == [a["id"], c["id"], b["id"], a["id"]]
    assert store.get(ws, a["id"])["version"] == 1  # nothing was saved

    with pytest.raises(InvalidInput) as itself:
        store.update(ws, b["id"], SegmentUpdate(definition={"conditions": [{"segment": b["id"]}]}), "me")
    assert itself.value.code == "segment_cycle" and itself.value.details[0]["path"] == "conditions[0].segment"


def test_a_segment_in_use_cannot_be_deleted(store: SavedSegments, ws: str) -> None:
    a = create(store, ws, "A", BUYERS)
    b = create(store, ws, "B", uses(a["id"]))
    with pytest.raises(Conflict) as in_use:
        store.delete(ws, a["id"], "me")
    assert in_use.value.code == "segment_in_use" and in_use.value.details == {"used_by": [b["id"]]}

    store.update(ws, b["id"], SegmentUpdate(definition=SHANGHAI), "me")
    gone = store.delete(ws, a["id"], "token:tok_z")
    assert gone["deleted_by"] == "token:tok_z"
    with pytest.raises(NotFound) as missing:
        store.get(ws, a["id"])
    assert missing.value.code == "segment_not_found"
    assert store.definition(ws, a["id"]) is None
    with pytest.raises(InvalidInput):  # a deleted segment is unknown to new definitions
        store.update(ws, b["id"], SegmentUpdate(definition=uses(a["id"])), "me")


def test_segments_of_another_workspace_are_invisible(store: SavedSegments, ws: str, engine: Engine) -> None:
    other = Workspaces(engine).create("别家 Someone else").id
    theirs = create(store, other, "Theirs", BUYERS)
    with pytest.raises(NotFound):
        store.get(ws, theirs["id"])
    with pytest.raises(InvalidInput):
        create(store, ws, "Mine", uses(theirs["id"]))


def test_event_groups_are_declared_per_workspace(store: SavedSegments, ws: str, engine: Engine) -> None:
    groups = store.event_groups
    touch = EventGroupSpec(
        events=["Message Delivered", "Coupon Sent", "Message Delivered"], description="触达"
    )
    saved = groups.put(ws, "touch", touch, "token:tok_a")
    assert saved["events"] == ["Message Delivered", "Coupon Sent"] and saved["updated_by"] == "token:tok_a"
    groups.put(ws, "touch", EventGroupSpec(events=["Message Delivered"]), "token:tok_b")
    assert groups.mapping(ws) == {"touch": ["Message Delivered"]}
    assert groups.mapping(Workspaces(engine).create("x").id) == {}
    with pytest.raises(NotFound):
        groups.get(ws, "nothing")
    with pytest.raises(InvalidInput):
        groups.put(ws, "has space", touch, "me")
