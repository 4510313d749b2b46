"""Every route answers errors in the one JSON shape; /api/v1 needs a management token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from testkit import Tenant

GOLDEN = Path(__file__).parent.parent / "golden" / "openapi.json"


def management_routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith("/api/v1")
    ]


def test_every_management_route_needs_a_token(client: TestClient, tenant: Tenant) -> None:
    routes = management_routes(client)
    assert len(routes) >= 7
    for method, path in routes:
        for headers in (
            {},
            {"Authorization": "Bearer qy_wrong"},
            {"Authorization": f"Bearer {tenant.write_key}"},
        ):
            resp = client.request(method, path, headers=headers)
            assert resp.status_code == 401, (method, path, headers)
            body = resp.json()
            assert isinstance(body["code"], str) and isinstance(body["message"], str)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nowhere"), ("DELETE", "/v1/track"), ("GET", "/v1/batch")]
)
def test_unknown_routes_and_methods_use_the_shape(client: TestClient, method: str, path: str) -> None:
    resp = client.request(method, path)
    assert resp.status_code in (404, 405)
    assert set(resp.json()) >= {"code", "message"}


def test_invalid_management_bodies_use_the_shape(client: TestClient, tenant: Tenant) -> None:
    for body in ({}, {"name": "x", "type": "fax"}, {"name": "", "type": "website"}):
        resp = client.post("/api/v1/sources", json=body, headers=tenant.bearer)
        assert resp.status_code == 400, body
        assert set(resp.json()) >= {"code", "message"}
    resp = client.post("/api/v1/quarantine/replay", json={"ids": [999]}, headers=tenant.bearer)
    assert resp.status_code == 404 and resp.json()["code"] == "quarantine_not_found"


def test_openapi_schema_matches_golden_file(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    text = json.dumps(spec, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if not GOLDEN.exists():
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        "OpenAPI changed: review and delete tests/golden/openapi.json to regenerate"
    )
