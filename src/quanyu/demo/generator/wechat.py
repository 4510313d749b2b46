"""The WeChat private domain: official account, mini-program shop, WeCom and Channels live."""

from __future__ import annotations

from typing import Any

from .catalog import SEARCH_TERMS, Product, pick_products, product_fields, product_line
from .consent import member_preferences
from .identifiers import CHANNELS_APP_ID, MINI_PROGRAM_APP_ID, OA_APP_ID, mask_name, mask_phone
from .membership import register
from .noise import scribble_phone
from .orders import complete_order
from .outbox import Who
from .people import Person
from .timeline import DAY, HOUR
from .world import World

_ARTICLES = (
    ("A2401", "明前龙井怎么挑？三招教你辨好茶"),
    ("A2402", "夏天喝白茶还是绿茶"),
    ("A2403", "一杯茶的时间 | 山茶记主理人手记"),
    ("A2404", "冷泡茶的正确打开方式"),
    ("A2405", "会员日福利来啦"),
    ("A2406", "中秋茶礼指南"),
)
_MENUS = ("会员中心", "门店查询", "领券中心", "小程序商城", "联系导购")
_LIVE_TITLES = ("周三茶会·主理人直播", "茶具开箱专场", "茶友答疑夜", "产地溯源直播")
_COMMENTS = (
    "这款多少钱",
    "已下单",
    "主播泡茶好专业",
    "有优惠券吗",
    "求链接",
    "包邮吗",
    "回购第三次了",
    "想要那个盖碗",
)
# Mini-program scene codes: 1089 recents, 1047 scanned mini-program code, 1007 shared card,
# 1035 official-account menu, 1011 scanned QR code.
_MP_SCENES = (1089, 1089, 1089, 1001, 1007, 1035, 1011)


def oa_who(world: World, person: Person) -> Who:
    """The official account knows its followers by openid and unionid."""
    openid = person.id("oa_openid", world.ids)
    return Who(
        person.person_id,
        None,
        openid,
        (("wechat_openid", openid, OA_APP_ID), ("wechat_unionid", person.id("wechat_unionid", world.ids))),
    )


def follow_oa(world: World, person: Person, t: int, scene: str, extra: dict[str, Any] | None = None) -> None:
    """Follow the official account (or scan its QR again) from a parametric QR `scene`."""
    who = oa_who(world, person)
    properties: dict[str, Any] = {"app_id": OA_APP_ID, **(extra or {})}
    if "oa_follower" in person.flags:
        properties["scene"] = scene
        world.outbox.track("wechat_oa", who, t, "QR Scanned", properties)
        return
    person.flags.add("oa_follower")
    # WeChat's push says EventKey "qrscene_<scene>" on a follow and "<scene>" on a scan; the
    # connector gives both the bare scene (one vocabulary), and so does the demo.
    properties["scene"] = scene
    world.outbox.track("wechat_oa", who, t, "Official Account Followed", properties)
    if world.chance(0.09):
        world.later(t + world.rng.randint(DAY, 120 * DAY), unfollow_oa)


def unfollow_oa(world: World, person: Person, t: int) -> None:
    """Unfollow; the openid stays the same if they come back."""
    if "oa_follower" in person.flags:
        person.flags.discard("oa_follower")
        world.outbox.track(
            "wechat_oa", oa_who(world, person), t, "Official Account Unfollowed", {"app_id": OA_APP_ID}
        )


def oa_touch(world: World, person: Person, t: int) -> None:
    """Follow from a campaign poster or search, or read an article / tap the menu."""
    if "oa_follower" not in person.flags:
        if world.chance(0.5):
            follow_oa(
                world,
                person,
                t,
                f"campaign_{world.timeline.campaign_key(t)}_poster",
                {"scene_type": "campaign"},
            )
        else:
            scene = world.rng.choice(("ADD_SCENE_SEARCH", "ADD_SCENE_PROFILE_CARD"))
            follow_oa(world, person, t, scene, {"scene_type": scene[10:].lower()})
        return
    who = oa_who(world, person)
    if world.chance(0.6):
        article_id, title = world.rng.choice(_ARTICLES)
        world.outbox.track(
            "wechat_oa",
            who,
            t,
            "Article Read",
            {"article_id": article_id, "title": title, "app_id": OA_APP_ID},
        )
    else:
        world.outbox.track(
            "wechat_oa", who, t, "Menu Clicked", {"menu": world.rng.choice(_MENUS), "app_id": OA_APP_ID}
        )


