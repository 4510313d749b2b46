"""Orders in Segment's e-commerce spec: platform order ids, totals, coupons and refunds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .catalog import COUPONS, Product, basket_lines
from .membership import after_purchase, take_coupon
from .outbox import Who
from .people import Person
from .timeline import DAY
from .world import World

# Where the brand's own member coupons can be redeemed.
OWN_CHANNELS = frozenset({"website", "app", "mini_program", "pos"})
# Marketplaces run store-wide "满减" promotions during festivals.
_MARKETPLACES = frozenset({"tmall_flagship", "jd_flagship", "douyin", "xiaohongshu"})
_FREE_SHIPPING = frozenset({"tmall_flagship", "jd_flagship", "pos", "douyin"})
_REFUND_REASONS = ("七天无理由退货", "商品破损", "发错货", "口感与描述不符", "买多了/不想要了", "物流太慢")
_AFFILIATION = {
    "website": "山茶记官网",
    "app": "山茶记App",
    "mini_program": "山茶记小程序商城",
    "tmall_flagship": "山茶记旗舰店(天猫)",
    "jd_flagship": "山茶记京东旗舰店",
    "youzan_shop": "山茶记有赞微商城",
    "douyin": "山茶记抖音小店",
    "xiaohongshu": "山茶记小红书店",
    "channels_live": "山茶记视频号小店",
    "pos": "山茶记门店",
}


def _digits(world: World, size: int, lead: str = "") -> str:
    rest = size - len(lead)
    return lead + f"{world.rng.randrange(10**rest):0{rest}d}"


def _compact(world: World, t: int) -> str:
    return world.timeline.stamp(t)[:19].replace("-", "").replace("T", "").replace(":", "")


_ORDER_IDS: dict[str, Callable[[World, int, str], str]] = {
    "tmall_flagship": lambda w, t, s: _digits(w, 19, w.rng.choice("1234")),
    "jd_flagship": lambda w, t, s: _digits(w, 12, w.rng.choice("23")),
    "youzan_shop": lambda w, t, s: "E" + _compact(w, t) + _digits(w, 8),
    "douyin": lambda w, t, s: _digits(w, 19, "69"),
    "xiaohongshu": lambda w, t, s: "XHS" + _compact(w, t)[2:8] + _digits(w, 10),
    "channels_live": lambda w, t, s: _digits(w, 19, "37"),
    "mini_program": lambda w, t, s: "MP" + _compact(w, t)[:8] + _digits(w, 8),
    "website": lambda w, t, s: "WEB" + _compact(w, t)[:8] + _digits(w, 6),
    "app": lambda w, t, s: "APP" + _compact(w, t)[:8] + _digits(w, 6),
    "pos": lambda w, t, s: _receipt(w, t, s),
}


def _receipt(world: World, t: int, store_id: str) -> str:
    day = _compact(world, t)[:8]
    return f"POS-{store_id}-{day}-{world.next_number(f'pos:{store_id}:{day}'):04d}"


def new_order_id(world: World, source: str, t: int, store_id: str = "") -> str:
    """An order id in the style of `source` (a 19-digit Tmall id, `POS-SH001-...`)."""
    make = _ORDER_IDS[source]
    while True:
        order_id = make(world, t, store_id)
        if world.next_number(f"order:{order_id}") == 1:
            return order_id


def complete_order(
    world: World,
    person: Person,
    t: int,
    source: str,
    who: Who,
    products: list[Product],
    *,
    extra: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
) -> int:
    """Emit `Order Completed` (and a coupon use or a later refund); returns the next moment."""
    lines = basket_lines(world.rng, products)
    subtotal = round(sum(line["price"] * line["quantity"] for line in lines), 2)
    store_id = str((extra or {}).get("store_id", ""))
    order_id = new_order_id(world, source, t, store_id)
    properties: dict[str, Any] = {"order_id": order_id, "affiliation": _AFFILIATION[source]}
    discount = _promotion(world, source, t, subtotal)
    coupon = take_coupon(person, subtotal) if source in OWN_CHANNELS else None
    if coupon is not None:
        discount += COUPONS[coupon].amount
        properties["coupon"] = coupon
        world.outbox.track(
            source,
            who,
            t,
            "Coupon Applied",
            {
                "order_id": order_id,
                "coupon_id": coupon,
                "coupon_name": COUPONS[coupon].name,
                "discount": COUPONS[coupon].amount,
            },
            context,
        )
        t += world.rng.randint(5, 40)
    revenue = round(subtotal - discount, 2)
    shipping = 0.0 if source in _FREE_SHIPPING or revenue >= 99 else 8.0
    properties.update(
        {
            "total": round(revenue + shipping, 2),
            "subtotal": subtotal,
            "revenue": revenue,
            "shipping": shipping,
            "discount": discount,
            "currency": "CNY",
            "products": lines,
        }
    )
    properties.update(extra or {})
    world.outbox.track(source, who, t, "Order Completed", properties, context, traits)
    after_purchase(world, person, t, revenue)
    if world.chance(0.015 if source == "pos" else 0.045):
        world.later(
            t + world.rng.randint(DAY // 2, 12 * DAY), refund, source, who, order_id, properties["total"]
        )
    return t + world.rng.randint(5, 60)


def refund(world: World, person: Person, t: int, source: str, who: Who, order_id: str, total: float) -> None:
    """`Order Refunded` for a whole order, some days after it was placed."""
    world.outbox.track(
        source,
        who,
        t,
        "Order Refunded",
        {
            "order_id": order_id,
            "total": total,
            "currency": "CNY",
            "reason": world.rng.choice(_REFUND_REASONS),
        },
    )
    person.spend = max(person.spend - total, 0.0)


def _promotion(world: World, source: str, t: int, subtotal: float) -> float:
    if source not in _MARKETPLACES or world.timeline.festival(t) is None:
        return 0.0
    return float(int(subtotal // 200) * 25)
