"""The outbox: what each provider outcome leads to, and at most one send per key whatever
happens between the provider call and recording it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import update

from journeys.journeykit import Rig, journey
from quanyu.channels.base import Message, SendResult
from quanyu.channels.registry import AdapterType, register
from quanyu.journeys.outbox import MAX_ATTEMPTS, Dispatcher
from quanyu.store.models import OutboxMessage


class Provider:
    """A scripted provider: answers each call from a list of outcomes, records what reached it."""

    script: ClassVar[list[str]] = []
    received: ClassVar[list[str]] = []
    idempotent = False

    type = "scripted"
    channel = "sms"

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        out = []
        for m in messages:
            outcome = self.script.pop(0) if self.script else "sent"
            if outcome in ("sent", "unknown"):  # reached the provider
                self.received.append(m.key)
            out.append(SendResult(m.key, outcome, provider_id=f"biz-{len(self.received)}" if outcome == "sent" else None,  # type: ignore[arg-type]
                                  error_code=None if outcome == "sent" else f"E_{outcome}"))  # fmt: skip
        return out

    def close(self) -> None:
        return None


class IdempotentProvider(Provider):
    type = "scripted_idempotent"
    idempotent = True


def _factory(cls: type[Provider]) -> Any:
    return lambda settings, secrets: cls()


register(AdapterType("scripted", "sms", _factory(Provider), "test provider"))
register(AdapterType("scripted_idempotent", "sms", _factory(IdempotentProvider), "test provider"))


@pytest.fixture
def provider(rig: Rig) -> type[Provider]:
    Provider.script, Provider.received = [], []
    return Provider


def _sms_journey(rig: Rig, via_type: str) -> Any:
    made = rig.channels.create(rig.workspace_id, via_type, via_type, {})
    live = rig.save(journey({"sms": {"type": "send", "channel": "sms", "via": made["id"], "purpose": "transactional",
                                     "content": {"text": "验证码 123456"}}}))  # fmt: skip
    rig.person("p", sms="13800000001")
    rig.enroll(live, "p")
    rig.runner.run_due()
    return live


def _row(rig: Rig) -> Any:
    (row,) = rig.outbox()
    return row


def test_retry_backs_off_then_sends(rig: Rig, provider: type[Provider]) -> None:
    _sms_journey(rig, "scripted")
    provider.script = ["retry"]
    rig.dispatcher.dispatch()
    row = _row(rig)
    assert row.status == "pending" and row.attempts == 1 and row.next_at > rig.clock.now()
    rig.dispatcher.dispatch()  # not due yet
    assert provider.received == []
    rig.clock.advance(timedelta(seconds=31))
    rig.dispatcher.dispatch()
    assert _row(rig).status == "sent" and _row(rig).provider_id == "biz-1" and len(provider.received) == 1


def test_retries_are_bounded(rig: Rig, provider: type[Provider]) -> None:
    _sms_journey(rig, "scripted")
    provider.script = ["retry"] * 10
    for _ in range(MAX_ATTEMPTS + 2):
        rig.dispatcher.dispatch()
        rig.clock.advance(timedelta(hours=2))
    row = _row(rig)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS and "gave up" in row.error


def test_unknown_is_never_resent_by_a_non_idempotent_provider(rig: Rig, provider: type[Provider]) -> None:
    _sms_journey(rig, "scripted")
    provider.script = ["unknown"]
    rig.dispatcher.dispatch()
    rig.clock.advance(timedelta(hours=1))
    rig.dispatcher.dispatch()
    assert _row(rig).status == "unknown" and provider.received == [_row(rig).key]


def test_unknown_is_retried_when_the_provider_drops_repeats(rig: Rig, provider: type[Provider]) -> None:
    _sms_journey(rig, "scripted_idempotent")
    provider.script = ["unknown", "sent"]
    rig.dispatcher.dispatch()
    assert _row(rig).status == "pending"
    rig.clock.advance(timedelta(minutes=1))
    rig.dispatcher.dispatch()
    # Two calls with the same key: the provider keeps one message.
    assert _row(rig).status == "sent" and provider.received == [_row(rig).key] * 2


def test_failed_is_final(rig: Rig, provider: type[Provider]) -> None:
    _sms_journey(rig, "scripted")
    provider.script = ["failed"]
    rig.dispatcher.dispatch()
    rig.clock.advance(timedelta(hours=1))
    rig.dispatcher.dispatch()
    assert _row(rig).status == "failed" and _row(rig).error_code == "E_failed"


@pytest.mark.parametrize(("kind", "after"), [("scripted", "unknown"), ("scripted_idempotent", "sent")])
def test_a_send_interrupted_mid_call_is_recovered_safely(rig: Rig, provider: type[Provider], kind: str,
                                                         after: str) -> None:  # fmt: skip
    """A worker died after marking the row `sending` (maybe after calling the provider)."""
    _sms_journey(rig, kind)
    o = OutboxMessage.__table__
    with rig.engine.begin() as conn:
        conn.execute(update(o).values(status="sending", claimed_at=rig.clock.now(), attempts=1))
    lease = Dispatcher(rig.engine, rig.policies, rig.channels, clock=rig.clock, lease=timedelta(minutes=5))
    lease.dispatch()
    assert _row(rig).status == "sending"  # still within the lease: maybe the worker is alive
    rig.clock.advance(timedelta(minutes=6))
    lease.dispatch()
    assert _row(rig).status == after
    assert len(provider.received) == (1 if after == "sent" else 0)


def test_a_missing_channel_fails_the_send_with_a_reason(rig: Rig) -> None:
    live = rig.save(journey({"push": {"type": "send", "channel": "sms", "via": "ch_nowhere",
                                      "purpose": "transactional", "content": {"text": "x"}}}))  # fmt: skip
    rig.person("p", sms="13800000001")
    rig.enroll(live, "p")
    rig.run()
    row = _row(rig)
    assert row.status == "failed" and row.error_code == "no_channel" and "ch_nowhere" in row.error


def test_the_outbox_refuses_a_second_row_for_a_key(rig: Rig) -> None:
    """The key (enrollment, node, attempt) is unique: a step re-run after a crash cannot queue twice."""
    live = rig.save(journey({"s": {"type": "send", "channel": "sink", "purpose": "transactional",
                                   "content": {"text": "x"}}}))  # fmt: skip
    rig.enroll(live, "p")
    rig.runner.run_due()
    (row,) = rig.outbox()
    from quanyu.journeys.engine import _outbox_row  # the engine's own row builder

    class _St:
        workspace_id, journey_id, id, node, profile_id = (
            row.workspace_id,
            row.journey_id,
            row.enrollment_id,
            "s",
            "p",
        )

    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if rig.engine.dialect.name == "postgresql" else sqlite.insert
    with rig.engine.begin() as conn:
        again = _outbox_row(row.key, _St, "sink", "default:sink", "p", "transactional", {"text": "x"}, {},  # type: ignore[arg-type]
                            rig.clock.now())  # fmt: skip
        conn.execute(insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["key"]), [again])
    assert len(rig.outbox()) == 1


def _unused(_: Mapping[str, Any]) -> None:  # keeps the Mapping import meaningful for readers
    return None
