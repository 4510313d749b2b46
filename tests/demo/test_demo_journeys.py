"""The demo's journeys: what the generator gives them, the example files, and a small demo run
that replays its last week through three live journeys."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from quanyu.channels.sink import read_sink
from quanyu.demo import journeys
from quanyu.demo.generator import DemoBrand, generate_brand
from quanyu.demo.run import run_demo
from quanyu.journeys.content import check_journey_content
from quanyu.journeys.model import parse_journey
from quanyu.settings import Settings
from testkit import free_port

SHANGHAI = timezone(timedelta(hours=8))
END = datetime(2026, 11, 30, tzinfo=SHANGHAI)  # a fixed year: the same data on any day
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "journeys"


def _tracks(brand: DemoBrand, event: str) -> list[tuple[str, dict[str, Any]]]:
    return [(key, m) for key, messages in brand.events.items() for m in messages if m.get("event") == event]


@pytest.fixture(scope="module")
def brand() -> DemoBrand:
    return generate_brand(1500, seed=11, end=END)


def test_the_generator_gives_the_journeys_follows_abandoned_checkouts_and_consent(brand: DemoBrand) -> None:
    follows = _tracks(brand, "Official Account Followed")
    assert follows and all(key == "wechat_oa" and m["properties"]["scene"] for key, m in follows)
    assert {m["properties"].get("scene_type") for _, m in follows} >= {"store", "campaign", "search"}

    # Mini-program checkouts: most are paid, a share never is (what cart recovery is for).
    def who(m: dict[str, Any]) -> str:
        return str(m.get("userId") or m["anonymousId"])

    checkouts = [m for key, m in _tracks(brand, "Checkout Started") if key == "mini_program"]
    orders = [m for key, m in _tracks(brand, "Order Completed") if key == "mini_program"]
    paid = 0
    for checkout in checkouts:
        later = [o for o in orders if who(o) == who(checkout) and o["timestamp"] >= checkout["timestamp"]]
        paid += any(o["timestamp"] <= _plus(checkout["timestamp"], hours=12) for o in later)
    assert 0.1 < 1 - paid / len(checkouts) < 0.5

    consents = _tracks(brand, "Consent Updated")
    kinds = Counter((key, m["properties"]["channel"], m["properties"]["granted"]) for key, m in consents)
    assert all(m["properties"]["purpose"] == "marketing" for _, m in consents)
    assert {(k, c) for k, c, _ in kinds} >= {("lead_forms", "sms"), ("mini_program", "sms"),
                                            ("mini_program", "wechat_oa"), ("mini_program", "email")}  # fmt: skip
    granted = sum(n for (_, _, g), n in kinds.items() if g)
    refused = sum(n for (_, _, g), n in kinds.items() if not g)
    assert refused > 0 and granted > 5 * refused  # most say yes, a few no


def _plus(stamp: str, **delta: float) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(**delta)).isoformat()


def test_the_replayed_week_splits_the_brand_without_losing_a_message(brand: DemoBrand) -> None:
    boundaries = journeys.live_boundaries(END)
    past, days = journeys.split_brand(brand, boundaries)

    assert len(days) == journeys.LIVE_DAYS and boundaries[0].astimezone(SHANGHAI).hour == journeys.TICK_HOUR
    assert past.event_count() + sum(d.event_count() for d in days) == brand.event_count()
    assert all(m["timestamp"] < boundaries[0].astimezone(SHANGHAI).isoformat()
               for messages in past.events.values() for m in messages)  # fmt: skip
    for i, day in enumerate(days):
        low, high = (b.astimezone(SHANGHAI).isoformat() for b in boundaries[i : i + 2])
        assert day.event_count() > 0
        assert all(low <= m["timestamp"] < high for messages in day.events.values() for m in messages)


def test_the_example_files_are_the_journeys_the_demo_runs() -> None:
    runs = journeys.demo_journeys(journeys.EXAMPLE_SEGMENT_ID, journeys.EXAMPLE_EXPIRY)
    files = {**{name: runs[i] for name, i in journeys.EXAMPLE_FILES.items()},
             "welcome_email.json": journeys.welcome_email()}  # fmt: skip
    for name, definition in files.items():
        assert json.loads((EXAMPLES / name).read_text(encoding="utf-8")) == definition, name
        journey = parse_journey(definition)
        check_journey_content(journey)
    welcome = parse_journey(files["welcome_email.json"])
    assert welcome.trigger.type == "event" and [n.type for n in welcome.nodes.values()] == ["send"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    data_dir = tmp_path_factory.mktemp("demo")
    settings = Settings(data_dir=data_dir, port=free_port())
    summary = run_demo(settings, people=2000, seed=7, serve=False, reset=False, as_json=True, end=END)
    return summary, data_dir


def test_the_demo_runs_three_live_journeys_to_the_end(demo: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo
    block = summary["journeys"]
    # Everything arrived (the connectors add only the official account's unionid lookups).
    assert summary["accepted"] == summary["processed"]
    assert summary["accepted"] == summary["events_generated"] + summary["connectors"]["unionid_lookups"]

    assert len(block["by_journey"]) == 3
    for name, item in block["by_journey"].items():
        assert item["status"] == "live", name
        assert item["enrollments"] > 0, name
        assert item["active"] == 0, name  # every wait, reminder and goal window is over
        assert item["duplicate_sends"] == 0, name
        assert sum(item["sends"].values()) > 0, name
    totals = block["totals"]
    assert totals["duplicate_sends"] == 0
    assert totals["sends"]["sms"] > 0 and totals["sends"]["wechat_oa"] > 0
    assert totals["sends"].get("mini_program", 0) + totals["sends"].get("email", 0) > 0

    welcome, cart, winback = block["by_journey"].values()
    # Buyers leave the cart journey at once; the others are reminded in the mini-program.
    assert cart["exited"]["exit_criteria"] > 0 and cart["sends"]["mini_program"] > 0
    assert welcome["sends"]["wechat_oa"] >= welcome["enrollments"] - sum(welcome["skipped"].values())
    assert set(winback["arms"]) == {"A_sms", "B_wechat", "control"}
    assert winback["arms"]["control"]["entered"] < winback["arms"]["A_sms"]["entered"]
    # SMS is opt-in: people who never ticked the box get none.
    assert sum(i["skipped"].get("no_consent", 0) for i in block["by_journey"].values()) > 0


def test_every_message_is_one_line_in_its_channels_file(demo: tuple[dict[str, Any], Path]) -> None:
    summary, data_dir = demo
    totals = summary["journeys"]["totals"]["sends"]
    files = summary["journeys"]["message_files"]

    assert set(files) == {c for c, n in totals.items() if n}
    for channel, info in files.items():
        lines = read_sink(info["path"])
        assert Path(info["path"]).parent == data_dir / journeys.MESSAGES_DIR
        assert len(lines) == info["lines"] == totals[channel]
        keys = [line["key"] for line in lines]
        assert len(keys) == len(set(keys)), channel
        assert {line["channel"] for line in lines} == {channel}
        assert all("{{" not in json.dumps(line["content"], ensure_ascii=False) for line in lines)
    sms = read_sink(files["sms"]["path"])
    assert all(
        line["content"]["text"].startswith("【山茶记】") and "回T退订" in line["content"]["text"]
        for line in sms
    )
