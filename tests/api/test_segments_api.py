"""The segment APIs as a console or a script uses them: preview a definition, save it, change it
(versions kept), refresh members on demand, page through them, export them (CSV formula cells
neutralised), read the log, declare event groups; bad definitions are 400 with the path of the
bad node, and a query past its time limit is 504 `segment_timeout`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from profiles.profilekit import Ledger
from quanyu.api import create_app
from quanyu.platform import Platform
from quanyu.profiles.materialise import refresh
from segments.segmentkit import EVIL_NAME, seed
from testkit import Tenant, make_settings, new_tenant

BUYERS = {"conditions": [{"event": "Order Completed"}]}
BIG_SPENDERS = {"conditions": [{"trait": "revenue", "op": "gte", "value": 150}]}


def call(client: TestClient, tenant: Tenant, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    resp = client.request(method, path, headers=tenant.bearer, **kw)
    assert resp.status_code == status, resp.text
    return resp.json()


def error(
    client: TestClient, tenant: Tenant, method: str, path: str, status: int, **kw: Any
) -> dict[str, Any]:
    body = call(client, tenant, method, path, status, **kw)
    assert set(body) >= {"code", "message"}
    return body


@pytest.fixture
def shop(platform: Platform, tenant: Tenant) -> Ledger:
    return seed(platform, tenant.workspace_id)


def test_schema_and_preview(client: TestClient, tenant: Tenant, shop: Ledger) -> None:
    schema = call(client, tenant, "GET", "/api/v1/segments/schema")
    assert schema["$id"].endswith("segment-definition-v1.json") and "conditions" in schema["properties"]

    body = call(client, tenant, "POST", "/api/v1/segments/preview", json={"definition": BUYERS, "sample": 2})
    assert body["count"] == 3
    assert [p["profile_id"] for p in body["sample"]] == ["prof_evil", "prof_han"]
    assert set(body["sample"][1]) >= {
        "profile_id",
        "name",
        "city",
        "preferred_channel",
        "order_count",
        "revenue",
    }
    assert body["sample"][1]["name"] == "韩梅"
    channels = {b["value"]: b["count"] for b in body["breakdown"]["first_touch_channel"]}
    assert channels == {"tmall": 1, "jd": 1, "pos": 1}
    assert sum(b["count"] for b in body["breakdown"]["preferred_channel"]) == 3
    assert {b["value"] for b in body["breakdown"]["first_touch_source"]} == {"tmall", "jd", "pos"}
    assert {b["value"]: b["count"] for b in body["breakdown"]["domain"]} == {
        "public_only": 1,
        "both": 1,
        "private_only": 1,
    }
    assert body["sql"].lstrip().startswith("SELECT") and "Order Completed" in body["sql"]
    assert isinstance(body["elapsed_ms"], int)


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"conditions": [{"trait": "city", "op": "like"}]}, "conditions[0].op"),
        ({"conditions": [{"colour": "red"}]}, "conditions[0]"),
        ({"conditions": [{"tag": "VIP"}, {"not": {"segment": "seg_missing"}}]}, "conditions[1].not.segment"),
        ({"conditions": [{"event_group": "touch"}]}, "conditions[0].event_group"),
        ({"conditions": [{"trait": "no such field!", "op": "exists"}]}, "conditions[0].trait"),
    ],
)
def test_bad_definitions_are_400_with_the_path(
    client: TestClient, tenant: Tenant, definition: dict[str, Any], path: str
) -> None:
    for method, url, body in (
        ("POST", "/api/v1/segments/preview", {"definition": definition}),
        ("POST", "/api/v1/segments", {"name": "坏 Bad", "definition": definition}),
    ):
        refused = error(client, tenant, method, url, 400, json=body)
        assert refused["code"] in ("invalid_segment", "unknown_segment"), refused
        assert refused["details"][0]["path"] == path, refused


def test_crud_versions_refresh_members_and_log(client: TestClient, tenant: Tenant, shop: Ledger) -> None:
    made = call(client, tenant, "POST", "/api/v1/segments", 201,
                json={"name": "买家 Buyers", "description": "下过单 ordered", "definition": BUYERS})  # fmt: skip
    sid = made["id"]
    assert made["version"] == 1 and made["created_by"].startswith("token:")
    assert error(client, tenant, "POST", "/api/v1/segments", 409,
                 json={"name": "买家 Buyers", "definition": BUYERS})["code"] == "segment_name_taken"  # fmt: skip
    listed = call(client, tenant, "GET", "/api/v1/segments")["items"]
    assert [(s["id"], s["mode"]) for s in listed] == [(sid, "realtime")]
    assert listed[0]["reasons"][0]["path"] == "(root)" and "realtime" in listed[0]["reasons"][0]["message"]

    ran = call(client, tenant, "POST", f"/api/v1/segments/{sid}/refresh")
    assert (ran["members"], ran["entered"], ran["exited"], ran["mode"]) == (3, 3, 0, "on_demand")
    changed = call(client, tenant, "PUT", f"/api/v1/segments/{sid}", json={"definition": BIG_SPENDERS})
    assert changed["version"] == 2 and [v["version"] for v in changed["versions"]] == [2, 1]
    assert changed["versions"][1]["definition"] == BUYERS
    ran = call(client, tenant, "POST", f"/api/v1/segments/{sid}/refresh")
    assert (ran["version"], ran["members"], ran["entered"], ran["exited"]) == (2, 2, 0, 1)

    members = call(client, tenant, "GET", f"/api/v1/segments/{sid}/members", params={"limit": 1})
    assert members["total"] == 2 and members["items"][0]["profile_id"] == "prof_han"
    rest = call(client, tenant, "GET", f"/api/v1/segments/{sid}/members",
                params={"limit": 1, "cursor": members["next_cursor"]})  # fmt: skip
    assert [m["profile_id"] for m in rest["items"]] == ["prof_li"] and rest["next_cursor"] is None

    log = call(client, tenant, "GET", f"/api/v1/segments/{sid}/log", params={"kind": "exited"})
    assert [(e["profile_id"], e["version"]) for e in log["items"]] == [("prof_evil", 2)]
    full = call(client, tenant, "GET", f"/api/v1/segments/{sid}/log")["items"]
    assert len(full) == 4 and full[0]["kind"] == "exited"
    shown = call(client, tenant, "GET", f"/api/v1/segments/{sid}")
    assert shown["membership"]["members"] == 2 and shown["definition"] == BIG_SPENDERS
    assert shown["mode"] == "realtime"

    assert error(client, tenant, "GET", f"/api/v1/segments/{sid}/members", 400,
                 params={"cursor": "not a cursor"})["code"] == "invalid_cursor"  # fmt: skip
    call(client, tenant, "DELETE", f"/api/v1/segments/{sid}")
    for method, path in (
        ("GET", ""),
        ("GET", "/members"),
        ("GET", "/log"),
        ("POST", "/refresh"),
        ("DELETE", ""),
    ):
        assert (
            error(client, tenant, method, f"/api/v1/segments/{sid}{path}", 404)["code"] == "segment_not_found"
        )


def test_cycles_and_deleting_a_used_segment(client: TestClient, tenant: Tenant) -> None:
    a = call(client, tenant, "POST", "/api/v1/segments", 201, json={"name": "A", "definition": BUYERS})["id"]
    b = call(client, tenant, "POST", "/api/v1/segments", 201,
             json={"name": "B", "definition": {"conditions": [{"segment": a}]}})["id"]  # fmt: skip
    cycle = error(client, tenant, "PUT", f"/api/v1/segments/{a}", 400,
                  json={"definition": {"match": "any", "conditions": [{"tag": "VIP"}, {"segment": b}]}})  # fmt: skip
    assert cycle["code"] == "segment_cycle"
    assert cycle["details"][0]["path"] == "conditions[1].segment" and cycle["details"][0]["cycle"] == [
        a,
        b,
        a,
    ]
    in_use = error(client, tenant, "DELETE", f"/api/v1/segments/{a}", 409)
    assert in_use["code"] == "segment_in_use" and in_use["details"] == {"used_by": [b]}


def test_exports_neutralise_formula_cells(client: TestClient, tenant: Tenant, shop: Ledger) -> None:
    sid = call(client, tenant, "POST", "/api/v1/segments", 201, json={"name": "all", "definition": {
        "match": "any", "conditions": [{"event": "Order Completed"}, {"event": "Page Viewed"}]}})["id"]  # fmt: skip
    call(client, tenant, "POST", f"/api/v1/segments/{sid}/refresh")

    resp = client.get(f"/api/v1/segments/{sid}/members", params={"format": "csv"}, headers=tenant.bearer)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert f'filename="{sid}.csv"' in resp.headers["content-disposition"]
    assert resp.content.startswith("\ufeff".encode())
    rows = {r["profile_id"]: r for r in csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig")))}
    assert set(rows) == {"prof_li", "prof_han", "prof_mei", "prof_evil"}
    assert rows["prof_evil"]["name"] == "'" + EVIL_NAME
    assert rows["prof_evil"]["city"] == "'-2+3" and rows["prof_mei"]["city"] == "'@北京"
    assert rows["prof_li"]["name"] == "李雷" and rows["prof_li"]["revenue"] == "200"

    resp = client.get(f"/api/v1/segments/{sid}/members", params={"format": "parquet"}, headers=tenant.bearer)
    table = pq.read_table(io.BytesIO(resp.content))
    named = dict(zip(table.column("profile_id").to_pylist(), table.column("name").to_pylist(), strict=True))
    assert named["prof_evil"] == EVIL_NAME  # typed columns: nothing to neutralise


def test_event_groups(client: TestClient, tenant: Tenant, shop: Ledger) -> None:
    assert call(client, tenant, "GET", "/api/v1/segments/event-groups") == {"items": []}
    put = call(client, tenant, "PUT", "/api/v1/segments/event-groups/touch",
               json={"events": ["Message Delivered"], "description": "触达 what counts as reached"})  # fmt: skip
    assert put["name"] == "touch" and put["events"] == ["Message Delivered"]
    assert call(client, tenant, "GET", "/api/v1/segments/event-groups/touch")["events"] == [
        "Message Delivered"
    ]
    assert (
        error(client, tenant, "GET", "/api/v1/segments/event-groups/nope", 404)["code"]
        == "event_group_not_found"
    )
    assert error(client, tenant, "PUT", "/api/v1/segments/event-groups/touch", 400, json={"events": []})
    reached = {"conditions": [{"event_group": "touch"}]}
    body = call(client, tenant, "POST", "/api/v1/segments/preview", json={"definition": reached})
    assert [p["profile_id"] for p in body["sample"]] == ["prof_han"]


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[tuple[TestClient, Tenant, Platform]]:
    """A server whose segment queries may run 0.3 s, over one very busy person."""
    settings = make_settings(tmp_path / "d", pipeline_enabled=False, segment_timeout_seconds=0.3)
    platform = Platform(settings)
    tenant = new_tenant(platform)
    ledger = Ledger(platform.warehouse, tenant.workspace_id)
    for i in range(6000):
        ledger.add("busy", i * 0.001, event="Page Viewed")
    ledger.store()
    refresh(platform.warehouse, tenant.workspace_id)
    with TestClient(create_app(settings, platform)) as client:
        yield client, tenant, platform


def test_a_query_past_its_time_limit_is_504(impatient: tuple[TestClient, Tenant, Platform]) -> None:
    client, tenant, _ = impatient
    steps = [{"event": "Page Viewed"}] * 3
    heavy = {"conditions": [{"sequence": {"steps": steps, "within": {"value": 30, "unit": "day"}}}]}
    slow = error(client, tenant, "POST", "/api/v1/segments/preview", 504, json={"definition": heavy})
    assert slow["code"] == "segment_timeout" and slow["details"] == {"timeout_seconds": 0.3}
    sid = call(client, tenant, "POST", "/api/v1/segments", 201, json={"name": "heavy", "definition": heavy})[
        "id"
    ]
    assert error(client, tenant, "POST", f"/api/v1/segments/{sid}/refresh", 504)["code"] == "segment_timeout"
    light = {"conditions": [{"event": "Page Viewed"}]}
    assert call(client, tenant, "POST", "/api/v1/segments/preview", json={"definition": light})["count"] == 1


def test_modes_and_the_signal_stream(client: TestClient, tenant: Tenant, shop: Ledger) -> None:
    twice = {"conditions": [{"event": "Order Completed", "count": {"op": "gte", "value": 2}}]}
    made = call(
        client, tenant, "POST", "/api/v1/segments", 201, json={"name": "两次 Twice", "definition": twice}
    )
    assert made["mode"] == "scheduled"
    assert made["reasons"][0]["path"] == "conditions[0].count" and " / " in made["reasons"][0]["message"]
    buyers = call(
        client, tenant, "POST", "/api/v1/segments", 201, json={"name": "买家", "definition": BUYERS}
    )
    for sid in (made["id"], buyers["id"]):
        call(client, tenant, "POST", f"/api/v1/segments/{sid}/refresh")

    first = call(client, tenant, "GET", "/api/v1/segments/signals", params={"limit": 2})
    assert [(s["signal"], s["segment_id"], s["profile_id"], s["mode"]) for s in first["items"]] == [
        ("segment_entered", made["id"], "prof_li", "on_demand"),
        ("segment_entered", buyers["id"], "prof_evil", "on_demand"),
    ]
    rest = call(client, tenant, "GET", "/api/v1/segments/signals", params={"after": first["next_cursor"]})
    assert [s["profile_id"] for s in rest["items"]] == ["prof_han", "prof_li"]
    assert rest["items"][-1]["cursor"] == rest["next_cursor"]
    polled = call(client, tenant, "GET", "/api/v1/segments/signals", params={"after": rest["next_cursor"]})
    assert polled == {"items": [], "next_cursor": rest["next_cursor"]}
    only = call(client, tenant, "GET", "/api/v1/segments/signals", params={"segment_id": made["id"]})
    assert [s["profile_id"] for s in only["items"]] == ["prof_li"]
    assert error(client, tenant, "GET", "/api/v1/segments/signals", 400,
                 params={"after": "bm90IGEgY3Vyc29y"})["code"] == "invalid_cursor"  # fmt: skip
    assert (
        error(client, tenant, "GET", "/api/v1/segments/signals", 400, params={"limit": 0})["code"]
        == "invalid_request"
    )

    # Another workspace sees none of them.
    other = new_tenant(client.app.state.platform, name="别家 Other")  # type: ignore[attr-defined]
    assert call(client, other, "GET", "/api/v1/segments/signals")["items"] == []
