"""Audience files for ad platforms: a segment's members' phones or device ids, normalised the
way the platforms normalise (11-digit mainland mobiles; IDFA upper case, other device ids
lower case), hashed with MD5 or SHA-256 (lowercase hex), deduplicated; never a raw value."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from profiles.profilekit import Brand, day
from quanyu.connectors.ads.audiences import audience_device, audience_phone, hashed, render
from quanyu.errors import InvalidInput
from quanyu.platform import Platform
from quanyu.segments import membership
from quanyu.segments.saved import SegmentCreate
from testkit import Tenant, new_tenant

IDFA = "6d92078a-8246-4ba4-ae5b-76104861e7dc"


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_phones_are_mainland_mobiles_hashed_once() -> None:
    values = [("p1", "+86 138-0013-8000"), ("p1", "13800138000"), ("p2", "0086 139 0000 1111"),
              ("p3", "+1 415 555 0100"), ("p4", "138****1234"), ("p5", "")]  # fmt: skip
    made = render(values, "phone", "md5", "txt", members=6)
    assert made.body.decode().splitlines() == sorted([md5("13800138000"), md5("13900001111")])
    assert (made.count, made.members, made.matched, made.match_rate) == (2, 6, 2, round(2 / 6, 4))
    csv = render(values, "phone", "sha256", "csv", members=6).body.decode().splitlines()
    assert csv == ["phone_sha256", *sorted([sha256("13800138000"), sha256("13900001111")])]


def test_device_ids_follow_the_platforms_case_convention() -> None:
    assert audience_device(IDFA) == IDFA.upper()
    assert audience_device("860123456789012") == "860123456789012"  # IMEI
    assert audience_device("A0000012345678") == "a0000012345678"  # MEID
    assert audience_device("ABCDEF0123456789") == "abcdef0123456789"  # OAID / Android ID
    assert audience_device("00000000-0000-0000-0000-000000000000") is None  # limited ad tracking
    assert audience_device(IDFA, "lower") == IDFA and audience_device("abc123def", "upper") == "ABC123DEF"
    made = render([("a", IDFA), ("b", IDFA.upper()), ("c", "860123456789012")], "device_id", "md5", "txt", 3)
    assert made.body.decode().splitlines() == sorted([md5(IDFA.upper()), md5("860123456789012")])
    with pytest.raises(InvalidInput):
        render([], "email", "md5", "txt", 0)


_MOBILES = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
_DRESSED = st.tuples(
    _MOBILES, st.sampled_from(["", "+86", "+86 ", "0086", "86"]), st.sampled_from(["", " ", "-"])
)


@given(_DRESSED)
def test_any_way_of_writing_a_mobile_hashes_the_same(dressed: tuple[str, str, str]) -> None:
    mobile, prefix, sep = dressed
    written = prefix + sep.join([mobile[:3], mobile[3:7], mobile[7:]])
    assert audience_phone(written) == mobile
    assert hashed(audience_phone(written) or "", "sha256") == sha256(mobile)


@given(st.text(max_size=40))
def test_the_normalisers_are_idempotent(text: str) -> None:
    phone = audience_phone(text)
    if phone is not None:
        assert audience_phone(phone) == phone and len(phone) == 11
    device = audience_device(text)
    if device is not None:
        assert audience_device(device) == device


def _segment(platform: Platform, workspace_id: str, definition: dict[str, Any]) -> str:
    made = platform.segments.create(workspace_id, SegmentCreate(name="广告人群", definition=definition), "test",
                                    warehouse=platform.warehouse)  # fmt: skip
    membership.refresh_membership(platform.warehouse, platform.segments, workspace_id, made["id"])
    return str(made["id"])


def test_segment_audience_through_the_api(client: TestClient, platform: Platform, tenant: Tenant) -> None:
    brand = Brand(platform, tenant.workspace_id)

    def signup(user: str, phone: str | None, device: str | None, at: float) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "track", "userId": user, "event": "Signed Up", "timestamp": day(at),
                                   "context": {"traits": {"phone": phone} if phone else {}}}  # fmt: skip
        if device:
            message["context"]["device"] = {"id": device}
        return message

    brand.send("app", signup("u1", "+86 138 0013 8000", IDFA, 0.1), signup("u2", "13900001111", None, 0.2),
               signup("u3", None, "860123456789012", 0.3))  # fmt: skip
    brand.send("website", {"type": "track", "userId": "u4", "event": "Viewed", "timestamp": day(0.4),
                           "context": {"traits": {"phone": "13700000007"}}})  # fmt: skip
    segment = _segment(platform, tenant.workspace_id, {"conditions": [{"event": "Signed Up"}]})

    def audience(status: int = 200, **params: str) -> Any:
        resp = client.get(f"/api/v1/segments/{segment}/audience", params=params, headers=tenant.bearer)
        assert resp.status_code == status, resp.text
        return resp

    phones = audience(id_type="phone", hash="sha256", format="txt")
    assert phones.text.splitlines() == sorted([sha256("13800138000"), sha256("13900001111")])
    assert (phones.headers["x-audience-count"], phones.headers["x-audience-members"],
            phones.headers["x-audience-matched"]) == ("2", "3", "2")  # fmt: skip
    assert "13800138000" not in phones.text and "13700000007" not in phones.text
    devices = audience(id_type="device_id", hash="md5", format="csv")
    assert devices.headers["content-type"].startswith("text/csv")
    assert devices.text.splitlines() == [
        "device_id_md5",
        *sorted([md5(IDFA.upper()), md5("860123456789012")]),
    ]
    assert audience(400, id_type="email").json()["code"] == "invalid_request"

    missing = client.get("/api/v1/segments/seg_nope/audience", headers=tenant.bearer)
    assert missing.status_code == 404 and missing.json()["code"] == "segment_not_found"
    other = new_tenant(platform, name="别家 Other")
    assert client.get(f"/api/v1/segments/{segment}/audience", headers=other.bearer).status_code == 404
