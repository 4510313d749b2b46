"""Marketing consent as the brand's lead forms and mini-program record it.

Each choice is a `Consent Updated` track event (`channel` sms / email / wechat_oa, `purpose`
marketing, `granted`, where it was given and the wording shown), which is what Quanyu's
journeys read before a marketing send. SMS is opt-in in China (and in Quanyu's default
policy): someone who never ticked the SMS box gets no marketing SMS.
"""

from __future__ import annotations

from typing import Any

from .outbox import Who
from .people import Person
from .timeline import DAY
from .world import World

# The wording beside each checkbox in the mini-program's member sign-up page.
MINI_PROGRAM_WORDING = {
    "sms": "接收山茶记短信优惠与新品通知（可回T退订）",
    "wechat_oa": "接收山茶记公众号活动与会员福利消息",
    "email": "接收山茶记会员邮件（新品、茶会与优惠）",
}
_WITHDRAW_WORDING = "会员中心 · 消息设置：关闭短信优惠通知"


def consent(
    world: World, source: str, who: Who, t: int, channel: str, granted: bool, **evidence: Any
) -> None:
    """One `Consent Updated` event: `channel` for marketing, granted or refused."""
    properties: dict[str, Any] = {"channel": channel, "purpose": "marketing", "granted": granted,
                                  "source": source, **evidence}  # fmt: skip
    world.outbox.track(source, who, t, "Consent Updated", properties)


def member_preferences(world: World, person: Person, who: Who, t: int, scene: int) -> None:
    """The message settings on the mini-program's sign-up page: most members leave the SMS and
    official-account boxes ticked, some untick them; e-mail only when the member has one."""
    page = {"page": "pages/member/register", "scene": scene}
    consent(
        world, "mini_program", who, t, "sms", world.chance(0.82), wording=MINI_PROGRAM_WORDING["sms"], **page
    )
    consent(world, "mini_program", who, t, "wechat_oa", world.chance(0.93),
            wording=MINI_PROGRAM_WORDING["wechat_oa"], **page)  # fmt: skip
    if person.email:
        consent(world, "mini_program", who, t, "email", world.chance(0.7),
                wording=MINI_PROGRAM_WORDING["email"], **page)  # fmt: skip
    if world.chance(0.04):  # a few switch SMS off again later, in the member centre
        world.later(t + world.rng.randint(7 * DAY, 180 * DAY), _withdraw_sms, who)


def _withdraw_sms(world: World, person: Person, t: int, who: Who) -> None:
    consent(
        world, "mini_program", who, t, "sms", False, wording=_WITHDRAW_WORDING, page="pages/member/settings"
    )
