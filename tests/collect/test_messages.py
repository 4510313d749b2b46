"""Validation of Segment messages: required fields, completion, time settling, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.collect.limits import MAX_EVENT_BYTES
from quanyu.collect.messages import Envelope, MessageError, complete

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def done(item: Any, kind: str | None = None, envelope: Envelope | None = None) -> dict[str, Any]:
    return orjson.loads(complete(item, kind, envelope or Envelope(), NOW))  # type: ignore[no-any-return]


def refused(item: Any, kind: str | None = None) -> str:
    with pytest.raises(MessageError) as info:
        complete(item, kind, Envelope(), NOW)
    return info.value.code


def test_track_is_completed_with_message_id_type_and_times() -> None:
    msg = done({"userId": "u1", "event": "Order Completed"}, "track")
    assert msg["type"] == "track"
    assert len(msg["messageId"]) == 36
    assert msg["timestamp"] == NOW.isoformat()
    assert "originalTimestamp" not in msg


def test_given_message_id_is_kept() -> None:
    assert done({"anonymousId": "a", "messageId": "m-1"}, "page")["messageId"] == "m-1"


@pytest.mark.parametrize(
    ("item", "kind", "code"),
    [
        ({"event": "x"}, "track", "missing_identity"),
        ({"userId": "u"}, "track", "missing_field"),
        ({"userId": "u", "event": "  "}, "track", "missing_field"),
        ({"userId": "u"}, "group", "missing_field"),
        ({"userId": "u"}, "alias", "missing_field"),
        ({"type": "purchase", "userId": "u"}, None, "invalid_type"),
        ({"userId": "u", "properties": [1]}, "page", "invalid_field"),
        ({"userId": "u", "context": "x"}, "identify", "invalid_field"),
        ({"userId": {"a": 1}}, "identify", "invalid_field"),
        ({"userId": True}, "identify", "invalid_field"),
        ({"userId": "u", "timestamp": "yesterday"}, "identify", "invalid_timestamp"),
        ({"userId": "u", "messageId": 5}, "identify", "invalid_field"),
        ([1, 2], None, "invalid_message"),
    ],
)
def test_invalid_messages_are_refused_with_a_reason(item: Any, kind: str | None, code: str) -> None:
    assert refused(item, kind) == code


def test_numeric_ids_become_strings_and_nulls_disappear() -> None:
    msg = done({"userId": 42, "anonymousId": None, "event": "E"}, "track")
    assert msg["userId"] == "42"
    assert "anonymousId" not in msg


def test_write_key_never_travels_with_the_message() -> None:
    assert "writeKey" not in done({"userId": "u", "writeKey": "wk_secret"}, "identify")


def test_clock_skew_is_corrected_from_sent_at() -> None:
    client_now = NOW - timedelta(hours=2)  # the device clock is two hours slow
    happened = client_now - timedelta(minutes=5)
    msg = done(
        {"userId": "u", "event": "E", "timestamp": happened.isoformat(), "sentAt": client_now.isoformat()},
        "track",
    )
    assert datetime.fromisoformat(msg["timestamp"]) == NOW - timedelta(minutes=5)
    assert datetime.fromisoformat(msg["originalTimestamp"]) == happened


def test_batch_envelope_supplies_sent_at_and_context() -> None:
    env = Envelope(
        sent_at=(NOW - timedelta(hours=1)).isoformat(), context={"library": {"name": "x"}, "ip": "1"}
    )
    msg = done({"userId": "u", "timestamp": (NOW - timedelta(hours=1)).isoformat(), "context": {"ip": "2"}},
               "identify", env)  # fmt: skip
    assert msg["context"] == {"library": {"name": "x"}, "ip": "2"}
    assert datetime.fromisoformat(msg["timestamp"]) == NOW


def test_naive_and_offset_times_are_settled_in_utc() -> None:
    msg = done({"userId": "u", "timestamp": "2026-03-05T20:13:44+08:00"}, "identify")
    assert msg["timestamp"] == "2026-03-05T12:13:44+00:00"
    assert done({"userId": "u", "timestamp": "2026-03-05T12:13:44"}, "identify")["timestamp"].endswith(
        "+00:00"
    )


def test_message_over_32kb_is_refused() -> None:
    assert (
        refused({"userId": "u", "properties": {"blob": "x" * MAX_EVENT_BYTES}}, "identify")
        == "event_too_large"
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
message_like = st.dictionaries(
    st.sampled_from(["type", "userId", "anonymousId", "event", "name", "properties", "traits", "context",
                     "timestamp", "sentAt", "messageId", "groupId", "previousId", "writeKey"]),
    json_values | st.sampled_from(["track", "identify", "2026-01-01T00:00:00Z", "u1"]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(item=message_like | json_values)
def test_any_json_is_either_a_valid_completed_message_or_a_reasoned_refusal(item: Any) -> None:
    try:
        encoded = complete(item, None, Envelope(), NOW)
    except MessageError as err:
        assert err.code and err.message
        return
    msg = orjson.loads(encoded)
    assert len(encoded) <= MAX_EVENT_BYTES
    assert msg["type"] in {"identify", "track", "page", "screen", "group", "alias"}
    assert msg["messageId"] and "writeKey" not in msg
    assert msg.get("userId") or msg.get("anonymousId")
    datetime.fromisoformat(msg["timestamp"])
