"""Pieces every HTTP-speaking adapter needs the same way: reading Retry-After, and sending a
batch one message at a time until the provider turns out to be unreachable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from quanyu.channels.base import Message, SendResult


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def send_each(
    messages: Sequence[Message],
    send_one: Callable[[Message], SendResult],
    unreachable: Callable[[SendResult], bool],
    rest_code: str,
) -> list[SendResult]:
    """Send one by one; once a result shows the provider unreachable (refused, hanging), the
    messages not yet tried come back `retry` with `rest_code` instead of each waiting out the
    same failure. They were never sent, so trying them later is safe."""
    results: list[SendResult] = []
    for i, message in enumerate(messages):
        result = send_one(message)
        results.append(result)
        if unreachable(result):
            results.extend(SendResult(m.key, "retry", error_code=rest_code, error=result.error)
                           for m in messages[i + 1 :])  # fmt: skip
            break
    return results
