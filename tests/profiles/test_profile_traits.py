"""Merged traits: the most trusted source wins, then the latest value."""

from __future__ import annotations

from profilekit import Brand, day

from quanyu.profiles import TraitPrecedence, profile_view, refresh


def _view(brand: Brand, user_id: str, **kw: object) -> dict:
    refresh(brand.platform.warehouse, brand.workspace_id, **kw)  # type: ignore[arg-type]
    view = profile_view(brand.platform.warehouse, brand.workspace_id, brand.profile_of(user_id))
    assert view is not None
    return view


def test_crm_beats_web_even_when_older_and_recency_breaks_ties(brand: Brand) -> None:
    brand.send("crm", {"type": "identify", "userId": "u1", "timestamp": day(1),
                       "traits": {"name": "王小明", "level": "金卡"}})  # fmt: skip
    brand.send("website", {"type": "identify", "userId": "u1", "timestamp": day(5),
                           "traits": {"name": "xiaoming", "city": "上海", "level": "普通"}})  # fmt: skip
    # Same priority as the website (h5): the later value wins.
    brand.send("h5", {"type": "identify", "userId": "u1", "timestamp": day(9), "traits": {"city": "杭州"}})
    brand.send("h5", {"type": "identify", "userId": "u1", "timestamp": day(3), "traits": {"city": "苏州"}})
    brand.resolve()
    view = _view(brand, "u1")
    assert view["traits"] == {"name": "王小明", "level": "金卡", "city": "杭州"}
    assert view["trait_sources"]["name"]["source_type"] == "crm"
    assert view["trait_sources"]["city"]["source_type"] == "h5"
    assert view["trait_sources"]["city"]["at"].startswith("2026-03-10")


def test_nulls_do_not_erase_and_group_traits_are_not_the_persons(brand: Brand) -> None:
    brand.send(
        "website",
        {"type": "identify", "userId": "u1", "timestamp": day(1), "traits": {"city": "上海", "vip": True}},
        {"type": "identify", "userId": "u1", "timestamp": day(2), "traits": {"city": None}},
        {"type": "group", "userId": "u1", "groupId": "g1", "timestamp": day(3), "traits": {"name": "茶友群"}},
        {"type": "track", "event": "Signed Up", "userId": "u1", "timestamp": day(4),
         "context": {"traits": {"birthday": "1990-05-01", "tags": ["绿茶", "白茶"]}}},
    )  # fmt: skip
    brand.resolve()
    assert _view(brand, "u1")["traits"] == {"city": "上海", "vip": True, "birthday": "1990-05-01",
                                            "tags": ["绿茶", "白茶"]}  # fmt: skip


def test_priorities_are_overridable(brand: Brand) -> None:
    brand.send(
        "tmall", {"type": "identify", "userId": "u1", "timestamp": day(1), "traits": {"name": "收货人"}}
    )
    brand.send(
        "website", {"type": "identify", "userId": "u1", "timestamp": day(0), "traits": {"name": "本人"}}
    )
    brand.resolve()
    assert _view(brand, "u1")["traits"]["name"] == "本人"
    marketplace_first = TraitPrecedence.with_overrides({"tmall": 99})
    assert _view(brand, "u1", precedence=marketplace_first)["traits"]["name"] == "收货人"
