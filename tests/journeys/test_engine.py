"""The engine on both operational stores: steps, waits, splits, re-entry, holdout, versions,
pause and archive — what a person in a journey experiences."""

from __future__ import annotations

from collections import Counter

import pytest

from journeys.journeykit import Rig, journey, send_to
from quanyu.journeys.people import Person
from quanyu.journeys.policy import in_holdout
from quanyu.journeys.stats import duplicate_sends, journey_stats


def test_welcome_sends_once_and_completes(rig: Rig) -> None:
    live = rig.save(journey({"welcome": send_to("sink", "欢迎 {{ profile.first_name | default: '朋友' }}")}))
    rig.person("p1", traits={"first_name": "小明"})
    rig.person("p2")
    assert rig.enroll(live, "p1", "p2").enrolled == 2
    rig.run()
    lines = {line["profile_id"]: line for line in rig.sink()}
    assert lines["p1"]["content"]["text"] == "欢迎 小明"
    assert lines["p2"]["content"]["text"] == "欢迎 朋友"
    assert [e.exit_reason for e in rig.enrollments(live.id)] == ["completed", "completed"]
    stats = journey_stats(rig.engine, live.id)
    assert stats["entered"] == 2 and stats["exited"] == {"completed": 2}
    assert stats["channels"]["sink"]["sent"] == 2
    assert duplicate_sends(rig.engine, live.id) == 0
    rig.run()  # nothing left to do: nothing sent again
    assert len(rig.sink()) == 2


def test_wait_duration_holds_until_due(rig: Rig) -> None:
    live = rig.save(journey({"wait": {"type": "wait", "duration": {"days": 3}, "next": "send"},
                             "send": send_to("sink")}))  # fmt: skip
    rig.enroll(live, "p1")
    rig.run()
    assert rig.sink() == []
    assert journey_stats(rig.engine, live.id)["nodes"]["wait"]["waiting"] == 1
    rig.advance(days=2, hours=23)
    assert rig.sink() == []
    rig.advance(hours=1)
    assert len(rig.sink()) == 1


def test_wait_until_time_of_day_in_the_persons_zone(rig: Rig) -> None:
    live = rig.save(
        journey({"wait": {"type": "wait", "until": "10:00", "next": "send"}, "send": send_to("sink")})
    )
    rig.person("sh", tz="Asia/Shanghai")  # noon there: next 10:00 is tomorrow 02:00 UTC
    rig.person("ny", tz="America/New_York")  # 23:00 the day before: next 10:00 is 15:00 UTC today
    rig.enroll(live, "sh", "ny")
    rig.run()
    due = {e.profile_id: e.due_at for e in rig.enrollments(live.id)}
    assert due["ny"].isoformat() == "2026-11-30T15:00:00+00:00"
    assert due["sh"].isoformat() == "2026-12-01T02:00:00+00:00"
    rig.advance(hours=11, minutes=1)
    assert [line["profile_id"] for line in rig.sink()] == ["ny"]


def test_split_is_sticky_and_control_gets_nothing(rig: Rig) -> None:
    nodes = {"split": {"type": "split", "arms": [{"name": "A", "percent": 45, "next": "a"},
                                                 {"name": "B", "percent": 45, "next": "b"}], "control": 10},
             "a": send_to("sink", "A"), "b": send_to("sink", "B")}  # fmt: skip
    live = rig.save(journey(nodes, start="split", goal={"event": "Order Completed", "within_days": 7},
                            settings={"reentry": {"mode": "always"}}))  # fmt: skip
    people = [f"p{i}" for i in range(400)]
    rig.enroll(live, *people)
    rig.run()
    first = {e.profile_id: e.arm for e in rig.enrollments(live.id)}
    counts = Counter(first.values())
    assert 130 <= counts["A"] <= 230 and 130 <= counts["B"] <= 230 and 15 <= counts["control"] <= 70
    sent_to = {line["profile_id"] for line in rig.sink()}
    assert sent_to == {p for p, arm in first.items() if arm != "control"}
    # Control waits out the goal window, then leaves as "control".
    assert all(e.status == "active" for e in rig.enrollments(live.id) if e.arm == "control")
    rig.advance(days=7, seconds=1)
    assert {e.exit_reason for e in rig.enrollments(live.id) if e.arm == "control"} == {"control"}
    # Entering again lands everyone in the same arm.
    rig.enroll(live, *people, key="again")
    rig.run()
    again = [e for e in rig.enrollments(live.id) if e.entered_at == rig.clock.now()]
    assert len(again) == 400 and all(first[e.profile_id] == e.arm for e in again)


