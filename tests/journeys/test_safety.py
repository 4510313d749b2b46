"""The send rules every marketing send passes: consent per channel and purpose, suppression,
quiet hours in the person's time zone, daily frequency caps, the kill switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeys.journeykit import Rig, journey, send_to
from quanyu.journeys.policy import ConsentInput, record_consent, suppress


def _consent(rig: Rig, subject: str, channel: str, granted: bool, *, kind: str = "profile",
             at: datetime | None = None, key: str | None = None) -> None:  # fmt: skip
    with rig.engine.begin() as conn:
        record_consent(conn, rig.workspace_id, [ConsentInput(kind, subject, channel, "marketing", granted, "test",
                                                             at or rig.clock.now(), {}, key)])  # fmt: skip


def _skips(rig: Rig, journey_id: str) -> list[str | None]:
    return [detail for _node, kind, detail in rig.steps(journey_id) if kind == "skipped"]


def test_sms_needs_a_grant_and_a_reply_withdraws_it(rig: Rig) -> None:
    live = rig.save(journey({"sms": send_to("sms", "新品上市")}, settings={"reentry": {"mode": "always"}}))
    for pid in ("granted", "silent", "replied"):
        rig.person(pid, sms=f"1380000000{len(pid)}")
    _consent(rig, "granted", "sms", True)
    _consent(rig, "replied", "sms", True, at=rig.clock.now() - timedelta(days=1))
    # "TD" from the replied person's phone: an address-level withdrawal, newer than the grant.
    _consent(rig, rig.people["replied"].addresses["sms"], "sms", False, kind="address")
    rig.enroll(live, "granted", "silent", "replied")
    rig.run()
    assert [line["profile_id"] for line in rig.sink("sms")] == ["granted"]
    assert sorted(_skips(rig, live.id)) == ["consent_withdrawn", "no_consent"]


def test_email_is_open_until_withdrawn_and_transactional_skips_consent(rig: Rig) -> None:
    marketing = rig.save(journey({"mail": send_to("email")}, name="newsletter"))
    receipt = rig.save(journey({"mail": send_to("email", purpose="transactional")}, name="receipt"))
    rig.person("a", email="a@example.com")
    rig.person("b", email="b@example.com")
    _consent(rig, "b", "*", False)  # withdrew from all marketing
    rig.enroll(marketing, "a", "b")
    rig.enroll(receipt, "a", "b")
    rig.run()
    sent = sorted((line["profile_id"], line["key"].split(":")[0]) for line in rig.sink("email"))
    assert len(sent) == 3 and ("b", "1") not in sent[:0]
    assert _skips(rig, marketing.id) == ["consent_withdrawn"]
    assert _skips(rig, receipt.id) == []


def test_suppression_applies_to_every_send(rig: Rig) -> None:
    live = rig.save(journey({"mail": send_to("email", purpose="transactional")}))
    rig.person("a", email="bounced@example.com")
    rig.person("b", email="ok@example.com")
    rig.person("c", email="c@example.com")
    with rig.engine.begin() as conn:
        suppress(conn, rig.workspace_id, "email", "bounced@example.com", "bounced", "test")
        suppress(conn, rig.workspace_id, "*", "c", "deleted", "privacy")  # the whole profile
    rig.enroll(live, "a", "b", "c")
    rig.run()
    assert [line["profile_id"] for line in rig.sink("email")] == ["b"]
    assert _skips(rig, live.id) == ["suppressed", "suppressed"]


@pytest.mark.parametrize(("zone", "quiet"), [("Asia/Shanghai", False), ("America/Los_Angeles", True),
                                             ("Europe/London", False), ("Asia/Tokyo", True),
                                             ("Pacific/Auckland", True)])  # fmt: skip
def test_quiet_hours_in_the_persons_zone(lite: Rig, zone: str, quiet: bool) -> None:
    # 12:30 UTC: 20:30 Shanghai, 04:30 Los Angeles, 12:30 London, 21:30 Tokyo, 01:30 Auckland.
    lite.clock.set(datetime(2026, 11, 30, 12, 30, tzinfo=UTC))
    live = lite.save(journey({"mail": send_to("email")}))
    lite.person("p", email="p@example.com", tz=zone)
    lite.enroll(live, "p")
    lite.run()
    assert (lite.sink("email") == []) is quiet
    if quiet:
        (row,) = lite.enrollments(live.id)
        local_end = row.due_at.astimezone(__import__("zoneinfo").ZoneInfo(zone))
        assert (local_end.hour, local_end.minute) == (9, 0)
        lite.clock.set(row.due_at)
        lite.run()
        assert len(lite.sink("email")) == 1


def test_quiet_hours_default_zone_and_cancel(rig: Rig) -> None:
    rig.clock.set(datetime(2026, 11, 30, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    after = send_to("sink", purpose="transactional")
    hold = rig.save(journey({"mail": send_to("email", nxt="after"), "after": after}, name="hold"))
    cancel = rig.save(journey({"mail": send_to("email", nxt="after"), "after": after}, name="cancel",
                              settings={"quiet_hours": "cancel"}))  # fmt: skip
    rig.person("p", email="p@example.com")
    rig.enroll(hold, "p")
    rig.enroll(cancel, "p")
    rig.run()
    assert rig.sink("email") == []
    assert _skips(rig, cancel.id) == ["quiet_hours"]
    assert len(rig.sink()) == 1  # cancel went on to the next step at once
    rig.clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 09:00 Shanghai
    rig.run()
    assert len(rig.sink("email")) == 1 and len(rig.sink()) == 2
    # Transactional sends ignore quiet hours.
    rig.clock.set(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    urgent = rig.save(journey({"otp": send_to("email", purpose="transactional")}, name="otp"))
    rig.enroll(urgent, "p")
    rig.run()
    assert len(rig.sink("email")) == 2


@pytest.mark.parametrize("behaviour", ["skip", "hold", "drop"])
def test_frequency_cap_behaviours(rig: Rig, behaviour: str) -> None:
    rig.policies.update(rig.workspace_id, {"caps": {"sms": 1}})
    first = rig.save(journey({"sms": send_to("sms", "one")}, name="first"))
    after = send_to("sink", purpose="transactional")
    second = rig.save(journey({"sms": send_to("sms", "two", nxt="after"), "after": after}, name="second",
                              settings={"frequency_cap": behaviour}))  # fmt: skip
    rig.person("p", sms="13800000001")
    _consent(rig, "p", "sms", True)
    rig.enroll(first, "p")
    rig.run()
    rig.enroll(second, "p")
    rig.run()
    assert [line["content"]["text"] for line in rig.sink("sms")] == ["one"]
    (row,) = rig.enrollments(second.id)
    if behaviour == "skip":
        assert row.exit_reason == "completed" and len(rig.sink()) == 1
    elif behaviour == "drop":
        assert row.exit_reason == "frequency_cap" and rig.sink() == []
    else:
        # Held to the person's next local day (midnight Shanghai = 16:00 UTC), then sent.
        assert row.status == "active" and row.due_at.isoformat() == "2026-11-30T16:00:00+00:00"
        rig.clock.set(row.due_at)
        rig.run()
        # Midnight is inside quiet hours: held again until 09:00, then sent (the cap is a new day's).
        rig.clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
        rig.run()
        assert [line["content"]["text"] for line in rig.sink("sms")] == ["one", "two"]


def test_caps_count_per_local_day(lite: Rig) -> None:
    lite.policies.update(lite.workspace_id, {"caps": {"email": 1}})
    live = lite.save(journey({"a": send_to("email", nxt="w"), "w": {"type": "wait", "duration": {"hours": 13},
                                                                     "next": "b"}, "b": send_to("email")}))  # fmt: skip
    lite.clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))  # 09:00 Shanghai
    lite.person("p", email="p@example.com")
    lite.enroll(live, "p")
    lite.run()
    lite.advance(hours=13)  # 22:00 the same local day: quiet, held till 09:00 next day: a new day
    lite.clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    lite.run()
    assert len(lite.sink("email")) == 2


def test_kill_switch_stops_sends_within_a_second(rig: Rig) -> None:
    live = rig.save(journey({"mail": send_to("email")}, settings={"reentry": {"mode": "always"}}))
    rig.person("p", email="p@example.com")
    rig.enroll(live, "p", key="one")
    rig.runner.run_due()  # queued in the outbox, not yet sent
    rig.policies.set_kill_switch(rig.workspace_id, True, "ops")
    rig.enroll(live, "p", key="two")
    rig.run()
    assert rig.sink("email") == []
    assert [r.status for r in rig.outbox()] == ["pending"]  # the queued one waits; the second is held
    assert any(kind == "held" and detail == "kill_switch" for _n, kind, detail in rig.steps(live.id))
    rig.policies.set_kill_switch(rig.workspace_id, False, "ops")
    rig.advance(minutes=2)
    assert len(rig.sink("email")) == 2
