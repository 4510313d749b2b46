"""The demo brand's journeys: a welcome series, cart recovery and the seed's 30-day win-back.

山茶记 runs three journeys (docs/examples/journeys/ holds them as files):

- **关注欢迎礼 Welcome series**: an official-account follow → a welcome template message → a
  day later, someone who has still not ordered gets a first-order coupon by SMS (on the
  official account when no phone number is known). Goal: an order within 7 days.
- **小程序购物车召回 Cart recovery**: a checkout started in the mini-program and not paid
  within 2 hours → a subscribe-message reminder → a day later still nothing, a 10 yuan coupon
  by SMS. Leaves at once when the order comes.
- **30天召回券 Win-back coupon** (the seed: a restaurant wins back customers it has not
  reached for 30 days with a coupon): entering the "not reached in 30 days" segment, and no
  order in those 30 days either → an A/B test, coupon by SMS or by WeChat template, 10% kept
  as a control. Goal: an order within 14 days (lift over the control).

The channels are local JSON-lines files (`<data dir>/messages/<channel>.jsonl`, the `sink_*`
adapter types): the demo has no SMS or WeChat account and no internet, and every rule still
applies (consent, quiet hours, frequency caps, the outbox's exactly-once sends).

**Time.** The demo's events are history: they happened over the past year, and a journey
compares an event's own timestamp with the moment its enrollment began (a goal counts orders
after entering; waiting for an order or leaving on one only sees orders after entering). Sent
all at once, a year of checkouts would enroll today and no order of theirs would ever count.
So the demo replays its last `LIVE_DAYS` days instead: the year before them is the brand's
past (sent to the server before any journey exists; it builds the profiles, the consent
records and the segments), then the journeys are published and the last week is delivered one
day at a time, with the journeys' clock at that day's 10:00 (Asia/Shanghai). Each day: the
win-back segment is refreshed at that moment, due steps run, the day's events arrive and are
stitched, and new entries take their first steps. Afterwards the clock moves on (1, 2, 3, 7,
14, 21 and 30 days) until every wait, reminder and goal window is over.

Caveats of a day's granularity: everyone who enters on a day enters at its 10:00, so a welcome
for a follow at 21:00 is dated that morning, and an order placed earlier the same day still
counts as "after entering" (a goal, or the cart journey's exit). Two-hour waits end at the next
day's 10:00 run, which is also when the default quiet hours (21:00–09:00) would let a reminder
go anyway.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from quanyu.channels.sink import read_sink
from quanyu.cli.output import console, table
from quanyu.demo.generator import DemoBrand
from quanyu.demo.generator.identifiers import MINI_PROGRAM_APP_ID, OA_APP_ID
from quanyu.demo.generator.timeline import SHANGHAI
from quanyu.journeys.clock import ManualClock
from quanyu.platform import Platform
from quanyu.segments.membership import refresh_membership

LIVE_DAYS = 7
TICK_HOUR = 10  # the journeys run at 10:00 Shanghai time: outside the default quiet hours
FINISH_DAYS = (0, 1, 2, 3, 7, 14, 21, 30)  # after the replayed week, until every window is over
MESSAGES_DIR = "messages"
SINK_CHANNELS = ("email", "sms", "wechat_oa", "mini_program", "wecom")
# Stand-ins in docs/examples/journeys/ for what the demo fills in when it runs.
EXAMPLE_SEGMENT_ID = "seg_winback_30_days"
EXAMPLE_EXPIRY = "2026-12-31"
EXAMPLE_FILES = {
    "welcome_series_wechat_follow.json": 0,
    "cart_recovery_mini_program.json": 1,
    "winback_coupon_ab_test.json": 2,
}

_NAME = '{{ profile.name | default: "茶友" }}'
_SIGN = "【山茶记】"
_OPT_OUT = "回T退订"


# -- the journeys ---------------------------------------------------------------------------------


def demo_journeys(winback_segment_id: str, coupon_expires: str) -> list[dict[str, Any]]:
    """The three journeys as the journey language has them (docs/journeys.md)."""
    welcome = {
        "name": "关注欢迎礼 Welcome series",
        "description": "关注公众号 → 欢迎消息；一天后仍未下单，短信送首单券（无手机号则公众号发券）/ an "
                       "official-account follow → a welcome template; no order a day later → a first-order "
                       "coupon by SMS (on the official account without a phone number)",
        "trigger": {"type": "wechat", "on": "follow"},
        "start": "welcome",
        "nodes": {
            "welcome": {
                "type": "send", "channel": "wechat_oa", "label": "欢迎消息 welcome template",
                "content": {
                    "template_id": "TM00015_welcome_follow",
                    "url": "https://www.camelliatea.cn/welcome",
                    "miniprogram": {"appid": MINI_PROGRAM_APP_ID, "pagepath": "pages/member/register"},
                    "data": {"thing1": "欢迎关注山茶记", "name2": _NAME, "thing3": "注册会员领首单20元券"},
                },
                "next": "one_day",
            },
            "one_day": {"type": "wait", "duration": {"days": 1}, "next": "has_ordered"},
            "has_ordered": {
                "type": "condition", "label": "已下单？ has ordered?",
                "if": {"conditions": [{"trait": "order_count", "op": "gt", "value": 0}]},
                "no": "has_phone",
            },
            # A follower is known by openid; only some have left a phone number (SMS needs
            # their consent too): the others get the coupon on the official account.
            "has_phone": {
                "type": "condition", "label": "有手机号？ has a phone number?",
                "if": {"conditions": [{"reachable": "sms"}]},
                "yes": "first_order_coupon", "no": "first_order_coupon_wechat",
            },
            "first_order_coupon": {
                "type": "send", "channel": "sms", "label": "首单券 first-order coupon",
                "content": {"text": f"{_SIGN}{_NAME}，欢迎关注山茶记！首单立减{{{{ coupon.value }}}}元，券码"
                                    f"{{{{ coupon.code }}}}，{{{{ coupon.expires_at }}}}前在小程序或门店使用。{_OPT_OUT}"},
                "coupon": {"code": "SCJ-WELCOME20", "value": 20, "expires_at": coupon_expires},
            },
            "first_order_coupon_wechat": _wechat_coupon("首单券（公众号） first-order coupon (WeChat)", "山茶记首单礼券",
                                                        {"code": "SCJ-WELCOME20", "value": 20,
                                                         "expires_at": coupon_expires}),
        },
        # Buying does not end the series: the condition step already spares buyers the coupon.
        "goal": {"event": "Order Completed", "within_days": 7, "exit": False},
        "settings": {"reentry": {"mode": "never"}},
    }  # fmt: skip
    cart = {
        "name": "小程序购物车召回 Cart recovery",
        "description": "小程序发起结算 2 小时未付款 → 订阅消息提醒；一天后仍未下单 → 短信送 10 元券 / a "
                       "mini-program checkout not paid within 2 hours → a subscribe-message reminder; no order "
                       "a day later → a 10 yuan coupon by SMS",
        "trigger": {"type": "event", "event": "Checkout Started",
                    "where": [{"property": "channel", "op": "eq", "value": "mini_program"}]},
        "start": "wait_for_order",
        "nodes": {
            "wait_for_order": {"type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 2},
                               "timeout_next": "reminder"},
            "reminder": {
                "type": "send", "channel": "mini_program", "label": "订阅消息提醒 subscribe-message reminder",
                "content": {
                    "template_id": "cart_reminder_v2",
                    "page": "pages/cart/index",
                    "data": {"thing1": "您的购物车还有好茶待结算", "thing2": "好茶不等人，库存有限",
                             "name3": _NAME},
                },
                "next": "wait_a_day",
            },
            "wait_a_day": {"type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 1},
                           "timeout_next": "sms_coupon"},
            "sms_coupon": {
                "type": "send", "channel": "sms", "label": "短信券 SMS coupon",
                "content": {"text": f"{_SIGN}{_NAME}，您在小程序选好的茶还在购物车里，送您{{{{ coupon.value }}}}元券"
                                    f"{{{{ coupon.code }}}}，{{{{ coupon.expires_at }}}}前结算可用。{_OPT_OUT}"},
                "coupon": {"code": "SCJ-CART10", "value": 10, "expires_at": coupon_expires},
            },
        },
        "exit": [{"event": "Order Completed", "when": "immediately"}],
        "settings": {"reentry": {"mode": "after_exit", "min_interval": {"days": 1}}},
    }  # fmt: skip
    # Not reached for 30 days, and not come back either: someone who ordered last week needs
    # no coupon (the seed's question: what does "not reached" mean for a win-back?).
    ordered_lately = {
        "type": "condition",
        "label": "30天内下过单？ ordered in the last 30 days?",
        "if": {"conditions": [{"event": "Order Completed", "window": {"last": 30, "unit": "day"}}]},
    }
    winback = {
        "name": "30天召回券 Win-back coupon",
        "description": "进入“30天未触达”分群且 30 天未下单 → A/B：短信券或公众号模板消息券，10% 对照组 / "
                       "entering the not-reached-in-30-days segment, no order in 30 days either → A/B: a coupon "
                       "by SMS or by WeChat template, 10% control",
        "trigger": {"type": "segment", "segment_id": winback_segment_id, "on": "entered"},
        "start": "ab_test",
        "nodes": {
            # Split first, so that the control arm is like the others (the same share of recent
            # buyers, who get nothing in any arm): the lift compares like with like.
            "ab_test": {
                "type": "split", "label": "A/B 短信 vs 公众号 SMS vs WeChat",
                "arms": [{"name": "A_sms", "percent": 45, "next": "a_ordered_lately"},
                         {"name": "B_wechat", "percent": 45, "next": "b_ordered_lately"}],
                "control": 10,
            },
            "a_ordered_lately": {**ordered_lately, "no": "sms_coupon"},
            "b_ordered_lately": {**ordered_lately, "no": "wechat_coupon"},
            "sms_coupon": {
                "type": "send", "channel": "sms", "label": "短信召回券 SMS coupon",
                "content": {"text": f"{_SIGN}{_NAME}，好久不见！送您{{{{ coupon.value }}}}元回归券{{{{ coupon.code }}}}，"
                                    f"{{{{ coupon.expires_at }}}}前在门店或小程序使用，新茶已到店。{_OPT_OUT}"},
                "coupon": {"code": "SCJ-BACK30", "value": 30, "expires_at": coupon_expires},
            },
            "wechat_coupon": _wechat_coupon("公众号召回券 WeChat coupon", "山茶记回归礼券",
                                            {"code": "SCJ-BACK30", "value": 30, "expires_at": coupon_expires}),
        },
        "goal": {"event": "Order Completed", "within_days": 14},
        "settings": {"reentry": {"mode": "after_exit", "min_interval": {"days": 90}}},
    }  # fmt: skip
    return [welcome, cart, winback]


def welcome_email() -> dict[str, Any]:
    """The smallest useful journey (docs/examples/journeys/welcome_email.json; not run by the demo)."""
    return {
        "name": "欢迎邮件 Welcome email",
        "description": "注册后发一封欢迎邮件 / one e-mail after signing up",
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": "welcome",
        "nodes": {
            "welcome": {
                "type": "send", "channel": "email",
                "content": {
                    "subject": f"欢迎加入山茶记，{_NAME}",
                    "text": f"{_NAME}，您好：\n\n欢迎加入山茶记！会员首单立减 20 元，新茶与茶会消息我们会第一时间告诉您。\n\n"
                            "山茶记 Camellia Tea\n退订 / unsubscribe: {{ links.unsubscribe_url }}",
                },
            },
        },
        "goal": {"event": "Order Completed", "within_days": 7},
        "settings": {"reentry": {"mode": "never"}},
    }  # fmt: skip


def _wechat_coupon(label: str, title: str, coupon: dict[str, Any]) -> dict[str, Any]:
    """A coupon as an official-account template message that opens the mini-program's coupon page."""
    return {"type": "send", "channel": "wechat_oa", "label": label, "coupon": coupon,
            "content": {"template_id": "TM00251_coupon_issued",
                        "miniprogram": {"appid": MINI_PROGRAM_APP_ID, "pagepath": "pages/coupon/index"},
                        "data": {"thing1": title, "amount2": "{{ coupon.value }}元",
                                 "character_string3": "{{ coupon.code }}", "time4": "{{ coupon.expires_at }}"}}}  # fmt: skip


