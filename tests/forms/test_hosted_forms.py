"""Hosted H5 forms: the page, valid submissions (events and consent with the exact wording),
re-rendering on bad input, the honeypot, the signed form token."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from quanyu.channels.tracking import sign
from quanyu.connectors import forms
from quanyu.platform import Platform
from quanyu.store.models import ConsentRecord
from testkit import Tenant

WORDING = "我同意接收山茶记的营销短信 / I agree to receive marketing SMS from Camellia Tea"
SETTINGS: dict[str, Any] = {
    "title": "春茶品鉴会报名 Spring tea tasting",
    "description": "12 月 6 日 · 杭州西湖店",
    "fields": [
        {"name": "name", "required": True},
        {"name": "phone", "required": True},
        {"name": "email"},
        {"name": "company"},
        {"name": "city"},
        {"name": "seats", "label": "人数 Seats", "type": "select", "options": ["1", "2", "3"]},
    ],
    "consent_text": WORDING,
    "consent_channels": ["sms", "email"],
    "consent_purpose": "marketing",
    "success_message": "报名成功！/ You're signed up!",
}


@pytest.fixture
def form_id(platform: Platform, tenant: Tenant) -> str:
    return platform.sources.create(tenant.workspace_id, "品鉴会 Tasting", "form", SETTINGS).source.id


def _token(page: str) -> str:
    found = re.search(r'name="_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def _open(client: TestClient, form_id: str, query: str = "") -> str:
    resp = client.get(f"/f/{form_id}{query}")
    assert resp.status_code == 200, resp.text
    return resp.text


def _submit(client: TestClient, form_id: str, fields: dict[str, str], *, query: str = "",
            token: str | None = None, json: bool = False) -> Any:  # fmt: skip
    token = token if token is not None else _token(_open(client, form_id, query))
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"/f/{form_id}{query}", data={"_token": token, **fields}, headers=headers)


def _events(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    platform.pipeline.drain()
    t = platform.warehouse.table("events")
    return platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id)).to_pylist()  # type: ignore[no-any-return]


def _consents(platform: Platform, tenant: Tenant) -> list[Any]:
    c = ConsentRecord.__table__
    with platform.engine.connect() as conn:
        return list(
            conn.execute(select(c).where(c.c.workspace_id == tenant.workspace_id).order_by(c.c.channel))
        )


def _json(value: Any) -> dict[str, Any]:
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[no-any-return]


def test_page_renders_mobile_first_without_external_resources(client: TestClient, form_id: str) -> None:
    resp = client.get(f"/f/{form_id}?utm_source=poster&utm_campaign=spring")
    page = resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert 'name="viewport"' in page and 'lang="zh-CN"' in page
    assert "春茶品鉴会报名" in page and "手机号 Mobile" in page and "人数 Seats" in page
    assert WORDING in page and 'name="consent"' in page and 'name="website"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert 'action="/f/' + form_id + '?utm_source=poster&amp;utm_campaign=spring"' in page
    assert client.get("/f/src_nope").status_code == 404


def test_valid_submission_stores_events_and_consent(client: TestClient, platform: Platform, tenant: Tenant,
                                                    form_id: str) -> None:  # fmt: skip
    before = time.time()
    resp = _submit(client, form_id, {"name": "林晓", "phone": "+86 138-0013-8000", "email": "Lin@Example.com",
                                     "city": "杭州", "seats": "2", "consent": "yes", "website": ""},
                   query="?utm_source=poster&utm_medium=offline&utm_campaign=spring")  # fmt: skip
    assert resp.status_code == 200 and "报名成功" in resp.text
    rows = {r["type"]: r for r in _events(platform, tenant)}
    assert set(rows) == {"identify", "track"}
    track = rows["track"]
    assert track["event"] == "Form Submitted" and track["channel"] == "form"
    props = _json(track["properties"])
    assert props["form_id"] == form_id and props["form_title"] == SETTINGS["title"]
    assert props["consent_given"] == "yes" and props["utm_campaign"] == "spring"
    assert props["fields"]["phone"] == "13800138000" and props["fields"]["email"] == "lin@example.com"
    traits = _json(rows["identify"]["traits"])
    assert traits["name"] == "林晓" and traits["phone"] == "13800138000" and traits["seats"] == "2"

    consents = _consents(platform, tenant)
    assert [(c.channel, c.subject, c.granted, c.source, c.purpose) for c in consents] == [
        ("email", "lin@example.com", True, f"form:{form_id}", "marketing"),
        ("sms", "13800138000", True, f"form:{form_id}", "marketing"),
    ]
    evidence = consents[1].evidence
    assert evidence["wording"] == WORDING
    assert evidence["version"] == evidence["sha256"][:12] and len(evidence["sha256"]) == 64
    assert before - 1 <= consents[1].at.timestamp() <= time.time() + 1
    # the consent API shows it as the address's current state
    got = client.get("/api/v1/consent", params={"subject": "13800138000"}, headers=tenant.bearer).json()
    assert got["current"][0]["granted"] is True and got["history"][0]["evidence"]["wording"] == WORDING


def test_without_the_box_ticked_no_consent_is_recorded(client: TestClient, platform: Platform, tenant: Tenant,
                                                       form_id: str) -> None:  # fmt: skip
    resp = _submit(client, form_id, {"name": "王芳", "phone": "13900139000"}, json=True)
    assert resp.status_code == 200 and resp.json() == {"success": True, "message": SETTINGS["success_message"],
                                                       "consent_recorded": 0}  # fmt: skip
    assert _consents(platform, tenant) == []
    track = next(r for r in _events(platform, tenant) if r["type"] == "track")
    assert _json(track["properties"])["consent_given"] == "no"


def test_bad_phone_re_renders_with_the_error(client: TestClient, platform: Platform, tenant: Tenant,
                                             form_id: str) -> None:  # fmt: skip
    resp = _submit(client, form_id, {"name": "<b>林</b>", "phone": "12345", "email": "not-an-email",
                                     "consent": "yes"})  # fmt: skip
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert "手机号格式不正确" in page and "邮箱格式不正确" in page
    assert "&lt;b&gt;林&lt;/b&gt;" in page and "<b>林" not in page  # kept, escaped
    assert 'value="yes" checked' in page
    resp = _submit(client, form_id, {"name": "", "phone": "12345"}, json=True)
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "invalid_form" and set(body["details"]["errors"]) == {"name", "phone"}
    assert _events(platform, tenant) == [] and _consents(platform, tenant) == []


def test_honeypot_looks_like_success_but_stores_nothing(client: TestClient, platform: Platform, tenant: Tenant,
                                                        form_id: str) -> None:  # fmt: skip
    resp = _submit(client, form_id, {"name": "bot", "phone": "13800138000", "consent": "yes",
                                     "website": "http://spam.example"})  # fmt: skip
    assert resp.status_code == 200 and "报名成功" in resp.text
    assert _events(platform, tenant) == [] and _consents(platform, tenant) == []


def test_token_is_required_signed_and_fresh(client: TestClient, platform: Platform, tenant: Tenant,
                                            form_id: str) -> None:  # fmt: skip
    fields = {"name": "林晓", "phone": "13800138000"}
    assert _submit(client, form_id, fields, token="", json=True).json()["code"] == "form_token_invalid"
    forged = sign(b"another-secret", {"v": "form1", "f": form_id, "t": int(time.time()), "n": "x"})
    assert _submit(client, form_id, fields, token=forged, json=True).status_code == 403
    key = platform.vault.derive(b"quanyu-forms")
    old = forms.issue_token(key, form_id, now=time.time() - forms.TOKEN_TTL_SECONDS - 10)
    resp = _submit(client, form_id, fields, token=old, json=True)
    assert resp.status_code == 403 and resp.json()["code"] == "form_expired"
    # in the browser: the page again, what was typed kept, a fresh token to submit with
    resp = _submit(client, form_id, fields, token=old)
    assert resp.status_code == 403 and "表单已过期" in resp.text and 'value="林晓"' in resp.text
    assert _token(resp.text) != old
    other = platform.sources.create(tenant.workspace_id, "other", "form", SETTINGS).source.id
    token_for_other = _token(_open(client, other))
    assert _submit(client, form_id, fields, token=token_for_other, json=True).status_code == 403


def test_double_submit_is_stored_once(
    client: TestClient, platform: Platform, tenant: Tenant, form_id: str
) -> None:
    token = _token(_open(client, form_id))
    fields = {"name": "林晓", "phone": "13800138000", "consent": "yes"}
    assert _submit(client, form_id, fields, token=token).status_code == 200
    assert _submit(client, form_id, fields, token=token).status_code == 200
    assert len(_events(platform, tenant)) == 2  # one identify, one track
    assert len(_consents(platform, tenant)) == 1  # sms only: no email given


def test_unconfigured_form_is_409(client: TestClient, platform: Platform, tenant: Tenant) -> None:
    bad = platform.sources.create(tenant.workspace_id, "bad", "form",
                                  {"fields": [{"name": "x"}], "consent_text": "ok", "consent_channels": ["sms"]})  # fmt: skip
    resp = client.get(f"/f/{bad.source.id}")
    assert resp.status_code == 409 and resp.json()["code"] == "form_not_configured"
    problems = " ".join(resp.json()["details"]["problems"])
    assert "title" in problems and "fields[0]" in problems and "consent_channels" in problems
