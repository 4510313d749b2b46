"""Brand membership: sign-up, CRM profile syncs, level upgrades and member coupons."""

from __future__ import annotations

from typing import Any

from .catalog import COUPONS
from .noise import scribble_email, scribble_phone
from .outbox import Who
from .people import MEMBER_LEVELS, Person
from .timeline import DAY, HOUR
from .world import World

_LEVEL_SPEND = (0.0, 500.0, 2_000.0, 8_000.0)  # yearly spend that earns each level


def register(world: World, person: Person, t: int, channel: str) -> bool:
    """Make `person` a member (account id + member card); False if they already were."""
    if person.user_id is not None:
        return False
    person.user_id = world.ids.new("user_id")
    person.member_card = world.ids.new("member_card")
    person.flags.add(f"registered_via_{channel}")
    world.later(t + world.rng.randint(30, 600), sync_profile)
    world.later(t + world.rng.randint(60, 900), issue_coupon, "CPN-NEWMEMBER-20", "new_member")
    _plan_member_coupons(world, person, t)
    return True


def crm_who(person: Person) -> Who:
    """How the CRM identifies a member: account id, member card and phone."""
    assert person.user_id is not None and person.member_card is not None
    return Who(
        person.person_id,
        user_id=person.user_id,
        external=(("member_card", person.member_card), ("phone", person.phone)),
    )


def sync_profile(world: World, person: Person, t: int) -> None:
    """The CRM pushes the member's profile as an `identify`."""
    traits: dict[str, Any] = {
        "name": person.name,
        "gender": person.gender,
        "phone": scribble_phone(world.rng, person.phone) if person.noisy else person.phone,
        "city": person.city,
        "province": person.province,
        "member_card": person.member_card,
        "member_level": person.member_level,
        "points": int(person.spend),
    }
    if world.chance(0.7):
        traits["birthday"] = person.birthday
    if person.email:
        traits["email"] = scribble_email(world.rng, person.email) if person.noisy else person.email
    world.outbox.identify("crm", crm_who(person), t, traits)


def after_purchase(world: World, person: Person, t: int, revenue: float) -> None:
    """Book `revenue`; members who cross a level threshold get upgraded by the CRM."""
    person.spend += revenue
    if person.user_id is None:
        return
    level = MEMBER_LEVELS[sum(person.spend >= bound for bound in _LEVEL_SPEND) - 1]
    if level != person.member_level:
        person.member_level = level
        world.later(t + world.rng.randint(HOUR, DAY), sync_profile)


def issue_coupon(world: World, person: Person, t: int, coupon_id: str, campaign: str) -> None:
    """The coupon service issues `coupon_id` to a member."""
    if person.user_id is None:
        return
    coupon = COUPONS[coupon_id]
    person.flags.add(f"coupon:{coupon_id}")
    world.outbox.track(
        "server",
        Who(person.person_id, user_id=person.user_id),
        t,
        "Coupon Issued",
        {
            "coupon_id": coupon.coupon_id,
            "coupon_name": coupon.name,
            "amount": coupon.amount,
            "threshold": coupon.threshold,
            "campaign": campaign,
        },
    )


def take_coupon(person: Person, subtotal: float) -> str | None:
    """A coupon the member holds that this order qualifies for, now used up."""
    for flag in sorted(person.flags):
        if flag.startswith("coupon:") and COUPONS[flag[7:]].threshold <= subtotal:
            person.flags.discard(flag)
            return flag[7:]
    return None


def _plan_member_coupons(world: World, person: Person, t: int) -> None:
    timeline = world.timeline
    for start, key in timeline.festival_starts():
        if start > t and world.chance(0.6):
            coupon = "CPN-FESTIVAL-80" if world.chance(0.3) else "CPN-FESTIVAL-30"
            world.later(start + world.rng.randint(8 * HOUR, 20 * HOUR), issue_coupon, coupon, key)
    birthday = timeline.next_birthday(person.birthday, t)
    if birthday is not None:
        world.later(birthday + 9 * HOUR, issue_coupon, "CPN-BIRTHDAY-50", "birthday")
