"""Validation of Segment-spec messages, written for the hot path (tens of thousands per second).

Each accepted message is completed (messageId, type, batch-level sentAt/context) and serialised
once; the serialised bytes are both the size check and what goes into the queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from quanyu.collect.limits import MAX_EVENT_BYTES, MAX_EVENT_NAME_LENGTH, MAX_ID_LENGTH

TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId")


class MessageError(ValueError):
    """Why one message was refused. `code` is stable, the message is bilingual."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Envelope:
    """What the batch wrapper contributes to each item."""

    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


def complete(item: Any, kind: str | None, envelope: Envelope, received_at: datetime) -> bytes:
    """Validate one message and return its serialised, completed form, or raise MessageError.

    Times are settled here, as Segment does: `originalTimestamp` keeps the client's clock,
    `timestamp` is corrected for clock skew (receivedAt - (sentAt - originalTimestamp)), and
    all of them are rewritten as UTC ISO-8601 so every engine parses them the same way.
    """
    if not isinstance(item, dict):
        raise MessageError("invalid_message", "消息必须是 JSON 对象 / each message must be a JSON object")
    item.pop("writeKey", None)
    mtype = item.get("type") if kind is None else kind
    if not isinstance(mtype, str) or mtype not in TYPES:
        raise MessageError("invalid_type", f"未知消息类型 / unknown message type {mtype!r}")
    item["type"] = mtype
    _normalise_ids(item)
    _check_required(item, mtype)
    _check_shapes(item)
    _apply_envelope(item, envelope)
    _settle_times(item, received_at)
    if not item.get("messageId"):
        item["messageId"] = str(uuid.uuid4())
    try:
        encoded = orjson.dumps(item)
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson's 254 levels
        raise MessageError(
            "invalid_field", f"消息无法编码（嵌套过深？）/ message cannot be encoded: {exc}"
        ) from None
    if len(encoded) > MAX_EVENT_BYTES:
        raise MessageError(
            "event_too_large", f"单条消息超过 32KB / message is {len(encoded)} bytes, over the 32 KB limit"
        )
    return encoded


def _normalise_ids(item: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        value = item.get(key)
        if value is None:
            item.pop(key, None)
            continue
        if type(value) is str:  # the common case, checked first: this runs for every message
            if len(value) > MAX_ID_LENGTH:
                raise MessageError("invalid_field", f"{key} 过长 / {key} is longer than {MAX_ID_LENGTH}")
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise MessageError("invalid_field", f"{key} 必须是字符串 / {key} must be a string")
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_ID_LENGTH:
            raise MessageError("invalid_field", f"{key} 过长 / {key} is longer than {MAX_ID_LENGTH}")
        item[key] = text
    message_id = item.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or len(message_id) > MAX_ID_LENGTH):
        raise MessageError(
            "invalid_field", "messageId 必须是不超过 255 字符的字符串 / messageId must be a string"
        )


def _check_required(item: dict[str, Any], mtype: str) -> None:
    if mtype == "alias":
        if not item.get("userId") or not item.get("previousId"):
            raise MessageError(
                "missing_field", "alias 需要 userId 和 previousId / alias needs userId and previousId"
            )
        return
    if not item.get("userId") and not item.get("anonymousId"):
        raise MessageError(
            "missing_identity", "需要 userId 或 anonymousId / userId or anonymousId is required"
        )
    if mtype == "track":
        event = item.get("event")
        if not isinstance(event, str) or not event.strip():
            raise MessageError("missing_field", "track 需要 event 名称 / track needs an event name")
        if len(event) > MAX_EVENT_NAME_LENGTH:
            raise MessageError("invalid_field", "event 名称过长 / event name is too long")
    elif mtype == "group" and not item.get("groupId"):
        raise MessageError("missing_field", "group 需要 groupId / group needs a groupId")
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise MessageError("invalid_field", "name 必须是字符串 / name must be a string")


def _check_shapes(item: dict[str, Any]) -> None:
    for key in _OBJECT_FIELDS:
        value = item.get(key)
        if value is not None and not isinstance(value, dict):
            raise MessageError("invalid_field", f"{key} 必须是对象 / {key} must be an object")


def _apply_envelope(item: dict[str, Any], envelope: Envelope) -> None:
    if envelope.sent_at and "sentAt" not in item:
        item["sentAt"] = envelope.sent_at
    if envelope.context:
        item["context"] = {**envelope.context, **(item.get("context") or {})}
    if envelope.integrations and "integrations" not in item:
        item["integrations"] = envelope.integrations


def _settle_times(item: dict[str, Any], received_at: datetime) -> None:
    client = _time(item, "timestamp") or _time(item, "originalTimestamp")
    sent_value = item.get("sentAt")
    # Only strings reach the cache (a list or an object is unhashable, and invalid anyway).
    settled = _settled_sent_at(sent_value) if isinstance(sent_value, str) else None
    if sent_value is not None and settled is None:
        raise MessageError(
            "invalid_timestamp",
            f"sentAt 不是 ISO-8601 时间 / sentAt is not an ISO-8601 date-time: {sent_value!r}",
        )
    if client is None:
        item["timestamp"] = _iso(received_at)
        item.pop("originalTimestamp", None)
    else:
        original = client.isoformat()
        item["originalTimestamp"] = original
        if settled is None:
            item["timestamp"] = original
        else:
            try:
                item["timestamp"] = (received_at - (settled[0] - client)).isoformat()
            except OverflowError:
                # A skew of thousands of years is a broken client clock, not a real skew: keep
                # the client's own time (it will be flagged as implausible downstream).
                item["timestamp"] = original
    if settled is not None:
        item["sentAt"] = settled[1]


# Every message of a batch shares its sentAt and receipt time: parse and format them once.
@lru_cache(maxsize=256)
def _settled_sent_at(value: str) -> tuple[datetime, str] | None:
    parsed = parse_time(value)
    return None if parsed is None else (parsed, parsed.isoformat())


@lru_cache(maxsize=64)
def _iso(value: datetime) -> str:
    return value.isoformat()


def _time(item: dict[str, Any], key: str) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise MessageError(
            "invalid_timestamp", f"{key} 不是 ISO-8601 时间 / {key} is not an ISO-8601 date-time: {value!r}"
        )
    return parsed


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO-8601 string as an aware UTC datetime (naive means UTC); None if it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
