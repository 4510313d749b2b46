"""Contract of the operational store's repositories: the same behaviour on SQLite and PostgreSQL.

Every test takes the migrated `engine` (tests/store/conftest.py), built from the `database_url`
fixture, so each one runs once per backend.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from storekit import (
    drop_failing_trigger,
    finish,
    install_failing_trigger,
    release,
    spawn_python,
    wait_ready,
)

from quanyu.collect.committer import GroupCommitter, Submission
from quanyu.collect.quarantine import QUARANTINED, REPLAYED, Quarantine, QuarantineEntry, Reject
from quanyu.collect.queue import Backlog, ClaimedBatch, IngestQueue, QueuedBatch, Tally
from quanyu.collect.source_types import SOURCE_TYPES
from quanyu.collect.sources import SourceInfo, Sources
from quanyu.errors import InvalidInput, NotFound, Overloaded, StorageUnavailable, Unauthorized
from quanyu.org.vault import Vault
from quanyu.org.workspaces import Workspaces
from quanyu.store import make_engine
from quanyu.store.models import ApiToken, IngestBatch, QuarantinedEvent, Source
from quanyu.store.times import as_utc

SHANGHAI = timezone(timedelta(hours=8))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def batch(
    payload: bytes, workspace_id: str = "ws_a", events: int = 1, source_id: str = "src_a"
) -> QueuedBatch:
    return QueuedBatch(workspace_id, source_id, datetime.now(UTC), events, payload)


def reject(payload: str, workspace_id: str = "ws_a", code: str = "invalid_message") -> Reject:
    return Reject(
        workspace_id, "src_a", datetime.now(UTC), code, "缺少 messageId / missing messageId", payload
    )


def stored_payloads(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return [
            bytes(p) for p in conn.execute(select(IngestBatch.payload).order_by(IngestBatch.id)).scalars()
        ]


def quarantine_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(QuarantinedEvent.__table__).order_by(QuarantinedEvent.id)).all())


def add_rejects(engine: Engine, rejects: list[Reject]) -> None:
    with engine.begin() as conn:
        Quarantine(engine).add_in(conn, rejects)


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value


# --------------------------------------------------------------------------------------------
# Workspaces and management tokens


def test_workspaces_create_get_and_list(engine: Engine) -> None:
    workspaces = Workspaces(engine)
    a = workspaces.create("品牌甲 Brand A")
    b = workspaces.create("Brand B", timezone="Europe/Paris")
    assert a.id.startswith("ws_") and a.id != b.id
    assert a.timezone == "Asia/Shanghai"
    assert workspaces.get(a.id) == a
    assert workspaces.get(b.id).timezone == "Europe/Paris"
    assert [w.id for w in workspaces.all()] == [a.id, b.id]
    with pytest.raises(NotFound):
        workspaces.get("ws_missing")


def test_tokens_verify_and_refuse_invalid_or_revoked(engine: Engine) -> None:
    workspaces = Workspaces(engine)
    ws = workspaces.create("tokens")
    first = workspaces.issue_token(ws.id)
    second = workspaces.issue_token(ws.id, name="ci", scope="admin")
    assert first != second and first.startswith("qy_")

    identity = workspaces.verify_token(first)
    assert (identity.workspace_id, identity.scope) == (ws.id, "admin")
    assert workspaces.verify_token(second).token_id != identity.token_id

    for bad in ("", "qy_", first + "x", first[:-1], first.upper(), " " + first):
        with pytest.raises(Unauthorized) as info:
            workspaces.verify_token(bad)
        assert info.value.code == "invalid_token"

    with engine.begin() as conn:
        conn.execute(
            update(ApiToken).where(ApiToken.id == identity.token_id).values(revoked_at=datetime.now(UTC))
        )
    with pytest.raises(Unauthorized):
        workspaces.verify_token(first)
    assert workspaces.verify_token(second).workspace_id == ws.id


def test_tokens_are_stored_only_as_sha256(engine: Engine) -> None:
    workspaces = Workspaces(engine)
    ws = workspaces.create("hashing")
    token = workspaces.issue_token(ws.id)
    with engine.connect() as conn:
        rows = conn.execute(select(ApiToken.__table__)).all()
    assert len(rows) == 1
    assert rows[0].token_hash == sha256(token)
    assert all(token not in str(value) for value in rows[0])


def test_token_for_an_unknown_workspace_is_refused(engine: Engine) -> None:
    with pytest.raises(IntegrityError):
        Workspaces(engine).issue_token("ws_does_not_exist")


# --------------------------------------------------------------------------------------------
# Sources


@pytest.fixture
def vault() -> Vault:
    return Vault(Fernet.generate_key())


def test_every_source_type_gets_its_channel_defaults(engine: Engine, vault: Vault) -> None:
    ws = Workspaces(engine).create("sources")
    sources = Sources(engine, vault)
    created = {name: sources.create(ws.id, f"{name} 来源", name) for name in SOURCE_TYPES}
    for name, stype in SOURCE_TYPES.items():
        info = created[name].source
        expected = (name, stype.channel, stype.domain, stype.presence)
        assert (info.type, info.channel, info.domain, info.presence) == expected
        again = sources.get(ws.id, info.id)
        assert (again.type, again.channel, again.domain, again.presence) == expected
        assert again.name == f"{name} 来源"
        assert again.created_at is not None
    assert [s.type for s in sources.list(ws.id)] == list(SOURCE_TYPES)
    with engine.connect() as conn:
        rows = {r.type: r for r in conn.execute(select(Source.__table__))}
    assert {t: (r.channel, r.domain, r.presence) for t, r in rows.items()} == {
        t: (s.channel, s.domain, s.presence) for t, s in SOURCE_TYPES.items()
    }


def test_source_overrides_and_invalid_input(engine: Engine, vault: Vault) -> None:
    ws = Workspaces(engine).create("overrides")
    sources = Sources(engine, vault)
    moved = sources.create(ws.id, "Popup store", "pos", domain="public", presence="offline").source
    assert (moved.channel, moved.domain, moved.presence) == ("pos", "public", "offline")
    with pytest.raises(InvalidInput) as info:
        sources.create(ws.id, "fax", "fax_machine")
    assert info.value.code == "unknown_source_type"
    with pytest.raises(InvalidInput):
        sources.create(ws.id, "   ", "website")
    with pytest.raises(InvalidInput):
        sources.create(ws.id, "site", "website", domain="semi-public")
    with pytest.raises(InvalidInput):
        sources.create(ws.id, "site", "website", presence="sometimes")
    assert [s.id for s in sources.list(ws.id)] == [moved.id]


def test_write_key_is_stored_hashed_and_resolves(engine: Engine, vault: Vault) -> None:
    workspaces = Workspaces(engine)
    ws, other = workspaces.create("keys"), workspaces.create("other")
    sources = Sources(engine, vault)
    created = sources.create(ws.id, "官网", "website")
    theirs = sources.create(other.id, "官网", "website")
    key = created.write_key
    assert key.startswith("wk_") and key != theirs.write_key
    assert created.source.write_key_hint == f"wk_…{key[-4:]}"

    with engine.connect() as conn:
        row = conn.execute(select(Source.__table__).where(Source.id == created.source.id)).one()
    assert row.write_key_hash == sha256(key)
    assert all(key not in str(value) for value in row)

    found = sources.by_write_key(key)
    assert found is not None and found.id == created.source.id and found.workspace_id == ws.id
    other_found = sources.by_write_key(theirs.write_key)
    assert other_found is not None and other_found.workspace_id == other.id
    assert sources.by_write_key("wk_" + "x" * 40) is None
    assert sources.by_write_key(key + " ") is None

    with pytest.raises(NotFound):
        sources.get(other.id, created.source.id)  # another workspace cannot address it
    assert [s.id for s in sources.list(other.id)] == [theirs.source.id]
    # cast: mypy reads `list[...]` in Sources.all's annotation as the Sources.list method
    everything = cast("list[SourceInfo]", sources.all())
    assert {s.id for s in everything} == {created.source.id, theirs.source.id}

    with engine.begin() as conn:
        conn.execute(
            update(Source).where(Source.id == created.source.id).values(disabled_at=datetime.now(UTC))
        )
    assert sources.by_write_key(key) is None


def test_secret_settings_are_encrypted_and_recoverable(engine: Engine, vault: Vault) -> None:
    ws = Workspaces(engine).create("secrets")
    sources = Sources(engine, vault)
    secrets = {
        "token": "oa-验证令牌-123",
        "AppSecret": "3f9c2b7a1e",
        "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "db_password": "p@ss word",
        "api_key": "ak_live_987",
        "private_key": "-----BEGIN KEY-----",
    }
    plain = {"app_id": "wx1234567890", "shop": "天猫旗舰店", "retries": 3, "nested": {"a": [1, "二"]}}
    created = sources.create(ws.id, "公众号", "wechat_oa", {**plain, **secrets}).source

    assert created.settings == plain
    assert created.secret_settings == sorted(secrets)
    again = sources.get(ws.id, created.id)
    assert again.settings == plain
    assert again.secret_settings == sorted(secrets)
    assert sources.secret_settings(ws.id, created.id) == secrets
    assert sources.secret_settings("ws_other", created.id) == {}

    with engine.connect() as conn:
        row = conn.execute(select(Source.__table__).where(Source.id == created.id)).one()
    assert set(row.settings) == set(plain)
    assert isinstance(row.secrets, bytes) and row.secrets
    sealed = bytes(row.secrets)
    for name, value in secrets.items():
        assert value.encode() not in sealed
        assert name.encode() not in sealed
        assert all(value not in str(column) for column in row)
    assert Vault(Fernet.generate_key()).open(None) == {}

    bare = sources.create(ws.id, "site", "website", {"domain": "example.cn"}).source
    assert bare.secret_settings == []
    assert sources.secret_settings(ws.id, bare.id) == {}
    with engine.connect() as conn:
        assert conn.execute(select(Source.secrets).where(Source.id == bare.id)).scalar_one() is None


def test_non_string_secret_values_come_back_as_strings(engine: Engine, vault: Vault) -> None:
    ws = Workspaces(engine).create("secrets")
    sources = Sources(engine, vault)
    created = sources.create(ws.id, "ads", "ads", {"api_key": 12345}).source
    assert sources.secret_settings(ws.id, created.id) == {"api_key": "12345"}


# --------------------------------------------------------------------------------------------
# Ingestion queue


def test_append_keeps_order_and_claim_returns_oldest_first(engine: Engine) -> None:
    queue = IngestQueue(engine)
    assert queue.claim(100) == []
    queue.append([batch(b"[1]")])
    queue.append([batch(b"[2]"), batch(b"[3]", "ws_b"), batch(b"[4]")])
    queue.append([])
    queue.append([batch(b"[5]")])
    claimed = queue.claim(100)
    assert [c.payload for c in claimed] == [b"[1]", b"[2]", b"[3]", b"[4]", b"[5]"]
    ids = [c.id for c in claimed]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [c.workspace_id for c in claimed] == ["ws_a", "ws_a", "ws_b", "ws_a", "ws_a"]
    assert queue.claim(100) == claimed  # claiming neither locks nor deletes


def test_claim_respects_max_events_after_id_and_max_batches(engine: Engine) -> None:
    queue = IngestQueue(engine)
    counts = [3, 4, 5, 100, 1]
    queue.append([batch(f"[{n}]".encode(), events=n) for n in counts])
    ids = [c.id for c in queue.claim(1_000)]

    def claim(max_events: int, after_id: int | None = None, **kw: int) -> list[int]:
        return [c.event_count for c in queue.claim(max_events, after_id, **kw)]

    assert claim(7) == [3, 4]
    assert claim(11) == [3, 4]  # 3+4+5 > 11: never split a batch, never exceed
    assert claim(12) == [3, 4, 5]
    assert claim(6) == [3]
    assert claim(1) == [3]  # always at least one batch, even larger than the limit
    assert claim(0) == [3]
    assert claim(1_000, after_id=ids[1]) == [5, 100, 1]
    assert claim(5, after_id=ids[2]) == [100]
    assert claim(1_000, after_id=ids[-1]) == []
    assert claim(1_000, max_batches=2) == [3, 4]
    assert [c.id for c in queue.claim(1_000, ids[0])] == ids[1:]
    # Payloads are "[3]", "[4]", "[5]", "[100]", "[1]": 3, 3, 3, 5, 3 bytes.
    assert claim(1_000, max_bytes=9) == [3, 4, 5]
    assert claim(1_000, max_bytes=8) == [3, 4]
    assert claim(1_000, max_bytes=1) == [3]  # at least one batch, whatever its size


def test_complete_deletes_and_counts_per_workspace(engine: Engine) -> None:
    queue = IngestQueue(engine)
    queue.append(
        [batch(b"a", "ws_a", 5), batch(b"b", "ws_a", 3), batch(b"c", "ws_b", 2), batch(b"d", "ws_b", 7)]
    )
    assert queue.backlog() == {"ws_a": Backlog(8, 2), "ws_b": Backlog(9, 2)}
    ids = [c.id for c in queue.claim(1_000)]
    before = datetime.now(UTC)

    queue.complete(ids[:2], {"ws_a": Tally(processed=7, duplicates=1, batches=2)})
    assert stored_payloads(engine) == [b"c", b"d"]
    assert queue.backlog() == {"ws_b": Backlog(9, 2)}

    queue.complete(ids[2:3], {"ws_a": Tally(0, 0, 0), "ws_b": Tally(2, 0, 1)})
    queue.complete(ids[3:], {"ws_b": Tally(6, 1, 1), "ws_c": Tally(1, 1, 1)})
    queue.complete(ids, {"ws_b": Tally(0, 0, 0)})  # already gone: deleting again is harmless
    assert stored_payloads(engine) == []
    assert queue.backlog() == {}

    counters = queue.counters()
    totals = {ws: (c.processed, c.duplicates, c.batches) for ws, c in counters.items()}
    assert totals == {"ws_a": (7, 1, 2), "ws_b": (8, 1, 2), "ws_c": (1, 1, 1)}
    for counter in counters.values():
        last = counter.last_processed_at
        assert last is not None
        assert before - timedelta(seconds=1) <= as_utc(last) <= datetime.now(UTC) + timedelta(seconds=1)


def test_complete_is_atomic(engine: Engine) -> None:
    queue = IngestQueue(engine)
    queue.append([batch(b"one"), batch(b"two")])
    ids = [c.id for c in queue.claim(1_000)]
    queue.complete(ids[:0], {"ws_a": Tally(1, 0, 0)})
    install_failing_trigger(engine, "pipeline_counters", "UPDATE")
    with pytest.raises(Exception, match="injected failure"):
        queue.complete(ids, {"ws_a": Tally(2, 0, 2)})
    assert stored_payloads(engine) == [b"one", b"two"]  # the delete was rolled back with the counter
    assert queue.counters()["ws_a"].processed == 1
    drop_failing_trigger(engine, "pipeline_counters", "UPDATE")
    queue.complete(ids, {"ws_a": Tally(2, 0, 2)})
    assert stored_payloads(engine) == []
    assert queue.counters()["ws_a"].processed == 3


PAYLOADS = [
    '[{"event":"下单 Order Completed","properties":{"品牌":"全域","金额":199.0}}]'.encode(),
    "🎉 emoji, \u2028 line separator, \x00 nul, \\u0000 escaped".encode(),
    bytes(range(256)),
    b"\x00" * 16 + b"\xff\xfe\xfd",
    b"",
    os.urandom(1 << 20),
]


def test_payload_bytes_round_trip_exactly(engine: Engine) -> None:
    queue = IngestQueue(engine)
    queue.append([batch(p) for p in PAYLOADS])
    claimed = queue.claim(10_000)
    assert [c.payload for c in claimed] == PAYLOADS
    assert all(type(c.payload) is bytes for c in claimed)


def test_received_at_comes_back_aware_utc_and_exact(engine: Engine) -> None:
    written = datetime(2025, 11, 11, 0, 0, 0, 123456, tzinfo=UTC)
    queue = IngestQueue(engine)
    queue.append([QueuedBatch("ws_a", "src_a", written, 1, b"[]")])
    (claimed,) = queue.claim(10)
    assert claimed.received_at == written
    assert_utc(claimed.received_at)
    assert claimed == ClaimedBatch(claimed.id, "ws_a", "src_a", written, 1, b"[]")

    add_rejects(engine, [Reject("ws_a", "src_a", written, "invalid_message", "bad", "{}")])
    (entry,) = Quarantine(engine).list("ws_a")
    assert entry.received_at == written
    assert_utc(entry.received_at)


def test_received_at_with_a_non_utc_offset_keeps_its_instant(
    engine: Engine, backend: str, request: pytest.FixtureRequest
) -> None:
    written = datetime(2025, 11, 11, 8, 0, tzinfo=SHANGHAI)
    queue = IngestQueue(engine)
    queue.append([QueuedBatch("ws_a", "src_a", written, 1, b"[]")])
    add_rejects(engine, [Reject("ws_a", "src_a", written, "invalid_message", "bad", "{}")])
    assert queue.claim(10)[0].received_at == written
    assert Quarantine(engine).list("ws_a")[0].received_at == written


def test_timestamps_are_utc_whatever_the_server_session_timezone(
    engine: Engine, backend: str, database_url: str, request: pytest.FixtureRequest
) -> None:
    """A PostgreSQL initialised on a China server defaults to TimeZone 'Asia/Shanghai'."""
    if backend == "postgresql":
        database = make_url(database_url).database
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET timezone TO 'Asia/Shanghai'")
        engine.dispose()
    written = datetime.now(UTC)
    queue = IngestQueue(engine)
    queue.append([batch(b"[]")])
    add_rejects(engine, [reject("{}")])
    quarantine = Quarantine(engine)
    replay_ids = [e.id for e in quarantine.list("ws_a")]
    with engine.begin() as conn:
        quarantine.mark_replayed_in(conn, replay_ids)
    (claimed,) = queue.claim(10)
    (entry,) = quarantine.list("ws_a", status=REPLAYED)
    assert abs(claimed.received_at - written) < timedelta(seconds=5)
    assert entry.replayed_at is not None
    for value in (claimed.received_at, entry.received_at, entry.replayed_at):
        assert_utc(value)
    assert entry.public()["received_at"].endswith("+00:00")


def test_reads_do_not_wait_for_an_open_write_transaction(
    engine: Engine, backend: str, database_url: str, request: pytest.FixtureRequest
) -> None:
    """WAL lets SQLite readers run beside the one writer; PostgreSQL readers never wait for writers."""
    workspaces = Workspaces(engine)
    ws = workspaces.create("readers")
    token = workspaces.issue_token(ws.id)
    IngestQueue(engine).append([batch(b"[committed]")])
    reader = make_engine(database_url)
    if backend == "sqlite":  # fail after 0.3 s instead of the configured 30 s busy timeout
        event.listen(
            reader, "connect", lambda dbapi_conn, _rec: dbapi_conn.execute("PRAGMA busy_timeout=300")
        )
    try:
        with engine.begin() as writer:
            IngestQueue(engine).append_in(writer, [batch(b"[uncommitted]")])
            started = time.monotonic()
            assert Workspaces(reader).verify_token(token).workspace_id == ws.id
            assert [c.payload for c in IngestQueue(reader).claim(100)] == [b"[committed]"]
            assert IngestQueue(reader).backlog() == {"ws_a": Backlog(1, 1)}
            assert time.monotonic() - started < 5
    finally:
        reader.dispose()


# --------------------------------------------------------------------------------------------
# Quarantine


def test_quarantine_list_paging_get_many_and_replay_are_per_workspace(engine: Engine) -> None:
    quarantine = Quarantine(engine)
    for i in range(5):
        add_rejects(engine, [reject(f'{{"n":{i},"名称":"无效"}}', "ws_a", code=f"code_{i}")])
    add_rejects(engine, [reject('{"theirs":1}', "ws_b"), reject('{"theirs":2}', "ws_b")])

    mine = quarantine.list("ws_a")
    assert [e.payload for e in mine] == [f'{{"n":{i},"名称":"无效"}}' for i in reversed(range(5))]
    assert [e.code for e in mine] == [f"code_{i}" for i in reversed(range(5))]
    assert [e.id for e in mine] == sorted((e.id for e in mine), reverse=True)
    assert {e.workspace_id for e in mine} == {"ws_a"}
    assert all(e.status == QUARANTINED and e.replayed_at is None for e in mine)
    assert mine[0].reason == "缺少 messageId / missing messageId"

    pages: list[QuarantineEntry] = []
    before: int | None = None
    while page := quarantine.list("ws_a", limit=2, before_id=before):
        assert len(page) <= 2
        pages.extend(page)
        before = page[-1].id
    assert pages == mine

    theirs = quarantine.list("ws_b")
    assert len(theirs) == 2 and {e.workspace_id for e in theirs} == {"ws_b"}
    assert quarantine.list("ws_nobody") == []

    all_ids = [e.id for e in mine] + [e.id for e in theirs]
    got = cast("list[QuarantineEntry]", quarantine.get_many("ws_a", all_ids))  # see Sources.all above
    assert [e.id for e in got] == sorted(e.id for e in mine)
    assert quarantine.get_many("ws_b", [e.id for e in mine]) == []
    assert quarantine.get_many("ws_a", []) == []

    replayed_ids = [mine[1].id, mine[3].id]
    with engine.begin() as conn:
        quarantine.mark_replayed_in(conn, replayed_ids)
        quarantine.mark_replayed_in(conn, [])
    assert [e.id for e in quarantine.list("ws_a")] == [mine[0].id, mine[2].id, mine[4].id]
    done = quarantine.list("ws_a", status=REPLAYED)
    assert [e.id for e in done] == sorted(replayed_ids, reverse=True)
    for entry in done:
        assert entry.status == REPLAYED and entry.replayed_at is not None
        assert_utc(entry.replayed_at)
        assert abs(datetime.now(UTC) - entry.replayed_at) < timedelta(minutes=1)
        assert entry.public()["replayed_at"] == entry.replayed_at.isoformat()
    assert [e.id for e in quarantine.list("ws_a", status=None)] == [e.id for e in mine]
    assert quarantine.count("ws_a") == 3
    assert quarantine.count("ws_a", REPLAYED) == 2
    assert quarantine.count("ws_b") == 2
    assert quarantine.count("ws_b", REPLAYED) == 0
    assert quarantine.list("ws_b", status=REPLAYED) == []


# --------------------------------------------------------------------------------------------
# Group commit


def make_committer(
    engine: Engine, max_inflight_bytes: int = 64 << 20, store: Engine | None = None
) -> GroupCommitter:
    """A committer writing through `engine`; the repositories may be bound to another engine."""
    store = store or engine
    return GroupCommitter(engine, IngestQueue(store), Quarantine(store), max_inflight_bytes)


class Gate:
    """An on_commit callback that holds the writer thread after its first commit until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, _batches: list[QueuedBatch]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.opened.wait(20)