def channel_configs(data_dir: Path) -> list[dict[str, Any]]:
    """One local-file channel per journey channel, each the workspace's default for it. The
    WeChat ones say which app they send as, so each person's openid for that app is used."""
    folder = (data_dir / MESSAGES_DIR).resolve()
    apps = {"wechat_oa": OA_APP_ID, "mini_program": MINI_PROGRAM_APP_ID}
    return [{"name": f"本地文件 {channel} (demo)", "type": f"sink_{channel}",
             "settings": {"path": str(folder / f"{channel}.jsonl"), **({"app_id": apps[channel]} if channel in apps else {})},
             "default": True}
            for channel in SINK_CHANNELS]  # fmt: skip


# -- the replayed week ----------------------------------------------------------------------------


def live_boundaries(end: datetime) -> list[datetime]:
    """10:00 (Shanghai) of each replayed day and of the day after the last one (UTC)."""
    day = end.astimezone(SHANGHAI).replace(hour=TICK_HOUR, minute=0, second=0, microsecond=0)
    first = day - timedelta(days=LIVE_DAYS)
    return [(first + timedelta(days=i)).astimezone(UTC) for i in range(LIVE_DAYS + 1)]


def split_brand(brand: DemoBrand, boundaries: Sequence[datetime]) -> tuple[DemoBrand, list[DemoBrand]]:
    """The brand's past (before the first boundary) and one part per replayed day."""
    stamps = [b.astimezone(SHANGHAI).isoformat() for b in boundaries]  # the generator's own format
    past: dict[str, list[dict[str, Any]]] = {}
    days: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(len(boundaries) - 1)]
    for key, messages in brand.events.items():
        # Every stamp ends in +08:00, so text order is time order.
        cuts = [bisect.bisect_left(messages, stamp, key=lambda m: str(m["timestamp"])) for stamp in stamps]
        past[key] = messages[: cuts[0]]
        for i in range(len(days)):
            days[i][key] = messages[cuts[i] : cuts[i + 1] if i + 1 < len(days) else len(messages)]

    def part(events: dict[str, list[dict[str, Any]]]) -> DemoBrand:
        return DemoBrand(brand.sources, {k: v for k, v in events.items() if v}, [], brand.people)

    return part(past), [part(d) for d in days]


