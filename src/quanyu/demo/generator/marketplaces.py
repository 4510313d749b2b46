"""Third-party shops and content platforms: Tmall, JD, Youzan, Douyin, Xiaohongshu.

Marketplaces hand the brand a platform buyer id and a masked receiver ("张**",
"138****1234"); the full phone only arrives when the buyer joins the brand's membership
on the platform (e.g. Tmall 会员通). That is what makes these buyers hard to resolve.
"""

from __future__ import annotations

from typing import Any

from .catalog import pick_products
from .identifiers import mask_name, mask_phone
from .noise import scribble_phone
from .orders import complete_order
from .outbox import Who
from .people import Person
from .timeline import DAY
from .wechat import follow_oa, wecom_add
from .world import World

BUYER_ID_KIND = {
    "tmall_flagship": "tmall_buyer_id",
    "jd_flagship": "jd_pin",
    "youzan_shop": "youzan_id",
    "douyin": "douyin_id",
    "xiaohongshu": "xiaohongshu_id",
}
_PLATFORM = {
    "tmall_flagship": "tmall",
    "jd_flagship": "jd",
    "youzan_shop": "youzan",
    "douyin": "douyin",
    "xiaohongshu": "xiaohongshu",
}
_CONTENT = {
    "douyin": (
        ("Video Watched", 0.45),
        ("Video Liked", 0.25),
        ("Account Followed", 0.1),
        ("Live Stream Watched", 0.2),
    ),
    "xiaohongshu": (
        ("Note Viewed", 0.4),
        ("Note Liked", 0.3),
        ("Note Collected", 0.2),
        ("Note Commented", 0.05),
        ("Account Followed", 0.05),
    ),
}


def buyer_who(world: World, person: Person, source: str) -> Who:
    """How a marketplace identifies a buyer: its own platform id, nothing else."""
    kind = BUYER_ID_KIND[source]
    buyer = person.id(kind, world.ids)
    return Who(person.person_id, None, buyer, ((kind, buyer),))


def receiver(world: World, person: Person, source: str) -> dict[str, Any]:
    """The order's receiver as the platform shows it: masked except on Youzan."""
    phone = person.second_phone if person.second_phone and world.chance(0.5) else person.phone
    if source == "youzan_shop" and world.chance(0.7):
        return {"name": person.name, "phone": phone, "province": person.province, "city": person.city}
    return {
        "name": mask_name(person.name),
        "phone": mask_phone(phone),
        "province": person.province,
        "city": person.city,
    }


def shop(world: World, person: Person, t: int, source: str) -> None:
    """Buy on a marketplace; a package-insert card may pull the buyer into WeChat."""
    who = buyer_who(world, person, source)
    gift = world.timeline.festival(t) is not None and world.chance(0.3)
    complete_order(
        world,
        person,
        t,
        source,
        who,
        pick_products(world.rng, person.tea_lover, gift=gift),
        extra={"platform": _PLATFORM[source]},
        traits=receiver(world, person, source),
    )
    arrives = t + world.rng.randint(2 * DAY, 6 * DAY)
    if world.chance(0.12):
        world.later(arrives, _package_card_follow, _PLATFORM[source])
    elif person.guide_id and world.chance(0.07):
        world.later(arrives, _package_card_wecom, _PLATFORM[source])


def _package_card_follow(world: World, person: Person, t: int, platform: str) -> None:
    follow_oa(world, person, t, f"package_card_{platform}", {"scene_type": "package_card"})


def _package_card_wecom(world: World, person: Person, t: int, platform: str) -> None:
    wecom_add(world, person, t, f"package_card_{platform}", "package_card")


def join_membership(world: World, person: Person, t: int, source: str) -> None:
    """Join the brand's membership on the platform, which shares the real phone number."""
    flag = f"member_of_{source}"
    if flag in person.flags:
        return
    person.flags.add(flag)
    buyer = buyer_who(world, person, source)
    phone = scribble_phone(world.rng, person.phone) if person.noisy else person.phone
    who = Who(buyer.person_id, None, buyer.anonymous_id, (*buyer.external, ("phone", phone)))
    world.outbox.track(
        source,
        who,
        t,
        "Member Joined",
        {"platform": _PLATFORM[source], "member_level": "V1"},
        traits={"phone": phone},
    )


def _pick_content(world: World, source: str) -> str:
    roll, total = world.rng.random(), 0.0
    for event, share in _CONTENT[source]:
        total += share
        if roll < total:
            return event
    return _CONTENT[source][0][0]


def content(world: World, person: Person, t: int, source: str) -> None:
    """A content interaction on Douyin or Xiaohongshu (likes, notes, live streams)."""
    who = buyer_who(world, person, source)
    event = _pick_content(world, source)
    properties: dict[str, Any] = {"platform": _PLATFORM[source]}
    if event.startswith("Note"):
        properties["note_id"] = f"{world.rng.getrandbits(96):024x}"
    elif event.startswith("Video"):
        properties["video_id"] = str(world.rng.randrange(7 * 10**18, 8 * 10**18))
    elif event == "Live Stream Watched":
        properties["live_id"] = f"DYLIVE-{world.timeline.stamp(t)[:10].replace('-', '')}"
        properties["duration_seconds"] = world.rng.randint(10, 2400)
    world.outbox.track(source, who, t, event, properties)