def mp_who(world: World, person: Person) -> Who:
    """Mini-program identity: openid and unionid, plus the account id once logged in."""
    openid = person.id("mp_openid", world.ids)
    user_id = person.user_id if "mp_login" in person.flags else None
    return Who(
        person.person_id,
        user_id,
        openid,
        (
            ("mini_program_openid", openid, MINI_PROGRAM_APP_ID),
            ("wechat_unionid", person.id("wechat_unionid", world.ids)),
        ),
    )


def mp_session(
    world: World, person: Person, t: int, buy: bool = False, scene: int | None = None, query: str = ""
) -> None:
    """Open the mini-program shop, browse, maybe join as a member and order."""
    who = mp_who(world, person)
    scene = scene or world.rng.choice(_MP_SCENES)
    world.outbox.track(
        "mini_program",
        who,
        t,
        "Mini Program Opened",
        {"scene": scene, "path": "pages/index/index", "query": query},
    )
    world.outbox.screen("mini_program", who, t + 2, "首页 Home", {"path": "pages/index/index"})
    t += world.rng.randint(5, 40)
    if world.chance(0.2):
        world.outbox.track(
            "mini_program", who, t, "Products Searched", {"query": world.rng.choice(SEARCH_TERMS)}
        )
    for product in pick_products(world.rng, person.tea_lover):
        t += world.rng.randint(8, 90)
        world.outbox.screen(
            "mini_program",
            who,
            t,
            "商品详情 Product",
            {"path": "pages/goods/detail", "product_id": product.product_id},
        )
        world.outbox.track("mini_program", who, t + 1, "Product Viewed", product_fields(product))
    if buy or world.chance(0.12):
        t = mp_join(world, person, t + world.rng.randint(10, 60), scene)
    if buy:
        _mp_order(world, person, t)
    elif world.chance(0.1):
        # Into the cart and on to the payment page, then gone: no order follows (what the
        # cart-recovery journey is for).
        _mp_checkout(world, person, t + world.rng.randint(10, 90), pick_products(world.rng, person.tea_lover))


def mp_join(world: World, person: Person, t: int, scene: int = 1089) -> int:
    """Authorise the phone number in the mini-program: become a member or log in."""
    if "mp_login" in person.flags:
        return t
    new = register(world, person, t, "mini_program")
    person.flags.add("mp_login")
    who = mp_who(world, person)
    assert person.member_card is not None
    phone = scribble_phone(world.rng, person.phone) if person.noisy else person.phone
    who = Who(
        who.person_id,
        who.user_id,
        who.anonymous_id,
        (*who.external, ("phone", phone), ("member_card", person.member_card)),
    )
    event = "Member Registered" if new else "Member Logged In"
    properties: dict[str, Any] = {
        "member_card": person.member_card,
        "phone": phone,
        "channel": "mini_program",
        "scene": scene,
    }
    if scene == 1011 and person.store_id:
        properties.update(store_id=person.store_id, guide_id=person.guide_id)
    world.outbox.track("mini_program", who, t, event, properties, traits={"phone": phone})
    if new:
        member_preferences(world, person, who, t + world.rng.randint(5, 30), scene)
    return t + world.rng.randint(10, 60)


def _mp_order(world: World, person: Person, t: int) -> None:
    who = mp_who(world, person)
    if world.chance(0.3):
        # A cart left a few days earlier, never checked out (what cart-recovery segments find).
        left = t - world.rng.randint(4 * DAY, 10 * DAY)
        for product in pick_products(world.rng, person.tea_lover):
            world.outbox.track("mini_program", who, left, "Product Added", product_line(product))
    products = pick_products(world.rng, person.tea_lover)
    t = _mp_checkout(world, person, t, products)
    pause = world.rng.randint(20, 120)
    if world.chance(0.12):  # left the payment page and came back to pay hours later
        pause = world.rng.randint(2 * HOUR, 10 * HOUR)
    extra: dict[str, Any] = {"payment_method": "wechat_pay"}
    if person.guide_id and world.chance(0.3):
        extra.update(store_id=person.store_id, guide_id=person.guide_id)
    complete_order(world, person, t + pause, "mini_program", who, products, extra=extra)