def test_group_commit_from_many_threads_loses_and_doubles_nothing(engine: Engine) -> None:
    committer = make_committer(engine)
    committed: list[int] = []
    committer.on_commit.append(lambda batches: committed.append(len(batches)))
    committer.start()
    threads_n, per_thread = 8, 50
    futures: dict[int, list[Future[None]]] = {}
    start = threading.Barrier(threads_n)

    def produce(t: int) -> None:
        start.wait()
        futures[t] = [
            committer.submit(
                Submission(
                    [batch(f"t{t}-{i}".encode(), workspace_id=f"ws_{t % 2}")],
                    [reject(f'{{"t":{t},"i":{i}}}')] if i % 10 == 0 else [],
                )
            )
            for i in range(per_thread)
        ]

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(threads_n)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for fs in futures.values():
            for f in fs:
                assert f.result(timeout=60) is None
    finally:
        committer.stop()

    expected = [f"t{t}-{i}".encode() for t in range(threads_n) for i in range(per_thread)]
    payloads = stored_payloads(engine)
    assert Counter(payloads) == Counter(expected)
    for t in range(threads_n):  # each producer's submissions keep their order
        assert [p for p in payloads if p.startswith(f"t{t}-".encode())] == [
            f"t{t}-{i}".encode() for i in range(per_thread)
        ]
    assert len(quarantine_rows(engine)) == threads_n * per_thread // 10
    assert sum(committed) == threads_n * per_thread
    assert len(committed) < threads_n * per_thread  # requests really shared transactions
    assert IngestQueue(engine).backlog() == {"ws_0": Backlog(200, 200), "ws_1": Backlog(200, 200)}


