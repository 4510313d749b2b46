"""RELIABILITY 2: resending the same messages (same messageIds) is answered 2xx and changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from reliability_support import basic, track

from quanyu.pipeline.worker import StepResult
from quanyu.platform import Platform
from testkit import Tenant, new_tenant


def _post(client: TestClient, tenant: Tenant, batch: list[dict[str, Any]]) -> dict[str, Any]:
    resp = client.post("/v1/batch", json={"batch": batch}, headers=basic(tenant.write_key))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["success"] is True and body["quarantined"] == []
    return body


def _status(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    resp = client.get("/api/v1/pipeline/status", headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _rows(platform: Platform, tenant: Tenant) -> Counter[str]:
    """messageId -> rows in the warehouse for the workspace."""
    t = platform.warehouse.table("events")
    rows = platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id).select("message_id"))
    return Counter(rows.column("message_id").to_pylist())


def _events(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/events", params={"limit": 1000, **params}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


def test_resend_before_processing_lands_in_the_same_micro_batch_and_is_stored_once(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [track(f"m-{i}", properties={"i": i}) for i in range(50)]
    assert _post(client, tenant, batch)["accepted"] == 50
    assert _post(client, tenant, batch)["accepted"] == 50  # the client did not see the first answer
    assert _status(client, tenant)["queued"] == 100

    steps: list[StepResult] = []
    platform.pipeline.drain(on_step=steps.append)
    assert [(s.batches, s.events, s.inserted) for s in steps] == [(2, 100, 50)]  # one micro-batch
    rows = _rows(platform, tenant)
    assert rows == Counter({f"m-{i}": 1 for i in range(50)})
    status = _status(client, tenant)
    assert (status["queued"], status["processed"], status["duplicates"]) == (0, 50, 50)
    assert len(_events(client, tenant)) == 50


def test_resend_after_processing_changes_no_count(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [track(f"m-{i}") for i in range(20)]
    _post(client, tenant, batch)
    platform.pipeline.drain()
    before = _status(client, tenant)
    assert before["processed"] == 20

    for _ in range(3):
        _post(client, tenant, batch)
        platform.pipeline.drain()
    # Resent individually through the single-message endpoint too.
    resp = client.post("/v1/track", json=track("m-7"), headers=basic(tenant.write_key))
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()

    after = _status(client, tenant)
    assert after["processed"] == before["processed"] == 20
    assert after["duplicates"] == before["duplicates"] + 61
    assert _rows(platform, tenant) == Counter({f"m-{i}": 1 for i in range(20)})


def test_resend_with_changed_content_keeps_the_first_version(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    _post(client, tenant, [track("same", event="First", properties={"v": 1})])
    _post(client, tenant, [track("same", event="Second", properties={"v": 2})])
    platform.pipeline.drain()
    _post(client, tenant, [track("same", event="Third", properties={"v": 3})])
    platform.pipeline.drain()
    [item] = _events(client, tenant)
    assert (item["message_id"], item["event"], item["properties"]) == ("same", "First", {"v": 1})


def test_message_repeated_inside_one_batch_is_stored_once(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [track("dup", properties={"copy": 1}), track("other"), track("dup", properties={"copy": 2})]
    body = _post(client, tenant, batch)
    assert body["quarantined"] == []
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"dup": 1, "other": 1})
    stored = {e["message_id"]: e for e in _events(client, tenant)}
    assert stored["dup"]["properties"] == {"copy": 1}
    assert _status(client, tenant)["processed"] == 2


def test_same_message_id_in_two_workspaces_is_two_events(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    """Dedupe is per workspace: another tenant's messageId never swallows yours."""
    other = new_tenant(platform, name="别的品牌 Other")
    _post(client, tenant, [track("shared-id", user_id="a")])
    _post(client, other, [track("shared-id", user_id="b")])
    platform.pipeline.drain()
    _post(client, other, [track("shared-id", user_id="b")])
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"shared-id": 1})
    assert _rows(platform, other) == Counter({"shared-id": 1})
    assert [e["user_id"] for e in _events(client, tenant)] == ["a"]
    assert [e["user_id"] for e in _events(client, other)] == ["b"]


def test_same_message_id_from_two_sources_of_one_workspace_is_stored_once(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    second = platform.sources.create(tenant.workspace_id, "小程序 Mini", "mini_program")
    _post(client, tenant, [track("cross-source")])
    resp = client.post("/v1/batch", json={"batch": [track("cross-source")]}, headers=basic(second.write_key))
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"cross-source": 1})


def test_resend_interleaved_with_new_messages_across_many_micro_batches(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    """Ten requests, each resending half of the previous one: every id stored exactly once."""
    platform.pipeline.config.batch_events = 30  # several micro-batches per drain
    expected: set[str] = set()
    previous: list[dict[str, Any]] = []
    for r in range(10):
        fresh = [track(f"r{r}-{i}") for i in range(20)]
        batch = previous[:10] + fresh
        _post(client, tenant, batch)
        expected.update(m["messageId"] for m in fresh)
        previous = fresh
        if r % 3 == 2:
            platform.pipeline.drain()
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter(dict.fromkeys(expected, 1))
    status = _status(client, tenant)
    assert status["processed"] == 200 and status["duplicates"] == 90
