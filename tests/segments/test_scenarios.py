"""The seed's scenarios, as documented in docs/examples/segments/, on a restaurant brand's
diners: each membership equals an independent computation over the same raw events in pandas,
written from what the scenario means (not from the compiler's SQL).

The oracle reads the events as they were generated (`Ledger.events`), decides windows with
pandas' own time-zone arithmetic, and never touches the warehouse or the profiles.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from crowd import NOW, TOUCH, World, restaurant

EXAMPLES = Path(__file__).parent.parent.parent / "docs" / "examples" / "segments"
ZONE = "Asia/Shanghai"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return document


@pytest.fixture(scope="module", params=[7, 2026])
def diners(request: pytest.FixtureRequest) -> Iterator[World]:
    world = restaurant(request.param)
    yield world
    world.close()


# ---------------------------------------------------------------------------------------------
# The oracle


class Oracle:
    """The raw events as a DataFrame, and the sets the scenarios describe."""

    def __init__(self, world: World) -> None:
        df = pd.DataFrame(world.ledger.events)
        df["at"] = pd.to_datetime(df["timestamp"], utc=True)
        df["local"] = df["at"].dt.tz_convert(ZONE)
        df["props"] = [
            json.loads(p) if isinstance(p, str) else {} for p in df.get("properties", [None] * len(df))
        ]
        self.events = df
        self.everyone = set(df["user_id"])
        self.now = pd.Timestamp(NOW)
        self.local_now = self.now.tz_convert(ZONE)

    def who(self, rows: pd.Series) -> set[str]:
        return set(self.events.loc[rows, "user_id"])

    def in_window(self, window: str) -> pd.Series:
        """Whether each event falls in the window, by what the window means to a marketer."""
        local = self.events["local"]
        if window == "rolling_30_days":  # the last 30 × 24 hours, and anything stamped later
            return self.events["at"] >= self.now - pd.Timedelta(days=30)
        if window == "this_month":  # the calendar month it is now in Shanghai
            return (local.dt.year == self.local_now.year) & (local.dt.month == self.local_now.month)
        assert window == "last_month"
        previous = (self.local_now.replace(day=1) - pd.Timedelta(days=1)).date()
        return (local.dt.year == previous.year) & (local.dt.month == previous.month)

    def reached(self, meaning: str) -> pd.Series:
        if meaning == "touch":  # the brand's messages: the workspace's touch events
            return self.events["event"].isin(TOUCH)
        assert meaning == "any_activity"  # any event at all, browsing the mini program included
        return pd.Series(True, index=self.events.index)

    def not_reached(self, window: str, meaning: str) -> set[str]:
        return self.everyone - self.who(self.in_window(window) & self.reached(meaning))

    def orders(self) -> pd.Series:
        return self.events["event"] == "Order Completed"

    def bought_twice_in_90_days_no_touch_in_30(self) -> set[str]:
        recent = self.orders() & (self.events["at"] >= self.now - pd.Timedelta(days=90))
        counts = self.events.loc[recent, "user_id"].value_counts()
        twice = set(counts[counts >= 2].index)
        return twice - self.who(self.in_window("rolling_30_days") & self.reached("touch"))

    def followed_via_store_qr_never_bought(self) -> set[str]:
        props = self.events["props"]
        followed = (self.events["event"] == "Official Account Followed") & props.map(
            lambda p: p.get("scene") == "store_qr" and p.get("store_id") is not None
        )
        scanned = (self.events["event"] == "QR Scanned") & props.map(lambda p: p.get("qr_type") == "store")
        return self.who(followed | scanned) - self.who(self.orders())

    def high_value_tmall_never_in_store(self, threshold: float) -> set[str]:
        tmall = self.events[self.orders() & (self.events["channel"] == "tmall")]
        spent = tmall.groupby("user_id")["amount"].sum()
        high = set(spent[spent >= threshold].index)
        in_store = (self.events["event"] == "Store Visited") | (self.events["presence"] == "offline")
        return high - self.who(in_store)


def nontrivial(members: set[str], everyone: set[str]) -> None:
    assert 5 <= len(members) <= len(everyone) - 5, len(members)


def with_window(definition: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    """The definition with every event window replaced (one reading of "the last 30 days")."""
    changed = copy.deepcopy(definition)
    stack: list[Any] = [changed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "window" in node:
                node["window"] = window
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return changed


WINDOWS = {
    "rolling_30_days": {"last": 30, "unit": "day"},
    "last_month": {"calendar": "last_month"},
    "this_month": {"calendar": "this_month"},
}


# ---------------------------------------------------------------------------------------------
# The restaurant win-back: everyone not reached in 30 days


@pytest.mark.parametrize(
    ("name", "window", "meaning"),
    [
        ("winback_rolling_30_days_touch", "rolling_30_days", "touch"),
        ("winback_rolling_30_days_any_activity", "rolling_30_days", "any_activity"),
        ("winback_last_month_touch", "last_month", "touch"),
        ("winback_this_month_any_activity", "this_month", "any_activity"),
    ],
)
def test_winback_examples(diners: World, name: str, window: str, meaning: str) -> None:
    oracle = Oracle(diners)
    members = diners.members(example(name))
    assert members == oracle.not_reached(window, meaning)
    nontrivial(members, oracle.everyone)


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("meaning", ["touch", "any_activity"])
def test_winback_in_every_reading(diners: World, window: str, meaning: str) -> None:
    """Both readings of "the last 30 days" and both of "reached", each against the oracle."""
    base = "winback_rolling_30_days_touch" if meaning == "touch" else "winback_rolling_30_days_any_activity"
    definition = with_window(example(base), WINDOWS[window])
    assert diners.members(definition) == Oracle(diners).not_reached(window, meaning)


def test_the_readings_disagree_so_the_choice_matters(diners: World) -> None:
    oracle = Oracle(diners)
    readings = {(w, m): oracle.not_reached(w, m) for w in WINDOWS for m in ("touch", "any_activity")}
    for window in WINDOWS:
        # Browsing counts as being reached under the wider meaning: fewer people to win back.
        assert readings[(window, "any_activity")] < readings[(window, "touch")]
    assert readings[("rolling_30_days", "touch")] != readings[("last_month", "touch")]
    assert readings[("rolling_30_days", "any_activity")] != readings[("this_month", "any_activity")]


def test_a_browser_who_never_ordered_is_reached_only_under_the_wider_meaning(diners: World) -> None:
    oracle = Oracle(diners)
    events = oracle.events
    browsed = oracle.who((events["type"] == "page") & oracle.in_window("rolling_30_days"))
    never_ordered = oracle.everyone - oracle.who(oracle.orders())
    untouched = oracle.not_reached("rolling_30_days", "touch")
    browsers = browsed & never_ordered & untouched
    assert browsers, "the data holds someone who only browsed the mini program lately"
    assert browsers <= diners.members(example("winback_rolling_30_days_touch"))
    assert not browsers & diners.members(example("winback_rolling_30_days_any_activity"))


def test_the_winback_moves_with_the_evaluation_moment(diners: World) -> None:
    """A month later nobody has been touched in the last 30 days except by the skewed clocks."""
    later = NOW + timedelta(days=31)
    oracle = Oracle(diners)
    late = oracle.events["at"] >= pd.Timestamp(later) - pd.Timedelta(days=30)
    expected = oracle.everyone - oracle.who(late & oracle.reached("touch"))
    assert diners.members(example("winback_rolling_30_days_touch"), now=later) == expected


def test_reached_follows_the_workspaces_event_groups(diners: World) -> None:
    """What counts as a touch is a setting: with SMS only, more people were not reached."""
    oracle = Oracle(diners)
    sms = oracle.events["event"] == "SMS Delivered"
    expected = oracle.everyone - oracle.who(sms & oracle.in_window("rolling_30_days"))
    got = diners.members(example("winback_rolling_30_days_touch"), event_groups={"touch": ["SMS Delivered"]})
    assert got == expected
    assert got > oracle.not_reached("rolling_30_days", "touch")


# ---------------------------------------------------------------------------------------------
# The other scenarios


def test_bought_twice_in_90_days_but_no_touch_in_30(diners: World) -> None:
    oracle = Oracle(diners)
    members = diners.members(example("bought_twice_in_90_days_no_touch_in_30"))
    assert members == oracle.bought_twice_in_90_days_no_touch_in_30()
    nontrivial(members, oracle.everyone)


def test_followed_via_a_stores_qr_code_but_never_bought(diners: World) -> None:
    oracle = Oracle(diners)
    members = diners.members(example("followed_via_store_qr_never_bought"))
    assert members == oracle.followed_via_store_qr_never_bought()
    assert len(members) >= 3


def test_high_value_tmall_buyers_who_never_visited_a_store(diners: World) -> None:
    oracle = Oracle(diners)
    members = diners.members(example("high_value_tmall_never_in_store"))
    assert members == oracle.high_value_tmall_never_in_store(300)
    nontrivial(members, oracle.everyone)
    # The threshold is the marketer's: raising it keeps a subset.
    definition = example("high_value_tmall_never_in_store")
    definition["conditions"][0]["sum"]["value"] = 800
    assert diners.members(definition) == oracle.high_value_tmall_never_in_store(800) <= members


def test_every_documented_example_is_covered_here() -> None:
    covered = {
        "winback_rolling_30_days_touch", "winback_rolling_30_days_any_activity", "winback_last_month_touch",
        "winback_this_month_any_activity", "bought_twice_in_90_days_no_touch_in_30",
        "followed_via_store_qr_never_bought", "high_value_tmall_never_in_store",
    }  # fmt: skip
    assert {p.stem for p in EXAMPLES.glob("*.json")} == covered
