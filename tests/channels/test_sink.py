"""The local JSON-lines sink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelConfigError, Message
from quanyu.channels.sink import SinkAdapter, read_sink


def _message(i: int) -> Message:
    return Message(
        key=f"k{i}",
        workspace_id="ws",
        profile_id=f"p{i}",
        channel="sink",
        to=f"user{i}@example.com",
        content={"subject": "你好", "n": i},
    )


def test_writes_one_line_per_message_and_fsyncs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    path = tmp_path / "out" / "sink.jsonl"
    adapter = registry.build("sink", {"path": str(path)}, {})
    assert (adapter.type, adapter.channel, adapter.idempotent) == ("sink", "sink", False)
    results = adapter.send([_message(i) for i in range(3)])
    assert [(r.key, r.outcome) for r in results] == [("k0", "sent"), ("k1", "sent"), ("k2", "sent")]
    assert len(calls) == 1
    adapter.send([_message(3)])
    assert len(calls) == 2
    rows = read_sink(path)
    assert [r["key"] for r in rows] == ["k0", "k1", "k2", "k3"]
    assert set(rows[0]) == {"key", "workspace_id", "profile_id", "channel", "to", "content", "at"}
    assert rows[0]["content"] == {"subject": "你好", "n": 0}
    assert rows[0]["to"] == "user0@example.com"
    assert rows[0]["at"].endswith("+00:00")


def test_repeat_is_a_second_line(tmp_path: Path) -> None:
    adapter = SinkAdapter(tmp_path / "s.jsonl")
    adapter.send([_message(1)])
    adapter.send([_message(1)])
    assert [r["key"] for r in read_sink(tmp_path / "s.jsonl")] == ["k1", "k1"]


def test_read_sink_missing_and_torn_last_line(tmp_path: Path) -> None:
    assert read_sink(tmp_path / "none.jsonl") == []
    path = tmp_path / "s.jsonl"
    SinkAdapter(path).send([_message(1)])
    with open(path, "ab") as f:
        f.write(b'{"key": "k2", "wor')
    assert [r["key"] for r in read_sink(path)] == ["k1"]


def test_unwritable_path_is_retry(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    results = SinkAdapter(blocker / "sub" / "s.jsonl").send([_message(1)])
    assert results[0].outcome == "retry"
    assert "sink file" in (results[0].error or "")


def test_settings_need_path() -> None:
    with pytest.raises(ChannelConfigError, match="path"):
        registry.build("sink", {}, {})


def test_empty_batch(tmp_path: Path) -> None:
    assert SinkAdapter(tmp_path / "s.jsonl").send([]) == []
    assert not (tmp_path / "s.jsonl").exists()
