"""The rebuild path end to end: events through the collector and pipeline, then people."""

from __future__ import annotations

from typing import Any

import pytest

from quanyu.collect.messages import Envelope
from quanyu.errors import InvalidInput, NotFound
from quanyu.identity.lookup import lookup, profile
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from testkit import Tenant


def send(platform: Platform, tenant: Tenant, *messages: dict[str, Any]) -> dict[str, int]:
    """Through the collector and the pipeline, which stitches the new events in."""
    source = platform.sources.get(tenant.workspace_id, tenant.source_id)
    future, receipt = platform.intake.accept(source, list(messages), None, Envelope())
    future.result()
    assert not receipt.quarantined
    return platform.pipeline.drain().people


def ts(day: int) -> str:
    return f"2026-03-{day:02d}T10:00:00Z"


def test_one_person_behind_a_cookie_a_login_a_phone_and_a_mini_program(
    platform: Platform, tenant: Tenant
) -> None:
    send(
        platform, tenant,
        {"type": "page", "anonymousId": "cookie-1", "timestamp": ts(1)},
        {"type": "identify", "anonymousId": "cookie-1", "userId": "u-100", "timestamp": ts(2),
         "traits": {"phone": "+86 138-0000-1234"}},
        {"type": "track", "event": "Order Completed", "anonymousId": "mp-anon", "timestamp": ts(3),
         "context": {"traits": {"phone": "13800001234"},
                     "externalIds": [{"id": "o6zAJs-abc", "type": "mini_program_openid", "app_id": "wxshop"}]}},
        {"type": "track", "event": "Page", "userId": "u-200", "anonymousId": "cookie-2", "timestamp": ts(4)},
    )  # fmt: skip
    result = rebuild(platform.warehouse, tenant.workspace_id)
    assert result.profiles == 2 and result.links_dropped == 0

    person = lookup(platform.warehouse, tenant.workspace_id, "phone", "138 0000 1234")
    kinds = {(i["type"], i["value"]) for i in person["identifiers"]}
    assert kinds == {("anonymous_id", "cookie-1"), ("user_id", "u-100"), ("phone", "13800001234"),
                     ("anonymous_id", "mp-anon"), ("mini_program_openid", "o6zAJs-abc")}  # fmt: skip
    assert (
        lookup(platform.warehouse, tenant.workspace_id, "mini_program_openid", "o6zAJs-abc", "wxshop")
        == person
    )
    other = lookup(platform.warehouse, tenant.workspace_id, "user_id", "u-200")
    assert other["profile_id"] != person["profile_id"]
    assert person["first_seen"].startswith("2026-03-01")  # the cookie came first, and anchors the id


def test_junk_values_do_not_merge_strangers(platform: Platform, tenant: Tenant) -> None:
    junk = {"traits": {"phone": "null"}, "context": {"device": {"id": "00000000"}}}
    send(
        platform, tenant,
        {"type": "identify", "userId": "a", "timestamp": ts(1), **junk},
        {"type": "identify", "userId": "b", "timestamp": ts(2), **junk},
    )  # fmt: skip
    assert rebuild(platform.warehouse, tenant.workspace_id).profiles == 2
    with pytest.raises(InvalidInput):
        lookup(platform.warehouse, tenant.workspace_id, "phone", "null")


def test_merged_profile_ids_redirect_to_the_survivor(platform: Platform, tenant: Tenant) -> None:
    send(platform, tenant, {"type": "page", "anonymousId": "c-1", "timestamp": ts(1)},
         {"type": "identify", "userId": "u-1", "timestamp": ts(5)})  # fmt: skip
    rebuild(platform.warehouse, tenant.workspace_id)
    cookie = lookup(platform.warehouse, tenant.workspace_id, "anonymous_id", "c-1")["profile_id"]
    login = lookup(platform.warehouse, tenant.workspace_id, "user_id", "u-1")["profile_id"]
    assert cookie != login
    people = send(
        platform, tenant, {"type": "identify", "anonymousId": "c-1", "userId": "u-1", "timestamp": ts(6)}
    )
    assert people["merges"] == 1  # the pipeline stitched it in; a rebuild agrees
    assert rebuild(platform.warehouse, tenant.workspace_id).merged_away == 0
    merged = profile(platform.warehouse, tenant.workspace_id, login)
    assert merged["profile_id"] == cookie and merged["redirected_from"] == login  # the older person survives
    assert profile(platform.warehouse, tenant.workspace_id, cookie)["redirected_from"] is None
    with pytest.raises(NotFound):
        lookup(platform.warehouse, tenant.workspace_id, "user_id", "nobody")
