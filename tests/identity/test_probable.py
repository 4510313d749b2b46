"""Probabilistic matching in the graph: a POS guest known by name, birthday, city and a
masked phone joins the member they are; borderline pairs wait for review."""

from __future__ import annotations

import random
from typing import Any

import pytest

from quanyu.collect.messages import Envelope
from quanyu.errors import Conflict
from quanyu.identity.lookup import lookup
from quanyu.identity.probable import decide, reviews, run_matching
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from testkit import Tenant

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CITIES = ["上海", "北京", "杭州", "广州", "深圳", "成都"]


def send(platform: Platform, tenant: Tenant, messages: list[dict[str, Any]]) -> None:
    source = platform.sources.get(tenant.workspace_id, tenant.source_id)
    future, receipt = platform.intake.accept(source, messages, None, Envelope())
    future.result()
    assert not receipt.quarantined
    platform.pipeline.drain()


def members(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(3)
    out = []
    for i in range(n):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN)
        birthday = f"19{rnd.randrange(60, 99)}-0{rnd.randrange(1, 9)}-1{rnd.randrange(0, 9)}"
        street = f"{rnd.choice(['中山路', '人民路', '解放路'])}{rnd.randrange(1, 300)}号"
        traits = {"name": name, "phone": f"139{rnd.randrange(10**8):08d}", "birthday": birthday,
                  "city": rnd.choice(CITIES), "address": street}  # fmt: skip
        out.append(
            {"type": "identify", "userId": f"m{i}", "timestamp": "2026-05-01T10:00:00Z", "traits": traits}
        )
    return out


def test_a_pos_guest_merges_into_the_member_and_borderline_pairs_wait(
    platform: Platform, tenant: Tenant
) -> None:
    people = members(60)
    send(platform, tenant, people)
    target = people[7]["traits"]
    masked = target["phone"][:3] + "****" + target["phone"][-4:]
    birthday = target["birthday"].replace("-", "/")
    send(platform, tenant, [
        # The same person at a store till: name, birthday in another format, masked phone, city.
        {"type": "track", "event": "Order Completed", "anonymousId": "pos-guest-1", "timestamp": "2026-05-03T10:00:00Z",
         "traits": {"name": target["name"], "birthday": birthday, "phone": masked, "city": target["city"],
                    "address": target["address"]}},
        # Same name, birthday and city but no phone or address: worth a look, not a merge.
        {"type": "track", "event": "Order Completed", "anonymousId": "pos-guest-2", "timestamp": "2026-05-03T11:00:00Z",
         "traits": {"name": people[9]["traits"]["name"], "city": people[9]["traits"]["city"],
                    "birthday": people[9]["traits"]["birthday"]}},
    ])  # fmt: skip
    ws, wh = tenant.workspace_id, platform.warehouse
    assert (
        lookup(wh, ws, "anonymous_id", "pos-guest-1")["profile_id"]
        != lookup(wh, ws, "user_id", "m7")["profile_id"]
    )

    # First without merging on its own: the pair waits for review with its weight.
    run = run_matching(wh, ws, threshold=0.95, review_threshold=0.3, auto_merge=False)
    assert run.records == 62 and run.merged_pairs == 0 and run.queued_for_review >= 1
    guest = lookup(wh, ws, "anonymous_id", "pos-guest-1")["profile_id"]
    member = lookup(wh, ws, "user_id", "m7")["profile_id"]
    [pending] = [r for r in reviews(wh, ws)["items"] if set(r["profiles"]) == {guest, member}]
    assert pending["match_weight"] > 0 and pending["status"] == "pending"
    assert guest != member
    # Asking again queues nothing twice.
    assert run_matching(wh, ws, threshold=0.95, review_threshold=0.3, auto_merge=False).queued_for_review == 0

    decided = decide(wh, ws, pending["review_id"], "merge", "ops@brand")
    assert decided["review"]["status"] == "merged" and decided["review"]["actor"] == "ops@brand"
    assert lookup(wh, ws, "anonymous_id", "pos-guest-1")["profile_id"] == member
    with pytest.raises(Conflict):
        decide(wh, ws, pending["review_id"], "reject", "ops@brand")
    # Names alone never merge a stranger; a rebuild keeps the reviewed link.
    assert (
        lookup(wh, ws, "anonymous_id", "pos-guest-2")["profile_id"]
        != lookup(wh, ws, "user_id", "m9")["profile_id"]
    )
    rebuild(wh, ws)
    assert lookup(wh, ws, "anonymous_id", "pos-guest-1")["profile_id"] == member


def test_above_the_threshold_people_merge_at_once(platform: Platform, tenant: Tenant) -> None:
    people = members(60)
    target = people[7]["traits"]
    send(platform, tenant, [*people, {
        "type": "track", "event": "Order Completed", "anonymousId": "pos-guest-1", "timestamp": "2026-05-03T10:00:00Z",
        "traits": {"name": target["name"], "birthday": target["birthday"].replace("-", "/"),
                   "phone": target["phone"][:3] + "****" + target["phone"][-4:], "city": target["city"],
                   "address": target["address"]}}])  # fmt: skip
    ws, wh = tenant.workspace_id, platform.warehouse
    run = run_matching(wh, ws)
    assert run.merged_pairs == 1 and run.stitch is not None and run.stitch.merges == 1
    assert (
        lookup(wh, ws, "anonymous_id", "pos-guest-1")["profile_id"]
        == lookup(wh, ws, "user_id", "m7")["profile_id"]
    )