def _mp_checkout(world: World, person: Person, t: int, products: list[Product]) -> int:
    """Add `products` to the cart and open the payment page; returns the checkout moment."""
    who = mp_who(world, person)
    for product in products:
        world.outbox.track("mini_program", who, t, "Product Added", product_line(product))
        t += world.rng.randint(5, 40)
    world.outbox.track("mini_program", who, t, "Checkout Started", {"currency": "CNY"})
    return t


def wecom_who(world: World, person: Person) -> Who:
    """WeCom knows a customer by external_userid (and unionid, the app being bound)."""
    external = person.id("wecom_external_userid", world.ids)
    return Who(
        person.person_id,
        None,
        external,
        (("wecom_external_userid", external), ("wechat_unionid", person.id("wechat_unionid", world.ids))),
    )


def wecom_add(world: World, person: Person, t: int, state: str, add_way: str) -> None:
    """A store guide adds the shopper as a WeCom contact (the `state` tells from where)."""
    if "wecom_contact" in person.flags or not person.guide_id:
        return
    person.flags.add("wecom_contact")
    who = wecom_who(world, person)
    world.outbox.track(
        "wecom",
        who,
        t,
        "WeCom Contact Added",
        {
            "guide_id": person.guide_id,
            "store_id": person.store_id,
            "state": state,
            "add_way": add_way,
            "welcome_message_sent": True,
        },
    )
    if world.chance(0.35):
        world.outbox.group(
            "wecom",
            who,
            t + world.rng.randint(HOUR, 3 * DAY),
            f"wrCT{person.store_id}VIP01",
            {"name": f"山茶记{person.store_id}茶友福利群", "store_id": person.store_id},
        )
    if world.chance(0.06):
        world.later(t + world.rng.randint(2 * DAY, 150 * DAY), wecom_delete)


def wecom_chat(world: World, person: Person, t: int) -> None:
    """The customer writes to their guide (or gets added first)."""
    if "wecom_contact" not in person.flags:
        wecom_add(world, person, t, f"store_{person.store_id}_{person.guide_id}", "qr_code")
        return
    world.outbox.track(
        "wecom",
        wecom_who(world, person),
        t,
        "WeCom Message Received",
        {
            "guide_id": person.guide_id,
            "store_id": person.store_id,
            "msg_type": world.rng.choice(("text", "text", "image", "voice")),
        },
    )


def wecom_delete(world: World, person: Person, t: int) -> None:
    """The customer deletes the guide."""
    if "wecom_contact" in person.flags:
        person.flags.discard("wecom_contact")
        world.outbox.track(
            "wecom",
            wecom_who(world, person),
            t,
            "WeCom Contact Removed",
            {"guide_id": person.guide_id, "store_id": person.store_id, "by": "customer"},
        )


def watch_live(world: World, person: Person, t: int, buy: bool = False) -> None:
    """Watch a Channels (视频号) live stream, comment, maybe buy in the stream."""
    openid = person.id("channels_openid", world.ids)
    external: tuple[tuple[str, ...], ...] = (("wechat_openid", openid, CHANNELS_APP_ID),)
    if world.chance(0.7):
        external += (("wechat_unionid", person.id("wechat_unionid", world.ids)),)
    who = Who(person.person_id, None, openid, external)
    day = world.timeline.stamp(t)[:10].replace("-", "")
    festival = world.timeline.festival(t)
    title = f"{festival.split()[0]}专场直播" if festival else world.rng.choice(_LIVE_TITLES)
    live = {"live_id": f"LIVE-{day}", "live_title": title}
    world.outbox.track(
        "channels_live",
        who,
        t,
        "Live Stream Watched",
        {**live, "duration_seconds": world.rng.randint(20, 3600)},
    )
    if world.chance(0.3):
        world.outbox.track(
            "channels_live",
            who,
            t + world.rng.randint(30, 600),
            "Live Stream Commented",
            {**live, "comment": world.rng.choice(_COMMENTS)},
        )
    if buy:
        traits = {
            "name": mask_name(person.name),
            "phone": mask_phone(person.phone),
            "province": person.province,
            "city": person.city,
        }
        complete_order(
            world,
            person,
            t + world.rng.randint(120, 1800),
            "channels_live",
            who,
            pick_products(world.rng, person.tea_lover),
            extra=dict(live),
            traits=traits,
        )