def setup(
    api: httpx.Client, data_dir: Path, winback_segment_id: str, coupon_expires: str
) -> list[dict[str, Any]]:
    """Channels, then the three journeys, saved and published; returns the journeys."""
    for spec in channel_configs(data_dir):
        api.post("/api/v1/channels", json=spec).raise_for_status()
    made = []
    for definition in demo_journeys(winback_segment_id, coupon_expires):
        resp = api.post("/api/v1/journeys", params={"publish": "true"}, json=definition)
        resp.raise_for_status()
        made.append(resp.json())
    return made


def replay(
    api: httpx.Client, platform: Platform, workspace_id: str, days: Sequence[DemoBrand],
    boundaries: Sequence[datetime], send: Callable[[DemoBrand], None], winback_segment_id: str,
) -> dict[str, float]:  # fmt: skip
    """Deliver the replayed days with the journeys' clock on them, then let every journey finish.

    Runs against this process's platform: the clock is `platform.journeys.clock`, and the
    win-back segment is refreshed as of the replayed moment (a refresh through the API is as
    of now)."""
    clock = ManualClock(boundaries[0])
    platform.journeys.clock = clock
    seconds: dict[str, float] = defaultdict(float)

    def timed(name: str, action: Callable[[], object]) -> None:
        started = time.perf_counter()
        action()
        seconds[name] += time.perf_counter() - started

    def run() -> None:
        api.post("/api/v1/journeys/run").raise_for_status()

    def refresh() -> None:
        refresh_membership(platform.warehouse, platform.segments, workspace_id, winback_segment_id,
                           now=clock.now(), mode="scheduled")  # fmt: skip

    def deliver(part: DemoBrand) -> None:
        send(part)
        api.post("/api/v1/pipeline/run").raise_for_status()  # stored, stitched, heard by journeys

    # The first round starts the segment journey's signal cursor here: only entries from now on.
    timed("journey_runs", run)
    for i, part in enumerate(days):
        clock.set(boundaries[i])
        timed("segment_refresh", refresh)
        timed("journey_runs", run)
        timed("events_send_and_process", lambda part=part: deliver(part))  # type: ignore[misc]
        timed("journey_runs", run)
    # No events after the replayed week: the clock moves on until every step, reminder and goal
    # window is over. Segments are not refreshed any more (the brand's world stops there).
    for extra in FINISH_DAYS:
        clock.set(boundaries[-1] + timedelta(days=extra))
        timed("finish_runs", run)
    return {k: round(v, 1) for k, v in seconds.items()}