def test_group_commit_without_writer_thread_commits_inline(engine: Engine) -> None:
    committer = make_committer(engine)
    future = committer.submit(Submission([batch(b"inline")], [reject("{}")]))
    assert future.done() and future.result() is None
    assert stored_payloads(engine) == [b"inline"]
    assert len(quarantine_rows(engine)) == 1


def test_failed_group_commit_fails_every_waiter_and_stores_nothing_of_the_group(engine: Engine) -> None:
    add_rejects(engine, [reject('{"old":1}')])
    (old,) = Quarantine(engine).list("ws_a")
    committer = make_committer(engine)
    gate = Gate()
    committer.on_commit.append(gate)
    committer.start()
    try:
        first = committer.submit(Submission([batch(b"before")], []))
        assert gate.entered.wait(20)
        # The writer is parked after committing `first`; everything below queues into one group,
        # whose last statement (marking `old` replayed) the database refuses.
        install_failing_trigger(engine, "quarantine", "UPDATE")
        group = [
            committer.submit(
                Submission([batch(f"g{i}".encode())], [reject(f'{{"g":{i}}}')], [old.id] * (i == 0))
            )
            for i in range(5)
        ]
        gate.opened.set()
        assert first.result(timeout=20) is None
        for future in group:
            with pytest.raises(StorageUnavailable) as info:
                future.result(timeout=20)
            assert (info.value.status, info.value.code) == (503, "storage_unavailable")

        assert stored_payloads(engine) == [b"before"]
        rows = quarantine_rows(engine)
        assert [(r.id, r.status, r.replayed_at) for r in rows] == [(old.id, QUARANTINED, None)]

        drop_failing_trigger(engine, "quarantine", "UPDATE")
        after = committer.submit(Submission([batch(b"after")], [], [old.id]))
        assert after.result(timeout=20) is None  # the writer survived the failure
    finally:
        gate.opened.set()
        committer.stop()
    assert stored_payloads(engine) == [b"before", b"after"]
    assert Quarantine(engine).count("ws_a", REPLAYED) == 1


