"""The brand's own mobile app: installs, sessions, screens and orders."""

from __future__ import annotations

from typing import Any

from .catalog import pick_products, product_fields, product_line
from .orders import complete_order
from .outbox import Who
from .people import Person
from .web import sign_in
from .world import World

_ZERO_IDFA = "00000000-0000-0000-0000-000000000000"
_CARRIERS = ("中国移动", "中国联通", "中国电信")
_DEVICES = (
    ("Apple", "iPhone15,2", "ios", "iOS", "17.4.1"),
    ("Apple", "iPhone14,5", "ios", "iOS", "16.7.5"),
    ("HUAWEI", "NOH-AN00", "android", "HarmonyOS", "4.0.0"),
    ("Xiaomi", "23049RAD8C", "android", "Android", "14"),
    ("OPPO", "PHB110", "android", "Android", "13"),
    ("vivo", "V2227A", "android", "Android", "13"),
)


def _device(world: World, person: Person) -> tuple[dict[str, Any], str]:
    manufacturer, model, kind, os_name, os_version = _DEVICES[int(person.person_id[1:]) % len(_DEVICES)]
    device_id = person.id("idfv" if kind == "ios" else "android_id", world.ids)
    if person.noisy and world.chance(0.1):
        device_id = _ZERO_IDFA if kind == "ios" else "0"  # limited ad tracking / SDK bug
    context = {
        "app": {"name": "山茶记", "version": "3.8.2", "build": "382", "namespace": "cn.camelliatea.app"},
        "device": {"id": device_id, "manufacturer": manufacturer, "model": model, "type": kind},
        "os": {"name": os_name, "version": os_version},
        "network": {"wifi": world.chance(0.7), "carrier": world.rng.choice(_CARRIERS)},
        "ip": f"198.51.100.{world.rng.randrange(1, 255)}",
    }
    return context, device_id


def app_session(world: World, person: Person, t: int, buy: bool = False) -> None:
    """Open the app, look at a few products, maybe sign in and order."""
    install = person.id("app_install", world.ids)
    context, device_id = _device(world, person)
    logged_in = "app_install_login" in person.flags
    who = Who(person.person_id, person.user_id if logged_in else None, install, (("device_id", device_id),))
    if "app_installed" not in person.flags:
        person.flags.add("app_installed")
        world.outbox.track(
            "app", who, t, "Application Installed", {"version": "3.8.2", "build": "382"}, context
        )
    world.outbox.track(
        "app", who, t + 1, "Application Opened", {"from_background": False, "version": "3.8.2"}, context
    )
    world.outbox.screen("app", who, t + 3, "首页 Home", {}, context)
    t += world.rng.randint(10, 60)
    for product in pick_products(world.rng, person.tea_lover):
        world.outbox.screen("app", who, t, "商品详情 Product", {"product_id": product.product_id}, context)
        world.outbox.track("app", who, t + 1, "Product Viewed", product_fields(product), context)
        t += world.rng.randint(8, 90)
    if buy or world.chance(0.05):
        _app_checkout(world, person, t, install, device_id, context, buy)


def _app_checkout(
    world: World, person: Person, t: int, install: str, device_id: str, context: dict[str, Any], buy: bool
) -> None:
    t = sign_in(world, person, t, "app", install, context)
    if not buy:
        return
    who = Who(person.person_id, person.user_id, install, (("device_id", device_id),))
    products = pick_products(world.rng, person.tea_lover)
    for product in products:
        world.outbox.track("app", who, t, "Product Added", product_line(product), context)
        t += world.rng.randint(5, 40)
    world.outbox.screen("app", who, t, "购物车 Cart", {}, context)
    world.outbox.track("app", who, t + 5, "Checkout Started", {"currency": "CNY"}, context)
    complete_order(
        world,
        person,
        t + world.rng.randint(20, 120),
        "app",
        who,
        products,
        extra={"payment_method": world.rng.choice(("alipay", "wechat_pay"))},
        context=context,
    )