# -- what happened --------------------------------------------------------------------------------


def summarise(api: httpx.Client, journeys: Sequence[dict[str, Any]], data_dir: Path) -> dict[str, Any]:
    """Per journey: enrollments, sends per channel, skips by reason, goal conversions and
    duplicate sends (always 0); totals; the message files."""
    by_journey: dict[str, dict[str, Any]] = {}
    totals: dict[str, Any] = {"enrollments": 0, "active": 0, "sends": defaultdict(int), "goal_conversions": 0,
                              "duplicate_sends": 0}  # fmt: skip
    for made in journeys:
        info = api.get(f"/api/v1/journeys/{made['id']}").json()
        stats = api.get(f"/api/v1/journeys/{made['id']}/stats").json()
        sends = {channel: numbers.get("sent", 0) for channel, numbers in stats["channels"].items()}
        skipped: dict[str, int] = defaultdict(int)
        for node in stats["nodes"].values():
            for label, count in node["steps"].items():
                if label.startswith("skipped:"):
                    skipped[label.split(":", 1)[1]] += count
        has_goal = info["definition"].get("goal") is not None
        item: dict[str, Any] = {
            "journey_id": made["id"],
            "status": info["status"],
            "enrollments": stats["entered"],
            "active": stats["active"],
            "sends": sends,
            "skipped": dict(sorted(skipped.items())),
            "exited": stats["exited"],
            "goal_conversions": stats["goal"]["conversions"] if has_goal else None,
            "duplicate_sends": stats["duplicate_sends"],
        }
        if any(arm not in ("treatment", "holdout") for arm in stats["goal"]["by_arm"]):
            item["arms"] = stats["goal"]["by_arm"]
            item["lift"] = stats["goal"].get("lift")
        by_journey[info["name"]] = item
        totals["enrollments"] += item["enrollments"]
        totals["active"] += item["active"]
        totals["goal_conversions"] += item["goal_conversions"] or 0
        totals["duplicate_sends"] += item["duplicate_sends"]
        for channel, count in sends.items():
            totals["sends"][channel] += count
    totals["sends"] = dict(sorted(totals["sends"].items()))
    folder = data_dir / MESSAGES_DIR
    files = {channel: {"path": str(folder / f"{channel}.jsonl"), "lines": len(read_sink(folder / f"{channel}.jsonl"))}
             for channel in SINK_CHANNELS if (folder / f"{channel}.jsonl").exists()}  # fmt: skip
    return {"by_journey": by_journey, "totals": totals, "message_files": files}


