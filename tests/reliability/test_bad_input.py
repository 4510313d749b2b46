"""RELIABILITY 6 and 8: hostile or broken input gets a clear 4xx in the one error shape, never a
500 or a memory blow-up; invalid items of a batch are quarantined (and can be fixed and replayed)
while the valid ones are stored; implausible timestamps are stored and flagged, never dropped."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from reliability_support import assert_error_shape, basic, track

from quanyu.api import create_app
from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import Tenant


@pytest.fixture
def api(settings: Settings, platform: Platform) -> Iterator[TestClient]:
    """Like the shared `client`, but server errors come back as the 500 a real client would see."""
    with TestClient(create_app(settings, platform), raise_server_exceptions=False) as c:
        yield c


def _post(api: TestClient, tenant: Tenant, path: str, content: bytes, **headers: str) -> httpx.Response:
    hdrs = {**basic(tenant.write_key), "Content-Type": "application/json", **headers}
    return api.post(path, content=content, headers=hdrs)


def _rows(platform: Platform, tenant: Tenant) -> Counter[str]:
    t = platform.warehouse.table("events")
    rows = platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id).select("message_id"))
    return Counter(rows.column("message_id").to_pylist())


def _events(api: TestClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    resp = api.get("/api/v1/events", params={"limit": 1000}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return {e["message_id"]: e for e in resp.json()["items"]}


def _quarantine(api: TestClient, tenant: Tenant, status: str = "quarantined") -> list[dict[str, Any]]:
    resp = api.get("/api/v1/quarantine", params={"status": status}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


def _gzip_of_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    parts = [comp.compress(zeros) for _ in range(total // chunk)]
    parts.append(comp.flush())
    return b"".join(parts)


# --- size limits -------------------------------------------------------------------------------


def test_single_event_over_32kb_is_413(api: TestClient, tenant: Tenant, platform: Platform) -> None:
    body = orjson.dumps(track("big", properties={"blob": "x" * 40_000}))
    assert_error_shape(_post(api, tenant, "/v1/track", body), 413, "request_too_large")
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter()


def test_batch_over_500kb_is_413(api: TestClient, tenant: Tenant, platform: Platform) -> None:
    batch = [track(f"m-{i}", properties={"pad": "y" * 1_000}) for i in range(600)]  # ~650 KB, items small
    body = orjson.dumps({"batch": batch})
    assert len(body) > 500 * 1024
    assert_error_shape(_post(api, tenant, "/v1/batch", body), 413, "request_too_large")
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter()


def test_batch_over_500kb_without_content_length_is_413(api: TestClient, tenant: Tenant) -> None:
    body = orjson.dumps({"batch": [track(f"m-{i}", properties={"pad": "y" * 1_000}) for i in range(600)]})

    def chunks() -> Iterator[bytes]:  # sent with Transfer-Encoding: chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    resp = api.post(
        "/v1/batch", content=chunks(), headers={**basic(tenant.write_key), "Content-Type": "application/json"}
    )
    assert_error_shape(resp, 413, "request_too_large")


def test_more_than_2500_items_is_413(api: TestClient, tenant: Tenant, platform: Platform) -> None:
    body = orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2_501})
    assert len(body) < 500 * 1024
    assert_error_shape(_post(api, tenant, "/v1/batch", body), 413, "batch_too_large")
    ok = orjson.dumps({"batch": [track(f"m-{i}") for i in range(2_500)]})
    assert len(ok) < 500 * 1024
    resp = _post(api, tenant, "/v1/batch", ok)
    assert resp.status_code == 200 and resp.json()["accepted"] == 2_500


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_is_413_quickly_and_in_bounded_memory(
    api: TestClient, tenant: Tenant, path: str, encoding: str
) -> None:
    bomb = _gzip_of_zeros(50 * 1024 * 1024)
    if encoding == "deflate":
        bomb = zlib.compress(bytes(50 * 1024 * 1024), 9)
    assert len(bomb) < 100 * 1024  # tiny on the wire
    tracemalloc.start()
    started = time.perf_counter()
    try:
        resp = _post(api, tenant, path, bomb, **{"Content-Encoding": encoding})
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_error_shape(resp, 413, "request_too_large")
    assert elapsed < 2.0, elapsed
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while refusing a 50 MB bomb"


def test_gzip_body_within_limits_is_accepted(api: TestClient, tenant: Tenant, platform: Platform) -> None:
    body = gzip.compress(orjson.dumps({"batch": [track("gz-1"), track("gz-2")]}))
    resp = _post(api, tenant, "/v1/batch", body, **{"Content-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.json()["accepted"] == 2, resp.text
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"gz-1": 1, "gz-2": 1})


# --- malformed bodies --------------------------------------------------------------------------

_VALID = orjson.dumps({"batch": [track("x")]})
_GZ = gzip.compress(_VALID)

MALFORMED: dict[str, tuple[bytes, dict[str, str]]] = {
    "corrupt gzip": (b"\x1f\x8b\x08\x00garbage-not-deflate" + bytes(20), {"Content-Encoding": "gzip"}),
    "gzip header only": (_GZ[:10], {"Content-Encoding": "gzip"}),
    "truncated gzip": (_GZ[: len(_GZ) // 2], {"Content-Encoding": "gzip"}),
    "plain body labelled gzip": (_VALID, {"Content-Encoding": "gzip"}),
    "unsupported encoding": (_GZ, {"Content-Encoding": "br"}),
    "invalid utf-8": (b'{"batch": [{"type": "track", "userId": "\xff\xfe", "event": "E"}]}', {}),
    "lone surrogate": (b'{"batch": [{"type": "track", "userId": "\\ud800", "event": "E"}]}', {}),
    "nested 5000 levels": (b'{"batch": [' + b"[" * 5_000 + b"]" * 5_000 + b"]}", {}),
    "not json": (b"userId=u1&event=E", {}),
    "empty body": (b"", {}),
    "truncated json": (_VALID[:-5], {}),
    "NaN": (b'{"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"v": NaN}}]}', {}),
    "json array": (b'[{"type": "track", "userId": "u", "event": "E"}]', {}),
    "json string": (b'"hello"', {}),
    "json number": (b"42", {}),
    "json null": (b"null", {}),
    "batch not an array": (b'{"batch": {"type": "track"}}', {}),
    "batch missing": (b'{"userId": "u"}', {}),
    "empty batch": (b'{"batch": []}', {}),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_batch_body_is_400(api: TestClient, tenant: Tenant, platform: Platform, case: str) -> None:
    content, headers = MALFORMED[case]
    assert_error_shape(_post(api, tenant, "/v1/batch", content, **headers), 400)
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter()


@pytest.mark.parametrize(
    "case", ["invalid utf-8", "nested 5000 levels", "not json", "json array", "json string"]
)
def test_malformed_single_message_body_is_400(api: TestClient, tenant: Tenant, case: str) -> None:
    content, headers = MALFORMED[case]
    assert_error_shape(_post(api, tenant, "/v1/track", content, **headers), 400)


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_deep_but_parseable_nesting_is_refused_cleanly(
    api: TestClient, tenant: Tenant, platform: Platform, path: str
) -> None:
    """300 levels parse (orjson reads up to 1024) but cannot be re-serialised: never a 500."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):
        node["a"] = {}
        node = node["a"]
    message = track("deep", properties=deep)
    # The stdlib encoder (orjson itself refuses > 254 levels), as any other client would produce.
    body = json.dumps({"batch": [message, track("fine")]} if path == "/v1/batch" else message).encode()
    resp = _post(api, tenant, path, body)
    if path == "/v1/batch":
        assert resp.status_code == 200, resp.text  # the valid sibling is not held hostage
        assert [q["index"] for q in resp.json()["quarantined"]] == [0]
        platform.pipeline.drain()
        assert _rows(platform, tenant) == Counter({"fine": 1})
    else:
        assert_error_shape(resp, 400)


