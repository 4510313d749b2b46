"""Ad redirect links: created with validated landing pages, and a click through `/a/{id}`
recorded as `Ad Clicked` (UTM in context.campaign, click ids in properties, the visitor's
anonymous id from the analytics.js cookie or a new one) before the 302 to the stored landing
page with UTM and click ids appended. After the pipeline, the click and the landing page's own
page event are one person through the shared click id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from quanyu.collect.messages import Envelope
from quanyu.connectors.ads.links import CLICK_IDS, check_target, landing_url
from quanyu.errors import InvalidInput
from quanyu.identity import extract
from quanyu.platform import Platform
from quanyu.store.models import Source
from testkit import Tenant, new_tenant

LANDING = "https://shop.example.com/spring?x=1&utm_source=old#buy"


def call(client: TestClient, tenant: Tenant, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    resp = client.request(method, path, headers=tenant.bearer, **kw)
    assert resp.status_code == status, resp.text
    return resp.json()


def ads_source(platform: Platform, tenant: Tenant) -> str:
    return platform.sources.create(tenant.workspace_id, "百度营销 Baidu", "ads").source.id


def make_link(client: TestClient, tenant: Tenant, source_id: str, **extra: Any) -> dict[str, Any]:
    body = {"name": "春茶上新 搜索", "source_id": source_id, "target_url": LANDING, "campaign": "春茶上新",
            "channel": "baidu", "utm_content": "banner_a", **extra}  # fmt: skip
    return call(client, tenant, "POST", "/api/v1/ad-links", 201, json=body)


def events_of(platform: Platform, workspace_id: str, event: str) -> list[dict[str, Any]]:
    ev = platform.warehouse.table("events")
    return platform.warehouse.execute(
        ev.filter(ev.workspace_id == workspace_id, ev.event == event)
    ).to_pylist()


def test_click_ids_are_the_ones_identity_reads() -> None:
    assert {f"$.{name}" for name in CLICK_IDS} == set(extract._CLICK_ID_PATHS)


def test_redirect_keeps_utm_and_click_ids_and_records_the_click(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    link = make_link(client, tenant, ads_source(platform, tenant))
    assert link["url"].endswith(f"/a/{link['id']}") and link["utm_source"] == "baidu"
    assert (link["utm_medium"], link["utm_campaign"]) == ("cpc", "春茶上新")

    callback = "https://ad.oceanengine.com/track?cb=1&x=2"
    resp = client.get(f"/a/{link['id']}", params={"bd_vid": "BD_vid_123", "callback": callback,
                                                   "next": "https://evil.example", "ad_id": "42"},
                      headers={"user-agent": "Mozilla/5.0 (iPhone) MicroMessenger", "referer": "https://www.baidu.com/s?wd=%E8%8C%B6"},
                      follow_redirects=False)  # fmt: skip
    assert resp.status_code == 302, resp.text
    assert resp.headers["cache-control"] == "no-store"
    target = urlsplit(resp.headers["location"])
    assert (target.scheme, target.netloc, target.path, target.fragment) == ("https", "shop.example.com", "/spring",
                                                                           "buy")  # fmt: skip
    query = parse_qs(target.query)
    assert query == {"x": ["1"], "utm_source": ["baidu"], "utm_medium": ["cpc"], "utm_campaign": ["春茶上新"],
                     "utm_content": ["banner_a"], "bd_vid": ["BD_vid_123"], "callback": [callback], "ad_id": ["42"]}  # fmt: skip
    visitor = resp.cookies["ajs_anonymous_id"]
    assert visitor

    # The same visitor again: the cookie is read, not replaced.
    again = client.get(f"/a/{link['id']}", follow_redirects=False)
    assert again.status_code == 302 and "ajs_anonymous_id" not in again.cookies
    assert "bd_vid" not in parse_qs(urlsplit(again.headers["location"]).query)

    platform.pipeline.drain()
    clicks = sorted(events_of(platform, tenant.workspace_id, "Ad Clicked"), key=lambda e: e["timestamp"])
    assert len(clicks) == 2 and {c["anonymous_id"] for c in clicks} == {visitor}
    first = clicks[0]
    assert (first["utm_source"], first["utm_medium"], first["utm_campaign"], first["utm_content"]) == (
        "baidu", "cpc", "春茶上新", "banner_a")  # fmt: skip
    assert first["channel"] == "ads" and first["domain"] == "public"
    props, context = orjson.loads(first["properties"]), orjson.loads(first["context"])
    assert props["bd_vid"] == "BD_vid_123" and props["ad_link_id"] == link["id"] and props["ad_id"] == "42"
    assert "next" not in props
    assert context["userAgent"] == "Mozilla/5.0 (iPhone) MicroMessenger" and context["ip"]
    assert context["campaign"] == {
        "name": "春茶上新",
        "source": "baidu",
        "medium": "cpc",
        "content": "banner_a",
    }

    counted = call(client, tenant, "GET", f"/api/v1/ad-links/{link['id']}")
    assert (counted["clicks"], counted["visitors"], counted["with_click_id"]) == (2, 1, 1)
    listed = call(client, tenant, "GET", "/api/v1/ad-links")["items"]
    assert [i["id"] for i in listed] == [link["id"]] and listed[0]["clicks"] == 2


def test_the_click_and_the_landing_visit_are_one_person(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    link = make_link(client, tenant, ads_source(platform, tenant), channel="tencent")
    resp = client.get(f"/a/{link['id']}?gdt_vid=wx0abc123def", follow_redirects=False)
    visitor = resp.cookies["ajs_anonymous_id"]
    # The landing page (another host, another anonymous id) sends its page view with the
    # click id it found on its URL.
    website = platform.sources.get(tenant.workspace_id, tenant.source_id)
    page = {"type": "page", "name": "春茶上新", "anonymousId": "site-visitor-9",
            "properties": {"url": resp.headers["location"], "gdt_vid": "wx0abc123def"}}  # fmt: skip
    future, receipt = platform.intake.accept(website, [page], None, Envelope())
    future.result()
    assert not receipt.quarantined
    platform.pipeline.drain()
    nodes = platform.warehouse.table("identity_nodes")
    rows = platform.warehouse.execute(nodes.filter(nodes.workspace_id == tenant.workspace_id)).to_pylist()
    profile = {r["key"]: r["profile_id"] for r in rows}
    assert profile[f"anonymous_id:{visitor}"] == profile["anonymous_id:site-visitor-9"]
    assert profile["click_id:wx0abc123def"] == profile["anonymous_id:site-visitor-9"]


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "ftp://files.example.com/a", "//evil.example/x", "https://shop.example.com\\@evil.example",
     "https://user:pw@shop.example.com/", "https:///path-only", "https://shop.example.com:99999/",
     "https://shop.example.com/a b", "data:text/html,hi", "shop.example.com/landing"],
)  # fmt: skip
def test_bad_target_urls_are_400(client: TestClient, platform: Platform, tenant: Tenant, url: str) -> None:
    body = call(client, tenant, "POST", "/api/v1/ad-links", 400,
                json={"name": "x", "source_id": ads_source(platform, tenant), "target_url": url, "campaign": "c",
                      "channel": "baidu"})  # fmt: skip
    assert body["code"] == "invalid_target_url" and "message" in body


def test_link_campaigns_are_written_as_cost_imports_write_them(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    link = make_link(client, tenant, ads_source(platform, tenant), campaign="２０２６_ｄｏｕｂｌｅ11 ")
    assert (link["campaign"], link["utm_campaign"]) == ("2026_double11", "2026_double11")


def test_links_need_an_ads_source_and_a_known_channel(client: TestClient, tenant: Tenant) -> None:
    body = {"name": "x", "source_id": tenant.source_id, "target_url": "https://a.example", "campaign": "c"}
    assert call(client, tenant, "POST", "/api/v1/ad-links", 400, json={**body, "channel": "baidu"})["code"] == (
        "invalid_source")  # fmt: skip
    assert call(client, tenant, "POST", "/api/v1/ad-links", 400, json={**body, "channel": "myspace"})["code"] == (
        "invalid_request")  # fmt: skip
    missing = call(client, tenant, "POST", "/api/v1/ad-links", 404, json={**body, "source_id": "src_nope",
                                                                          "channel": "baidu"})  # fmt: skip
    assert missing["code"] == "source_not_found"


def test_unknown_links_are_404_and_links_stay_in_their_workspace(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    for path in ("/a/nope1234", "/a/UPPER", "/a/..%2Fapi"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 404 and resp.json()["code"] in ("ad_link_not_found", "not_found"), path
    link = make_link(client, tenant, ads_source(platform, tenant))
    other = new_tenant(platform, name="别家 Other")
    assert call(client, other, "GET", f"/api/v1/ad-links/{link['id']}", 404)["code"] == "ad_link_not_found"
    assert call(client, other, "GET", "/api/v1/ad-links")["items"] == []


def test_a_click_lands_even_when_it_cannot_be_recorded(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    source = ads_source(platform, tenant)
    link = make_link(client, tenant, source)
    with platform.engine.begin() as conn:  # the source switched off after the ad went live
        conn.execute(update(Source).where(Source.id == source).values(disabled_at=datetime.now(UTC)))
    resp = client.get(f"/a/{link['id']}?clickid=EQ123", follow_redirects=False)
    assert resp.status_code == 302 and "clickid=EQ123" in resp.headers["location"]
    platform.pipeline.drain()
    assert events_of(platform, tenant.workspace_id, "Ad Clicked") == []


def test_landing_url_replaces_only_what_the_link_sets() -> None:
    link = {"target_url": "https://a.example/p?q=%E8%8C%B6+x&utm_medium=old&keep=1", "utm_source": "baidu",
            "utm_medium": "cpc", "utm_campaign": "c", "utm_term": None, "utm_content": None}  # fmt: skip
    out = landing_url(link, {"clickid": "abc", "other": "zzz"})
    assert (
        out
        == "https://a.example/p?q=%E8%8C%B6+x&keep=1&utm_source=baidu&utm_medium=cpc&utm_campaign=c&clickid=abc"
    )
    assert check_target("  https://a.example/x  ") == "https://a.example/x"
    with pytest.raises(InvalidInput):
        check_target("https://" + "a" * 3000 + ".example")


@pytest.mark.postgres
def test_links_and_clicks_on_postgresql(pg_client: tuple[TestClient, Platform, Tenant]) -> None:
    client, platform, tenant = pg_client
    link = make_link(client, tenant, ads_source(platform, tenant), channel="ocean_engine")
    resp = client.get(f"/a/{link['id']}?clickid=EQ42", follow_redirects=False)
    assert resp.status_code == 302 and "utm_source=oceanengine" in resp.headers["location"]
    platform.pipeline.drain()
    assert call(client, tenant, "GET", f"/api/v1/ad-links/{link['id']}")["clicks"] == 1
