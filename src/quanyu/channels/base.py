"""The one adapter protocol every channel speaks: journeys, connectors and plugins send through it.

A send is a batch of `Message`s, each with an idempotency key (`enrollment:node:attempt` for a
journey step). The adapter answers one `SendResult` per message, in any order, keyed by `key`.
Its outcome decides what the outbox does next:

- `sent`: the provider accepted the message (`provider_id` is its id, for receipts);
- `failed`: the provider refused it for good (bad number, template mismatch, blocked): never retried;
- `retry`: the provider certainly did **not** take the message (connection refused before the
  request was written, HTTP 429 or a documented throttling code): safe to try again later;
- `unknown`: the request may or may not have reached the provider (a timeout after writing,
  a dropped connection, a 5xx). Only an adapter whose provider deduplicates by the key
  (`idempotent = True`, e.g. WeChat's `client_msg_id`) is retried after that; any other stays
  `unknown` and is never sent again, so nobody gets a message twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Outcome = Literal["sent", "failed", "retry", "unknown"]
Purpose = Literal["marketing", "transactional"]

# The channels a journey can send on. An adapter type (smtp, aliyun_sms, ...) serves one of them.
CHANNELS = ("email", "sms", "wechat_oa", "mini_program", "wecom", "webhook", "sink")


@dataclass(frozen=True)
class Message:
    """One rendered message for one person on one channel."""

    key: str  # idempotency key; stable across retries of the same attempt
    workspace_id: str
    profile_id: str
    channel: str
    to: str  # the address: e-mail, phone, openid, external_userid, URL
    content: Mapping[str, Any]  # rendered, channel-shaped (see each adapter's docstring)
    purpose: Purpose = "marketing"
    meta: Mapping[str, Any] = field(default_factory=dict)  # journey_id, node, unsubscribe_url, ...


@dataclass(frozen=True)
class SendResult:
    key: str
    outcome: Outcome
    provider_id: str | None = None
    error_code: str | None = None  # the provider's own code (isv.MOBILE_NUMBER_ILLEGAL, 40001, 550)
    error: str | None = None  # a readable reason
    retry_after: float | None = None  # seconds, when the provider said how long to wait


@runtime_checkable
class ChannelAdapter(Protocol):
    type: str  # adapter type: smtp, aliyun_sms, tencent_sms, http_sms, wechat_template, ...
    channel: str  # one of CHANNELS
    idempotent: bool  # the provider drops a repeat of the same key: `unknown` may be retried

    def send(self, messages: Sequence[Message]) -> list[SendResult]: ...

    def close(self) -> None: ...


class ChannelConfigError(ValueError):
    """A channel's settings are wrong (missing key, bad URL); the message says which and why."""


# Adapter type -> factory(settings, secrets). Built-ins register on import of `quanyu.channels`;
# plugins register through the `quanyu.channels` entry-point group (`registry.load_plugins`).
Factory = Callable[[Mapping[str, Any], Mapping[str, str]], ChannelAdapter]