def report(block: dict[str, Any]) -> None:
    """The journeys' part of the human summary."""

    def sends(numbers: dict[str, int]) -> str:
        return " · ".join(f"{channel} {count:,}" for channel, count in numbers.items() if count) or "0"

    rows = []
    for name, item in block["by_journey"].items():
        skipped = " · ".join(f"{why} {count:,}" for why, count in item["skipped"].items()) or "-"
        goal = "-" if item["goal_conversions"] is None else f"{item['goal_conversions']:,}"
        rows.append([name, item["status"], f"{item['enrollments']:,}", sends(item["sends"]), skipped, goal,
                     item["duplicate_sends"]])  # fmt: skip
    totals = block["totals"]
    rows.append(["合计 / total", "", f"{totals['enrollments']:,}", sends(totals["sends"]), "",
                 f"{totals['goal_conversions']:,}", totals["duplicate_sends"]])  # fmt: skip
    table(
        f"旅程 / journeys · 回放最近 {block['live_days']} 天 / the last {block['live_days']} days replayed",
        ["旅程 / journey", "状态 / status", "进入 / enrolled", "已发送 / sent", "跳过 / skipped",
         "转化 / goal", "重复 / duplicates"],
        rows,
    )  # fmt: skip
    winback = next((i for i in block["by_journey"].values() if "arms" in i), None)
    if winback is not None:
        arms = " · ".join(
            f"{arm} {n['converted']:,}/{n['entered']:,}" for arm, n in sorted(winback["arms"].items())
        )
        lift = winback.get("lift")
        console.print(f"召回 A/B 转化 / win-back conversions by arm: {arms}"
                      + (f"  (提升 / lift {lift:+.0%})" if lift is not None else ""))  # fmt: skip
    if block["message_files"]:
        folder = Path(next(iter(block["message_files"].values()))["path"]).parent
        console.print(f"消息文件 / messages sent (one JSON line each): {folder}")
    spent = " · ".join(f"{part} {s} s" for part, s in block["seconds"].items())
    console.print(
        f"回放耗时 / replay time: {spent}  (events: 发送与入仓 / sent and processed, journeys: 旅程运行 / runs)"
    )