def test_every_error_uses_the_one_shape(api: TestClient, tenant: Tenant) -> None:
    assert_error_shape(api.get("/v1/track"), 405)
    assert_error_shape(api.get("/v1/nope"), 404)
    assert_error_shape(api.post("/v1/track", json={"userId": "u", "event": "E"}), 401, "missing_write_key")
    assert_error_shape(api.get("/api/v1/events"), 401)
    assert_error_shape(api.get("/api/v1/events", params={"limit": 0}, headers=tenant.bearer), 400)
    assert_error_shape(api.post("/api/v1/quarantine/replay", json={"ids": []}, headers=tenant.bearer), 400)
    assert_error_shape(
        api.post(
            "/api/v1/quarantine/replay",
            content=b"{oops",
            headers={**tenant.bearer, "Content-Type": "application/json"},
        ),
        400,
    )


# --- invalid items are quarantined, valid ones stored ---------------------------------------------

INVALID_ITEMS: list[tuple[Any, str]] = [
    ({"type": "track", "messageId": "bad-identity", "event": "E"}, "missing_identity"),
    ({"type": "track", "messageId": "bad-event", "userId": "u1"}, "missing_field"),
    ({"type": "track", "messageId": "bad-ts", "userId": "u1", "event": "E", "timestamp": "yesterday"},
     "invalid_timestamp"),
    ({"type": "track", "messageId": "bad-props", "userId": "u1", "event": "E", "properties": [1, 2]},
     "invalid_field"),
    ({"type": "track", "messageId": "bad-size", "userId": "u1", "event": "E",
      "properties": {"b": "z" * 33_000}}, "event_too_large"),
    ({"type": "shout", "messageId": "bad-type", "userId": "u1"}, "invalid_type"),
    ("not an object", "invalid_message"),
]  # fmt: skip


