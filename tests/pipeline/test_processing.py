"""Processing: normalisation into warehouse columns, dedupe, exactly-once recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from quanyu.collect.messages import Envelope
from quanyu.collect.sources import SourceInfo
from quanyu.platform import Platform
from quanyu.warehouse.browser import list_events
from quanyu.warehouse.events import EventFilter
from testkit import Tenant, new_tenant

GOLDEN = Path(__file__).parent.parent / "golden"


def send(platform: Platform, tenant: Tenant, *messages: dict[str, Any], sent_at: str | None = None) -> None:
    source = platform.sources.get(tenant.workspace_id, tenant.source_id)
    send_as(platform, source, *messages, sent_at=sent_at)


def send_as(
    platform: Platform, source: SourceInfo, *messages: dict[str, Any], sent_at: str | None = None
) -> None:
    future, receipt = platform.intake.accept(source, list(messages), None, Envelope(sent_at=sent_at))
    future.result()
    assert not receipt.quarantined, receipt.quarantined


def stored(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    return list_events(platform.warehouse, EventFilter(tenant.workspace_id), None, 1000)["items"]  # type: ignore[no-any-return]


def test_order_event_is_promoted_to_columns(platform: Platform, tenant: Tenant) -> None:
    send(platform, tenant, {
        "type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1",
        "timestamp": "2026-06-18T20:00:00+08:00",
        "properties": {"order_id": 1234567890123, "total": 256.5, "store_id": "SH001", "guide_id": "G-1",
                       "products": [{"sku": "LJ-01", "name": "明前龙井", "price": 128.25, "quantity": 2}]},
        "context": {"campaign": {"name": "618", "source": "douyin", "medium": "feed"}, "ip": "203.0.113.9"},
    })  # fmt: skip
    assert platform.pipeline.drain().inserted == 1
    [row] = stored(platform, tenant)
    assert row["timestamp"] == "2026-06-18T12:00:00+00:00"
    assert (row["order_id"], row["amount"], row["currency"]) == ("1234567890123", 256.5, "CNY")
    assert row["line_items"] == [{"sku": "LJ-01", "name": "明前龙井", "price": 128.25, "quantity": 2}]
    assert (row["store_id"], row["guide_id"], row["utm_campaign"], row["utm_source"]) == (
        "SH001",
        "G-1",
        "618",
        "douyin",
    )
    assert (row["channel"], row["domain"], row["presence"]) == ("website", "private", "online")
    assert row["properties"]["products"][0]["name"] == "明前龙井"


def test_source_type_sets_channel_and_context_overrides_it(platform: Platform, tenant: Tenant) -> None:
    pos = platform.sources.create(tenant.workspace_id, "门店 POS", "pos").source
    send_as(platform, pos, {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "a"})
    send_as(platform, pos, {"type": "track", "userId": "u", "event": "Coupon Applied", "messageId": "b",
                            "context": {"quanyu": {"channel": "mini_program", "presence": "online"}},
                            "properties": {"utm_source": "qr", "currency": "usd", "revenue": 3}})  # fmt: skip
    platform.pipeline.drain()
    rows = {r["message_id"]: r for r in stored(platform, tenant)}
    assert (rows["a"]["channel"], rows["a"]["presence"], rows["a"]["source_type"]) == (
        "pos",
        "offline",
        "pos",
    )
    assert (rows["b"]["channel"], rows["b"]["presence"], rows["b"]["domain"]) == (
        "mini_program",
        "online",
        "private",
    )
    assert (rows["b"]["utm_source"], rows["b"]["currency"], rows["b"]["amount"]) == ("qr", "USD", 3.0)


def test_implausible_timestamps_are_stored_and_flagged(platform: Platform, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    send(platform, tenant,
         {"type": "identify", "userId": "f", "messageId": "future", "timestamp": (now + timedelta(days=30)).isoformat()},
         {"type": "identify", "userId": "p", "messageId": "past", "timestamp": "1999-01-01T00:00:00Z"},
         {"type": "identify", "userId": "n", "messageId": "normal"})  # fmt: skip
    platform.pipeline.drain()
    flags = {r["message_id"]: r["timestamp_flag"] for r in stored(platform, tenant)}
    assert flags == {"future": "future", "past": "past", "normal": None}


def test_resends_are_stored_once_wherever_they_land(platform: Platform, tenant: Tenant) -> None:
    msg = {"type": "track", "userId": "u", "event": "E", "messageId": "same"}
    send(platform, tenant, dict(msg))
    send(platform, tenant, dict(msg))  # same micro-batch as the original
    first = platform.pipeline.drain()
    send(platform, tenant, dict(msg))  # after the original was processed
    second = platform.pipeline.drain()
    assert (first.inserted, first.duplicates, second.inserted, second.duplicates) == (1, 1, 0, 1)
    assert len(stored(platform, tenant)) == 1
    status = platform.queue.counters()[tenant.workspace_id]
    assert (status.processed, status.duplicates) == (1, 2)


def test_same_message_id_in_two_workspaces_is_two_events(platform: Platform, tenant: Tenant) -> None:
    other = new_tenant(platform, name="其他 Other")
    send(platform, tenant, {"type": "identify", "userId": "u", "messageId": "shared"})
    send(platform, other, {"type": "identify", "userId": "u", "messageId": "shared"})
    assert platform.pipeline.drain().inserted == 2


def test_a_batch_the_warehouse_already_has_is_not_applied_twice(platform: Platform, tenant: Tenant) -> None:
    """A crash after the warehouse commit but before the queue forgot the batch."""
    send(platform, tenant, {"type": "identify", "userId": "u", "messageId": "once"})
    pipeline = platform.pipeline
    work = pipeline._prepare(None)
    assert work is not None
    original_complete = platform.queue.complete
    platform.queue.complete = lambda *a, **k: None  # type: ignore[method-assign]
    pipeline._apply(work)  # warehouse has it, queue still lists it
    platform.queue.complete = original_complete  # type: ignore[method-assign]
    result = pipeline.drain()
    assert (result.recovered_batches, result.inserted) == (1, 0)
    assert len(stored(platform, tenant)) == 1
    assert platform.queue.backlog() == {}


def test_normalise_sql_matches_golden_file() -> None:
    from ibis.backends.sql.compilers.duckdb import compiler

    from quanyu.pipeline.normalise import new_events

    since = datetime(2026, 1, 1, tzinfo=UTC)
    sql = compiler.to_sqlglot(new_events(timedelta(hours=24), timedelta(days=1825), since)).sql(
        "duckdb", pretty=True
    )
    golden = GOLDEN / "normalise_duckdb.sql"
    if not golden.exists():
        golden.write_text(sql + "\n")
    assert sql + "\n" == golden.read_text()
