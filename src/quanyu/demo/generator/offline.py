"""Offline touchpoints: buying at a store's POS and tea-tasting salons.

Stores are where the private domain is built: the guide signs shoppers up as members,
adds them on WeCom and has them scan the official-account QR code at the till.
"""

from __future__ import annotations

from typing import Any

from .catalog import pick_products
from .membership import register
from .noise import mistype_phone, scribble_phone
from .orders import complete_order
from .outbox import Who
from .people import Person
from .timeline import DAY, HOUR
from .wechat import follow_oa, mp_join, mp_session, wecom_add
from .world import World

_SALONS = ("春茶品鉴会", "白茶品鉴沙龙", "岩茶品鉴夜", "中秋茶礼品鉴会", "冬日普洱围炉会", "茶器与茶席体验课")
_PAYMENTS = ("wechat_pay", "wechat_pay", "alipay", "alipay", "unionpay", "cash")


def store_visit(world: World, person: Person, t: int) -> None:
    """Buy in the home store; non-members may sign up at the till, guides follow up."""
    if person.user_id is None and world.chance(0.45):
        _register_at_till(world, person, t)
        t += world.rng.randint(60, 300)
    who = _till_who(world, person)
    extra = {
        "store_id": person.store_id,
        "guide_id": person.guide_id,
        "payment_method": world.rng.choice(_PAYMENTS),
        "cashier_id": f"C-{person.store_id}-{world.rng.randint(1, 3):02d}",
    }
    complete_order(world, person, t, "pos", who, pick_products(world.rng, person.tea_lover), extra=extra)
    _after_store_visit(world, person, t)


def _till_who(world: World, person: Person) -> Who:
    if person.member_card is None:
        return Who(person.person_id, None, world.ids.new("guest"))
    external: tuple[tuple[str, ...], ...] = (("member_card", person.member_card),)
    if world.chance(0.6):  # members often identify by phone number at the till
        phone = scribble_phone(world.rng, person.phone) if person.noisy else person.phone
        external += (("phone", phone),)
    return Who(person.person_id, None, person.member_card, external)


def _register_at_till(world: World, person: Person, t: int) -> None:
    register(world, person, t, "pos")
    assert person.member_card is not None
    phone = person.phone
    if world.chance(0.01):
        phone = mistype_phone(world.rng, phone)  # typed by the cashier in a hurry
    elif person.noisy:
        phone = scribble_phone(world.rng, phone)
    who = Who(
        person.person_id, None, person.member_card, (("member_card", person.member_card), ("phone", phone))
    )
    world.outbox.track(
        "pos",
        who,
        t,
        "Member Registered",
        {
            "member_card": person.member_card,
            "phone": phone,
            "channel": "pos",
            "store_id": person.store_id,
            "guide_id": person.guide_id,
        },
        traits={"name": person.name, "phone": phone},
    )


def _after_store_visit(world: World, person: Person, t: int) -> None:
    scene = f"store_{person.store_id}_guide_{person.guide_id}"
    if world.chance(0.35):
        world.later(t + world.rng.randint(60, 900), wecom_add, scene, "qr_code")
    if world.chance(0.25):
        world.later(
            t + world.rng.randint(30, 600),
            follow_oa,
            scene,
            {"scene_type": "store", "store_id": person.store_id, "guide_id": person.guide_id},
        )
    if "mp_login" not in person.flags and world.chance(0.15):
        world.later(t + world.rng.randint(60, 900), _mp_from_store)


def _mp_from_store(world: World, person: Person, t: int) -> None:
    mp_session(world, person, t, scene=1011, query=f"store_id={person.store_id}")
    mp_join(world, person, t + world.rng.randint(30, 120), scene=1011)


def salon_signup(world: World, person: Person, t: int) -> None:
    """Register for a tea salon at the home store; most registrants come."""
    starts = (t // DAY + world.rng.randint(3, 14)) * DAY + world.rng.choice((14, 19)) * HOUR
    month = world.timeline.stamp(starts)[2:7].replace("-", "")
    event: dict[str, Any] = {
        "event_id": f"EV{month}-{person.store_id}",
        "event_name": _SALONS[int(month[-2:]) % len(_SALONS)],
        "store_id": person.store_id,
        "city": person.city,
        "starts_at": world.timeline.stamp(starts),
    }
    phone = scribble_phone(world.rng, person.phone) if person.noisy else person.phone
    ticket = world.ids.new("ticket")
    who = Who(person.person_id, None, ticket, (("phone", phone),))
    world.outbox.track(
        "tea_salon", who, t, "Event Registered", dict(event), traits={"name": person.name, "phone": phone}
    )
    if world.chance(0.75):
        world.later(starts + world.rng.randint(-600, 1200), _attend, event, ticket, phone)


def _attend(world: World, person: Person, t: int, event: dict[str, Any], ticket: str, phone: str) -> None:
    # Everyone checks in on the store's one tablet, so its device id is shared by strangers.
    who = Who(
        person.person_id, None, ticket, (("phone", phone), ("device_id", f"KIOSK-{person.store_id}-01"))
    )
    world.outbox.track("tea_salon", who, t, "Event Attended", dict(event))
    scene = f"event_{event['event_id']}"
    if world.chance(0.5):
        world.later(t + world.rng.randint(600, 5400), wecom_add, scene, "event")
    if world.chance(0.3):
        world.later(t + world.rng.randint(300, 3600), follow_oa, scene, {"scene_type": "event"})
    if world.chance(0.3):
        world.later(t + world.rng.randint(1800, 7200), store_visit)