def test_unreachable_database_fails_futures_with_storage_unavailable(
    engine: Engine, backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        broken_url = f"sqlite:///{tmp_path}"  # a directory: the file cannot be opened
    else:
        broken_url = make_url(database_url).set(database="quanyu_no_such_database").render_as_string(False)
    broken = make_engine(broken_url)
    committer = make_committer(broken, store=engine)
    committer.start()
    try:
        futures = [committer.submit(Submission([batch(f"x{i}".encode())], [reject("{}")])) for i in range(3)]
        for future in futures:
            with pytest.raises(StorageUnavailable):
                future.result(timeout=20)
    finally:
        committer.stop()
        broken.dispose()
    assert stored_payloads(engine) == []
    assert quarantine_rows(engine) == []


def test_operational_error_while_appending_is_storage_unavailable(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = make_committer(engine)

    def disk_failure(*_args: object) -> None:
        raise OperationalError("INSERT INTO ingest_batches", {}, Exception("disk I/O error"))

    monkeypatch.setattr(committer.queue, "append_in", disk_failure)
    future = committer.submit(Submission([batch(b"lost")], [reject("{}")]))
    assert isinstance(future.exception(timeout=5), StorageUnavailable)
    monkeypatch.undo()
    assert stored_payloads(engine) == []
    assert quarantine_rows(engine) == []
    assert committer.submit(Submission([batch(b"kept")], [])).result(timeout=5) is None
    assert stored_payloads(engine) == [b"kept"]


def test_inflight_bytes_bound_refuses_then_recovers(engine: Engine) -> None:
    committer = make_committer(engine, max_inflight_bytes=100)
    gate = Gate()
    committer.on_commit.append(gate)
    committer.start()
    try:
        first = committer.submit(Submission([batch(b"x" * 10)], []))
        assert gate.entered.wait(20)
        second = committer.submit(Submission([batch(b"y" * 30)], [reject("z" * 30)]))
        with pytest.raises(Overloaded):
            committer.submit(Submission([batch(b"w" * 61)], []))
        gate.opened.set()
        assert first.result(timeout=20) is None and second.result(timeout=20) is None
        assert committer.submit(Submission([batch(b"v" * 100)], [])).result(timeout=20) is None
    finally:
        gate.opened.set()
        committer.stop()
    assert stored_payloads(engine) == [b"x" * 10, b"y" * 30, b"v" * 100]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_failing_on_commit_callback_neither_hangs_waiters_nor_stops_the_writer(engine: Engine) -> None:
    committer = make_committer(engine)
    calls: list[int] = []

    def flaky(batches: list[QueuedBatch]) -> None:
        calls.append(len(batches))
        if len(calls) == 1:
            raise RuntimeError("gauge exploded")

    committer.on_commit.append(flaky)
    committer.start()
    try:
        committer.submit(Submission([batch(b"one")], [])).result(timeout=2)
        committer.submit(Submission([batch(b"two")], [])).result(timeout=2)
    finally:
        committer.stop()
    assert stored_payloads(engine) == [b"one", b"two"]


# --------------------------------------------------------------------------------------------
# Several processes on one store

APPEND_CHILD = """
import sys, threading
from datetime import UTC, datetime
from quanyu.collect.committer import GroupCommitter, Submission
from quanyu.collect.quarantine import Quarantine
from quanyu.collect.queue import IngestQueue, QueuedBatch
from quanyu.store import make_engine

url, tag = sys.argv[1], sys.argv[2]
engine = make_engine(url)
queue = IngestQueue(engine)
committer = GroupCommitter(engine, queue, Quarantine(engine), 1 << 26)
committer.start()
print("ready", flush=True)
sys.stdin.readline()

def work(t):
    def one(kind, i, n):
        return QueuedBatch("ws_c", tag, datetime.now(UTC), n, f"{tag}-{kind}{t}-{i}".encode())
    futures = [committer.submit(Submission([one("g", i, 1)], [])) for i in range(50)]
    for f in futures:
        f.result(timeout=60)
    for i in range(25):
        queue.append([one("d", i, 2)])

threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
committer.stop()
engine.dispose()
print("done", flush=True)
"""


def test_two_processes_appending_concurrently_lose_nothing(engine: Engine, database_url: str) -> None:
    children = [spawn_python(APPEND_CHILD, database_url, tag) for tag in ("p1", "p2")]
    try:
        for child in children:
            wait_ready(child)
        for child in children:
            release(child)
        results = [finish(child, timeout=90) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert [(code, out.split()) for code, out, _ in results] == [(0, ["done"])] * 2, [r[2] for r in results]

    with engine.connect() as conn:
        rows = conn.execute(select(IngestBatch.id, IngestBatch.payload).order_by(IngestBatch.id)).all()
    payloads = [bytes(r.payload).decode() for r in rows]
    expected = [
        f"{tag}-{kind}{t}-{i}"
        for tag in ("p1", "p2")
        for t in range(4)
        for kind, n in (("g", 50), ("d", 25))
        for i in range(n)
    ]
    assert Counter(payloads) == Counter(expected)
    assert len({r.id for r in rows}) == len(rows) == 600
    for tag in ("p1", "p2"):  # each writer's own sequence stays in id order
        for t in range(4):
            for kind in ("g", "d"):
                prefix = f"{tag}-{kind}{t}-"
                assert [p for p in payloads if p.startswith(prefix)] == sorted(
                    (p for p in expected if p.startswith(prefix)), key=lambda p: int(p.rsplit("-", 1)[1])
                )
    assert IngestQueue(engine).backlog() == {"ws_c": Backlog(2 * 4 * (50 + 25 * 2), 600)}


def test_concurrent_completes_from_two_engines_add_up(database_url: str, engine: Engine) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    IngestQueue(engine).append([batch(f"{i}".encode()) for i in range(100)])
    ids = [c.id for c in IngestQueue(engine).claim(10_000)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        queue = IngestQueue(engines[k])
        start.wait()
        try:
            for i in range(k, 100, 2):  # the first one races on creating the counter row
                queue.complete([ids[i]], {"ws_a": Tally(processed=1, duplicates=i % 2, batches=1)})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for e in engines:
            e.dispose()
    assert errors == []
    counter = IngestQueue(engine).counters()["ws_a"]
    assert (counter.processed, counter.duplicates, counter.batches) == (100, 50, 100)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IngestBatch)).scalar_one() == 0