@pytest.mark.parametrize(
    ("mode", "interval", "expected"),
    [
        ("never", None, 1),
        ("after_exit", None, 2),
        ("always", None, 3),
        ("always", {"minutes": 60}, 2),
        ("after_exit", {"hours": 2}, 1),
    ],
)
def test_reentry_rules(lite: Rig, mode: str, interval: dict[str, int] | None, expected: int) -> None:
    reentry: dict[str, object] = {"mode": mode}
    if interval:
        reentry["min_interval"] = interval
    live = lite.save(journey({"wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"},
                              "send": send_to("sink")}, settings={"reentry": reentry}))  # fmt: skip
    lite.enroll(live, "p", key="first")
    lite.run()
    lite.enroll(live, "p", key="while-waiting")  # still active
    lite.advance(hours=1, minutes=30)  # the first has ended
    lite.enroll(live, "p", key="after")
    lite.run()
    assert len(lite.enrollments(live.id)) == expected


def test_same_trigger_never_enrolls_twice(lite: Rig) -> None:
    live = lite.save(journey({"send": send_to("sink")}, settings={"reentry": {"mode": "always"}}))
    assert lite.enroll(live, "p", key="msg-1").enrolled == 1
    report = lite.enroll(live, "p", key="msg-1")
    assert report.enrolled == 0 and report.refused == {"duplicate_trigger": 1}


def test_global_holdout_is_stable_and_measured(rig: Rig) -> None:
    rig.policies.update(rig.workspace_id, {"holdout_percent": 20})
    live = rig.save(journey({"send": send_to("sink")}, goal={"event": "Order Completed", "within_days": 3}))
    people = [f"p{i}" for i in range(500)]
    report = rig.enroll(live, *people)
    rig.run()
    held = {p for p in people if in_holdout(rig.workspace_id, p, 20)}
    assert report.held_out == len(held) and 60 <= len(held) <= 140
    assert {line["profile_id"] for line in rig.sink()} == set(people) - held
    rig.advance(days=3, seconds=1)
    reasons = Counter(e.exit_reason for e in rig.enrollments(live.id))
    assert reasons == {"completed": 500 - len(held), "holdout": len(held)}
    # A journey can opt out of the holdout.
    other = rig.save(journey({"send": send_to("sink")}, name="transactional", settings={"holdout": False}))
    assert rig.enroll(other, *people).held_out == 0


def test_running_enrollments_keep_their_version(lite: Rig) -> None:
    v1 = journey(
        {"wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"}, "send": send_to("sink", "v1")}
    )
    live = lite.save(v1)
    lite.enroll(live, "early")
    lite.run()
    v2 = journey(
        {"wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"}, "send": send_to("sink", "v2")}
    )
    lite.journeys.update(lite.workspace_id, live.id, v2, "test")
    lite.journeys.publish(lite.workspace_id, live.id, "test")
    live2 = next(j for j in lite.journeys.live(lite.workspace_id) if j.id == live.id)
    assert live2.version == 2
    lite.enroll(live2, "late")
    lite.run()
    lite.advance(hours=1, seconds=1)
    assert {line["profile_id"]: line["content"]["text"] for line in lite.sink()} == {
        "early": "v1",
        "late": "v2",
    }


def test_pause_holds_and_archive_ends(lite: Rig) -> None:
    live = lite.save(journey({"wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"},
                              "send": send_to("sink")}))  # fmt: skip
    lite.enroll(live, "p1", "p2")
    lite.run()
    lite.journeys.pause(lite.workspace_id, live.id, "test")
    lite.advance(hours=2)
    assert lite.sink() == []
    assert lite.journeys.live(lite.workspace_id) == []  # no new entries while paused
    lite.journeys.publish(lite.workspace_id, live.id, "test")
    lite.run()
    assert len(lite.sink()) == 2
    other = lite.save(journey({"wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"},
                               "send": send_to("sink")}, name="other"))  # fmt: skip
    lite.enroll(other, "p3")
    lite.run()
    lite.journeys.archive(lite.workspace_id, other.id, "test")
    lite.advance(hours=2)
    assert [e.exit_reason for e in lite.enrollments(other.id)] == ["journey_archived"]
    assert len(lite.sink()) == 2


