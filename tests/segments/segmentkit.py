"""A small tea brand's customers for the segment tests, written straight into the warehouse.

Person `p` is profile `prof_p`. `NOW` is the evaluation moment: day 60 after profilekit's T0.
"""

from __future__ import annotations

from datetime import timedelta

from profiles.profilekit import T0, Ledger
from quanyu.platform import Platform
from quanyu.profiles.materialise import refresh

NOW = T0 + timedelta(days=60)
EVIL_NAME = '=HYPERLINK("http://evil.example","点我 click")'

BOUGHT_LAST_30 = {"conditions": [{"event": "Order Completed", "window": {"last": 30, "unit": "day"}}]}
NOT_REACHED_30 = {"conditions": [{"not": {"event_group": "touch", "window": {"last": 30, "unit": "day"}}}]}


def seed(platform: Platform, workspace_id: str) -> Ledger:
    """li bought twice (day 10 and 50, Tmall), han bought on JD on day 55 and was messaged on day
    58, mei only browsed the mini-program, evil (a formula for a name) bought on day 45 in a store."""
    ledger = Ledger(platform.warehouse, workspace_id)
    ledger.order("li", 10, 120.0, traits={"name": "李雷", "city": "上海"})
    ledger.order("li", 50, 80.0)
    ledger.order("han", 55, 300.0, source_type="jd", traits={"name": "韩梅", "city": "杭州"})
    ledger.add("han", 58, "wechat_oa", "Message Delivered")
    ledger.add("mei", 40, "mini_program", "Page Viewed", traits={"name": "梅", "city": "@北京"})
    ledger.order("evil", 45, 10.0, source_type="pos", traits={"name": EVIL_NAME, "city": "-2+3"})
    ledger.store()
    rematerialise(ledger)
    return ledger


def rematerialise(ledger: Ledger) -> None:
    """Write the events added since and recompute the profiles."""
    ledger.store()
    refresh(ledger.warehouse, ledger.workspace_id, now=NOW)
