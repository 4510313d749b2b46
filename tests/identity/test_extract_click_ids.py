"""Ad click ids: the click and the landing page it opened are one visitor."""

from __future__ import annotations

from quanyu.collect.messages import Envelope
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from testkit import Tenant


def test_a_click_id_links_the_ad_click_to_the_landing_visit(platform: Platform, tenant: Tenant) -> None:
    messages = [
        # The ad platform's connector knows the click only by its id.
        {"type": "track", "event": "Ad Clicked", "anonymousId": "EJclick1", "timestamp": "2026-03-01T10:00:00Z",
         "properties": {"platform": "oceanengine", "clickid": "EJclick1"}},
        {"type": "page", "anonymousId": "cookie-1", "timestamp": "2026-03-01T10:00:05Z",
         "properties": {"url": "https://h5.example.cn/?clickid=EJclick1", "clickid": "EJclick1"}},
        {"type": "page", "anonymousId": "cookie-2", "timestamp": "2026-03-01T11:00:00Z",
         "properties": {"gdt_vid": "wx0other"}},
        {"type": "page", "anonymousId": "cookie-3", "timestamp": "2026-03-01T12:00:00Z", "properties": {"bd_vid": "null"}},
    ]  # fmt: skip
    source = platform.sources.get(tenant.workspace_id, tenant.source_id)
    future, _ = platform.intake.accept(source, messages, None, Envelope())
    future.result()
    platform.pipeline.drain()
    rebuild(platform.warehouse, tenant.workspace_id)
    nodes = platform.warehouse.table("identity_nodes")
    rows = platform.warehouse.execute(nodes.select("key", "profile_id")).to_pylist()
    profile = {r["key"]: r["profile_id"] for r in rows}
    assert (
        profile["anonymous_id:EJclick1"] == profile["anonymous_id:cookie-1"] == profile["click_id:EJclick1"]
    )
    assert (
        profile["click_id:wx0other"] == profile["anonymous_id:cookie-2"] != profile["anonymous_id:cookie-1"]
    )
    assert "click_id:null" not in profile  # junk is junk whatever the type