def test_actions_queue_effects_and_tasks(lite: Rig) -> None:
    nodes = {"tag": {"type": "tag", "add": ["vip"], "next": "trait"},
             "trait": {"type": "set_trait", "traits": {"stage": "welcomed"}, "next": "score"},
             "score": {"type": "lead_score", "delta": 10, "reason": "signed up", "next": "task"},
             "task": {"type": "task", "title": "回访 Call back", "due_in": {"days": 1}}}  # fmt: skip
    live = lite.save(journey(nodes, start="tag"))
    lite.person("p1", traits={"guide_id": "guide_7"})
    lite.enroll(live, "p1")
    lite.runner.run_due()
    ops = [r.content["op"] for r in lite.outbox()]
    assert ops == ["tag", "set_trait", "lead_score"]  # waiting for a dispatcher with the warehouse
    from sqlalchemy import select

    from quanyu.store.models import GuideTask

    with lite.engine.connect() as conn:
        task = conn.execute(select(GuideTask.__table__)).one()
    assert task.assignee == "guide_7" and task.title == "回访 Call back"


def test_openids_are_chosen_by_the_official_account(lite: Rig) -> None:
    """A person followed two accounts (or has a Channels openid): the send goes to the openid of
    the account the channel sends as, and with none for that app, nowhere."""
    made = lite.channels.create(lite.workspace_id, "公众号 A", "sink_wechat_oa",
                                {"path": str(lite.dir / "oa_a.jsonl"), "app_id": "wxA"})  # fmt: skip
    other = lite.channels.create(lite.workspace_id, "公众号 C", "sink_wechat_oa",
                                 {"path": str(lite.dir / "oa_c.jsonl"), "app_id": "wxC"})  # fmt: skip
    via_a = lite.save(
        journey({"t": send_to("wechat_oa", "A", via=made["id"], purpose="transactional")}, name="a")
    )
    via_c = lite.save(
        journey({"t": send_to("wechat_oa", "C", via=other["id"], purpose="transactional")}, name="c")
    )
    p = Person("p", {"wechat_oa": "o_newest_B"}, None, {}, {"wechat_oa": {"wxA": "o_A", "wxB": "o_newest_B"}})
    lite.people["p"] = p
    lite.enroll(via_a, "p")
    lite.enroll(via_c, "p")
    lite.run()
    from quanyu.channels.sink import read_sink

    assert [line["to"] for line in read_sink(lite.dir / "oa_a.jsonl")] == ["o_A"]
    assert read_sink(lite.dir / "oa_c.jsonl") == []
    assert [d for _n, k, d in lite.steps(via_c.id) if k == "skipped"] == ["no_address"]


def test_consent_given_before_a_merge_still_counts(lite: Rig) -> None:
    from quanyu.journeys.policy import ConsentInput, record_consent

    live = lite.save(journey({"sms": send_to("sms", "上新")}))
    with lite.engine.begin() as conn:  # granted while the person was still profile "old"
        record_consent(conn, lite.workspace_id, [ConsentInput("profile", "old", "sms", "marketing", True, "form",
                                                              lite.clock.now())])  # fmt: skip
    lite.people["merged"] = Person("merged", {"sms": "13800000009"}, None, {}, {}, ("old",))
    lite.enroll(live, "merged")
    lite.run()
    assert [line["profile_id"] for line in lite.sink("sms")] == ["merged"]


def test_lift_compares_the_split_arms_with_control(lite: Rig) -> None:
    from sqlalchemy import update

    from quanyu.store.models import Enrollment

    nodes = {"wait": {"type": "wait", "duration": {"hours": 1}, "next": "split"},
             "split": {"type": "split", "arms": [{"name": "A", "percent": 80, "next": "a"}], "control": 20},
             "a": send_to("sink", "A", purpose="transactional")}  # fmt: skip
    live = lite.save(
        journey(nodes, start="wait", goal={"event": "Order Completed", "within_days": 7, "exit": False})
    )
    lite.enroll(live, *[f"p{i}" for i in range(100)])
    lite.run()
    e = Enrollment.__table__
    with lite.engine.begin() as conn:  # ten people convert and leave before reaching the split
        conn.execute(update(e).where(e.c.profile_id.in_([f"p{i}" for i in range(10)]))
                     .values(goal_at=lite.clock.now(), status="done", exit_reason="goal"))  # fmt: skip
    lite.advance(hours=1, minutes=1)
    goal = journey_stats(lite.engine, live.id)["goal"]
    assert goal["by_arm"]["treatment"] == {"entered": 10, "converted": 10, "rate": 1.0}
    assert goal["treated_rate"] == 0.0  # only arm A counts as treated: nobody there converted
