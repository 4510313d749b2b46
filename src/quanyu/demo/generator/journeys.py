"""Shopper behaviour: who uses which channels, how often, and when they stop.

Each person gets a persona (marketplace buyer, WeChat regular, store regular, content
follower, web lead), an active period (churned people stop early) and an engagement level.
Their touches and orders are scheduled on days weighted towards weekends and festivals,
then played in time order by `World.live`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .app import app_session
from .marketplaces import content, join_membership, shop
from .offline import salon_signup, store_visit
from .people import Person
from .stores import home_store
from .web import ad_journey, submit_form, visit_h5, visit_website
from .wechat import mp_session, oa_touch, watch_live, wecom_chat
from .world import Action, World

TOUCHES: dict[str, tuple[Action, tuple[Any, ...]]] = {
    "ads": (ad_journey, ()),
    "website": (visit_website, ()),
    "h5": (visit_h5, ()),
    "app": (app_session, ()),
    "form": (submit_form, ()),
    "oa": (oa_touch, ()),
    "mini_program": (mp_session, ()),
    "wecom": (wecom_chat, ()),
    "live": (watch_live, ()),
    "salon": (salon_signup, ()),
    "tmall_member": (join_membership, ("tmall_flagship",)),
    "jd_member": (join_membership, ("jd_flagship",)),
    "douyin": (content, ("douyin",)),
    "xiaohongshu": (content, ("xiaohongshu",)),
}
BUYS: dict[str, tuple[Action, tuple[Any, ...]]] = {
    "tmall": (shop, ("tmall_flagship",)),
    "jd": (shop, ("jd_flagship",)),
    "youzan": (shop, ("youzan_shop",)),
    "douyin": (shop, ("douyin",)),
    "xiaohongshu": (shop, ("xiaohongshu",)),
    "live": (watch_live, (True,)),
    "mini_program": (mp_session, (True,)),
    "website": (visit_website, (None, True)),
    "app": (app_session, (True,)),
    "store": (store_visit, ()),
}


@dataclass(frozen=True)
class Persona:
    """A kind of shopper: where they are first met, what they touch, where they buy."""

    name: str
    weight: float
    entry: str  # a touch key, or "buy" when the first order is how the brand meets them
    touches: tuple[tuple[str, float, float], ...]  # (touch, probability, mean repeat visits)
    buys: tuple[tuple[str, float], ...]  # (buy channel, weight)
    orders: float  # mean orders of an engaged buyer over the year


PERSONAS = (
    Persona(
        "marketplace",
        0.32,
        "buy",
        (
            ("tmall_member", 0.3, 0),
            ("jd_member", 0.08, 0),
            ("xiaohongshu", 0.25, 4),
            ("douyin", 0.2, 4),
            ("ads", 0.15, 0.5),
            ("website", 0.12, 1),
            ("oa", 0.12, 2),
            ("live", 0.06, 1),
            ("h5", 0.06, 0),
        ),
        (("tmall", 0.6), ("jd", 0.3), ("douyin", 0.1)),
        2.8,
    ),
    Persona(
        "wechat",
        0.22,
        "oa",
        (
            ("oa", 0.9, 3),
            ("mini_program", 0.85, 2.5),
            ("wecom", 0.4, 3),
            ("h5", 0.4, 1),
            ("live", 0.3, 3),
            ("ads", 0.2, 0.5),
            ("salon", 0.05, 0),
            ("website", 0.08, 1),
        ),
        (("mini_program", 0.6), ("youzan", 0.25), ("live", 0.15)),
        2.8,
    ),
    Persona(
        "store",
        0.20,
        "buy",
        (
            ("wecom", 0.35, 3),
            ("oa", 0.35, 3),
            ("mini_program", 0.35, 3),
            ("salon", 0.2, 0.3),
            ("form", 0.05, 0),
            ("app", 0.12, 3),
            ("tmall_member", 0.08, 0),
            ("h5", 0.1, 0),
        ),
        (("store", 0.85), ("mini_program", 0.1), ("tmall", 0.05)),
        3.2,
    ),
    Persona(
        "content",
        0.14,
        "xiaohongshu",
        (
            ("xiaohongshu", 0.7, 7),
            ("douyin", 0.6, 7),
            ("live", 0.25, 2),
            ("ads", 0.3, 0.5),
            ("h5", 0.15, 0),
            ("oa", 0.12, 1),
            ("tmall_member", 0.05, 0),
        ),
        (("douyin", 0.35), ("xiaohongshu", 0.3), ("tmall", 0.25), ("live", 0.1)),
        1.8,
    ),
    Persona(
        "web",
        0.12,
        "ads",
        (
            ("ads", 0.8, 1),
            ("website", 0.9, 3),
            ("h5", 0.3, 1),
            ("form", 0.35, 0),
            ("app", 0.4, 4),
            ("salon", 0.1, 0),
            ("wecom", 0.15, 1),
            ("oa", 0.2, 1),
        ),
        (("website", 0.6), ("app", 0.4)),
        1.8,
    ),
)
_PERSONA_CUM = tuple(sum(p.weight for p in PERSONAS[: i + 1]) for i in range(len(PERSONAS)))


def plan(world: World, person: Person) -> str:
    """Schedule a person's year on the world's agenda; returns the persona name."""
    rng = world.rng
    persona = _pick_persona(rng)
    store = home_store(rng, person.city)
    person.store_id, person.guide_id = store.store_id, rng.choice(store.guides)
    first, last = _active_days(world, person)
    engagement = rng.lognormvariate(0, 0.5)
    orders = _order_count(rng, persona, engagement, last - first + 1)
    if persona.entry == "buy":  # met at the till or through an order: they did buy
        _schedule(world, first, last, *BUYS[_pick(rng, persona.buys)], exact=True)
        orders = max(orders - 1, 0)
    else:
        _schedule(world, first, last, *TOUCHES[persona.entry], exact=True)
    for touch, probability, mean in persona.touches:
        if rng.random() < probability:
            for _ in range(_visits(rng, mean * engagement)):
                _schedule(world, first, last, *TOUCHES[touch])
    _schedule_orders(world, persona, first, last, orders)
    return persona.name


def _pick_persona(rng: random.Random) -> Persona:
    target = rng.random() * _PERSONA_CUM[-1]
    return next(p for p, bound in zip(PERSONAS, _PERSONA_CUM, strict=True) if target < bound)


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    target = rng.random() * sum(w for _, w in weighted)
    for key, weight in weighted:
        target -= weight
        if target < 0:
            return key
    return weighted[-1][0]


def _active_days(world: World, person: Person) -> tuple[int, int]:
    rng, days = world.rng, world.timeline.days
    # A fifth are customers from before the window; the rest arrive during it.
    first = rng.randrange(min(20, days)) if rng.random() < 0.2 else world.timeline.pick_day(rng)
    last = days - 1
    if rng.random() < 0.3:
        person.flags.add("churned")
        last = min(last, first + int(rng.expovariate(1 / 70)))
    return first, last


def _order_count(rng: random.Random, persona: Persona, engagement: float, span: int) -> int:
    if rng.random() < 0.3:
        return 0
    extra = (persona.orders - 1) * engagement * min(1.0, span / 200)
    return min(1 + int(rng.expovariate(1 / extra)) if extra > 0.05 else 1, 40)


def _visits(rng: random.Random, mean: float) -> int:
    return 1 + min(int(rng.expovariate(1 / mean)), 30) if mean > 0.05 else 1


def _schedule(
    world: World, first: int, last: int, action: Action, args: tuple[Any, ...], exact: bool = False
) -> None:
    day = first if exact else world.timeline.pick_day(world.rng, first, last)
    world.later(world.timeline.moment(world.rng, day), action, *args)


def _schedule_orders(world: World, persona: Persona, first: int, last: int, orders: int) -> None:
    rng = world.rng
    main = _pick(rng, persona.buys)
    other = _pick(rng, persona.buys) if rng.random() < 0.25 else main
    for _ in range(orders):
        _schedule(world, first, last, *BUYS[main if rng.random() < 0.8 else other])
