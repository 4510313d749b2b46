"""The local sink: every message becomes one JSON line in a file. Benchmarks and the demo send here.

Settings: `path` (the JSON-lines file; its directory is created). Each line is
`{"key", "workspace_id", "profile_id", "channel", "to", "content", "at"}` with `at` the UTC send time
(ISO 8601). A batch is written with one `write` on an append-mode file, then flushed and fsynced
once, so `sent` means the lines are on disk. Not idempotent: a repeated key is a second line.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from quanyu.channels.base import ChannelConfigError, Message, SendResult
from quanyu.channels.registry import AdapterType, register

# One lock per file, so adapters built for the same path in one process never interleave lines.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.Lock())


class SinkAdapter:
    type = "sink"
    channel = "sink"
    idempotent = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        if not messages:
            return []
        at = datetime.now(UTC).isoformat()
        try:
            data = b"".join(
                orjson.dumps(
                    {
                        "key": m.key,
                        "workspace_id": m.workspace_id,
                        "profile_id": m.profile_id,
                        "channel": m.channel,
                        "to": m.to,
                        "content": m.content,
                        "at": at,
                    },
                    option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS,
                )
                for m in messages
            )
        except TypeError as exc:  # content that is not JSON: no retry will change it
            return [
                SendResult(
                    m.key,
                    "failed",
                    error_code="not_json",
                    error=f"内容无法序列化 / content is not JSON: {exc}",
                )
                for m in messages
            ]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "ab")  # noqa: SIM115 - closed below, after the fsync
        except OSError as exc:
            # Nothing was written: safe to try again (disk full, permissions fixed, volume remounted).
            return [
                SendResult(m.key, "retry", error=f"无法打开输出文件 / cannot open the sink file: {exc}")
                for m in messages
            ]
        try:
            with _lock_for(self.path), handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            # Some lines may have reached the file: resending could duplicate them.
            return [
                SendResult(m.key, "unknown", error=f"写入输出文件失败 / writing the sink file failed: {exc}")
                for m in messages
            ]
        return [SendResult(m.key, "sent", provider_id=m.key) for m in messages]

    def close(self) -> None:
        pass


def read_sink(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line the sink wrote, oldest first; [] for a missing file. A torn last line (a crash in
    the middle of a write) is skipped."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            if i == len(lines) - 1:  # only the unterminated last line may be torn
                break
            raise
    return out


def _factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> SinkAdapter:
    path = settings.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ChannelConfigError("输出渠道缺少 path 设置 / the sink channel needs a `path` setting")
    return SinkAdapter(path)


register(AdapterType(type="sink", channel="sink", factory=_factory, label="本地文件输出 / Local file sink"))

# A sink standing in for a real provider on one channel ("sink_sms", "sink_email", …): the demo
# and tests run journeys on those channels end to end, every rule applied, without an SMS or
# WeChat account. Its lines say which channel they were for; nothing leaves the machine.
for _channel in ("email", "sms", "wechat_oa", "mini_program", "wecom"):
    register(AdapterType(type=f"sink_{_channel}", channel=_channel, factory=_factory,
                         label=f"本地文件代替 {_channel} / Local file standing in for {_channel}"))  # fmt: skip