def test_batch_with_invalid_items_stores_valid_ones_and_quarantines_the_rest(
    api: TestClient, tenant: Tenant, platform: Platform
) -> None:
    valid = [
        track("ok-1"),
        {"type": "identify", "messageId": "ok-2", "anonymousId": "a1", "traits": {"n": 1}},
    ]
    batch: list[Any] = [valid[0], *(item for item, _ in INVALID_ITEMS), valid[1]]
    resp = _post(api, tenant, "/v1/batch", orjson.dumps({"batch": batch}))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["accepted"] == 2
    assert [(q["index"], q["code"]) for q in body["quarantined"]] == [
        (i + 1, code) for i, (_, code) in enumerate(INVALID_ITEMS)
    ]
    assert all(isinstance(q["message"], str) and q["message"] for q in body["quarantined"])

    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"ok-1": 1, "ok-2": 1})
    listed = _quarantine(api, tenant)
    assert sorted(e["code"] for e in listed) == sorted(code for _, code in INVALID_ITEMS)
    assert all(e["reason"] and e["status"] == "quarantined" for e in listed)
    status = api.get("/api/v1/pipeline/status", headers=tenant.bearer).json()
    assert status["quarantined"] == len(INVALID_ITEMS)
    assert status["identity_pending_batches"] == 0  # the drain stitched what it stored

    # Fix one and replay it with the corrected payload: it is stored, and leaves the quarantine.
    [entry] = [e for e in listed if e["code"] == "missing_field"]
    assert orjson.loads(entry["payload"])["messageId"] == "bad-event"
    fixed = {**orjson.loads(entry["payload"]), "event": "Fixed Event"}
    resp = api.post(
        "/api/v1/quarantine/replay", json={"ids": [entry["id"]], "payload": fixed}, headers=tenant.bearer
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"replayed": [entry["id"]], "failed": []}
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"ok-1": 1, "ok-2": 1, "bad-event": 1})
    assert _events(api, tenant)["bad-event"]["event"] == "Fixed Event"
    assert entry["id"] not in {e["id"] for e in _quarantine(api, tenant)}
    assert entry["id"] in {e["id"] for e in _quarantine(api, tenant, "replayed")}

    # Replaying an entry that is still invalid reports it as failed and stores nothing.
    [still_bad] = [e for e in _quarantine(api, tenant) if e["code"] == "invalid_field"]
    resp = api.post("/api/v1/quarantine/replay", json={"ids": [still_bad["id"]]}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    assert [f["id"] for f in resp.json()["failed"]] == [still_bad["id"]]
    platform.pipeline.drain()
    assert len(_rows(platform, tenant)) == 3


def test_batch_where_nothing_is_valid_is_400_and_quarantined(
    api: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [item for item, _ in INVALID_ITEMS[:3]]
    body = assert_error_shape(_post(api, tenant, "/v1/batch", orjson.dumps({"batch": batch})), 400)
    assert [q["code"] for q in body["details"]["quarantined"]] == [code for _, code in INVALID_ITEMS[:3]]
    assert len(_quarantine(api, tenant)) == 3


def test_replaying_an_entry_twice_stores_it_once(api: TestClient, tenant: Tenant, platform: Platform) -> None:
    resp = _post(api, tenant, "/v1/batch", orjson.dumps({"batch": [track("keep"), INVALID_ITEMS[1][0]]}))
    assert resp.status_code == 200, resp.text
    [entry] = _quarantine(api, tenant)
    fixed = {**orjson.loads(entry["payload"]), "event": "Fixed"}
    for _ in range(2):  # e.g. an operator clicking twice, or a retried request
        resp = api.post(
            "/api/v1/quarantine/replay", json={"ids": [entry["id"]], "payload": fixed}, headers=tenant.bearer
        )
        assert resp.status_code in (200, 409), resp.text
        platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter({"keep": 1, "bad-event": 1})


def test_replaying_a_corrected_payload_without_message_id_twice_stores_it_once(
    api: TestClient, tenant: Tenant, platform: Platform
) -> None:
    resp = _post(api, tenant, "/v1/batch", orjson.dumps({"batch": [track("keep"), INVALID_ITEMS[1][0]]}))
    assert resp.status_code == 200, resp.text
    [entry] = _quarantine(api, tenant)
    fixed = {"type": "track", "userId": "u1", "event": "Fixed"}  # re-typed by an operator, no messageId
    for _ in range(2):
        resp = api.post(
            "/api/v1/quarantine/replay", json={"ids": [entry["id"]], "payload": fixed}, headers=tenant.bearer
        )
        assert resp.status_code in (200, 409), resp.text
        platform.pipeline.drain()
    assert sum(_rows(platform, tenant).values()) == 2


# --- implausible timestamps are kept and flagged -------------------------------------------------


def test_far_future_and_far_past_timestamps_are_stored_and_flagged(
    api: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [
        track("future", timestamp="2999-01-01T00:00:00Z"),
        track("past", timestamp="1990-01-01T00:00:00+08:00"),
        track("ancient", timestamp="0001-01-01T00:00:00Z"),
        track("now"),
    ]
    resp = _post(api, tenant, "/v1/batch", orjson.dumps({"batch": batch}))
    assert resp.status_code == 200 and resp.json()["accepted"] == 4, resp.text
    platform.pipeline.drain()
    events = _events(api, tenant)
    assert {m: e["timestamp_flag"] for m, e in events.items()} == {
        "future": "future",
        "past": "past",
        "ancient": "past",
        "now": None,
    }
    assert events["future"]["timestamp"].startswith("2999-01-01T00:00:00")
    assert events["past"]["timestamp"].startswith("1989-12-31T16:00:00")


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [("9999-12-31T23:59:59Z", "0001-01-02T00:00:00Z"), ("0001-01-01T00:00:00Z", "9999-01-02T00:00:00Z")],
)
def test_extreme_timestamp_with_sent_at_is_never_a_500(
    api: TestClient, tenant: Tenant, platform: Platform, timestamp: str, sent_at: str
) -> None:
    body = orjson.dumps({"batch": [track("skewed", timestamp=timestamp), track("fine")], "sentAt": sent_at})
    resp = _post(api, tenant, "/v1/batch", body)
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()
    stored = _rows(platform, tenant)
    assert stored["fine"] == 1
    # Either stored and flagged, or quarantined with a reason: never dropped silently.
    if not stored["skewed"]:
        assert [q["code"] for q in resp.json()["quarantined"]] == ["invalid_timestamp"]
