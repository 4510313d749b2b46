"""Real processes: a worker killed with SIGKILL mid-batch never causes a second send of any
(enrollment, node), and several workers on PostgreSQL share the work with SKIP LOCKED while
the daily frequency caps hold exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from journeys.journeykit import Rig, journey, send_to
from quanyu.journeys.policy import ConsentInput, record_consent
from quanyu.store.models import Enrollment, OutboxMessage

WORKER = str(Path(__file__).with_name("worker_proc.py"))
pytestmark = pytest.mark.slow


def _spawn(
    rig: Rig, url: str, lease_seconds: float | None = None, later: float = 0
) -> subprocess.Popen[bytes]:
    at = rig.clock.now() + timedelta(seconds=later)
    args = [sys.executable, WORKER, url, str(rig.dir), at.isoformat()]
    if lease_seconds is not None:
        args.append(str(lease_seconds))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:  # the torn last line of a killed write
            continue
    return out


def test_sigkill_mid_batch_never_sends_twice(rig: Rig, database_url: str) -> None:
    sink = rig.dir / "slow.jsonl"
    from quanyu.store.models import ChannelConfig

    with rig.engine.begin() as conn:  # the stand-in type lives in the worker process only
        conn.execute(ChannelConfig.__table__.insert().values(
            id="ch_slow", workspace_id=rig.workspace_id, name="slow", channel="sink", type="slow_sink",
            settings={"path": str(sink)}, secrets=None, is_default=False, created_at=rig.clock.now()))  # fmt: skip
    two_sends = {"a": send_to("sink", "one", nxt="b", via="ch_slow", purpose="transactional"),
                 "b": send_to("sink", "two", via="ch_slow", purpose="transactional")}  # fmt: skip
    live = rig.save(journey(two_sends))
    people = [f"p{i}" for i in range(1500)]
    for i in range(0, len(people), 500):
        rig.enroll(live, *people[i : i + 500])

    kills = 0
    for _round in range(4):
        worker = _spawn(rig, database_url)
        deadline = time.monotonic() + 20
        target = len(_lines(sink)) + 150  # kill once it is visibly sending
        while time.monotonic() < deadline and len(_lines(sink)) < target and worker.poll() is None:
            time.sleep(0.01)
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
            kills += 1
        worker.wait(10)
    assert kills >= 2
    # A last worker whose lease has passed cleans up what the killed ones left mid-send.
    final = _spawn(rig, database_url, lease_seconds=30, later=60)
    assert final.wait(120) == 0, final.stderr.read() if final.stderr else ""

    keys = Counter(str(line["key"]) for line in _lines(sink))
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]
    o, e = OutboxMessage.__table__, Enrollment.__table__
    with rig.engine.connect() as conn:
        statuses = dict(conn.execute(select(o.c.status, func.count()).group_by(o.c.status)).all())
        ended = conn.execute(select(func.count()).select_from(e).where(e.c.status == "done")).scalar_one()
        sent = set(conn.execute(select(o.c.key).where(o.c.status == "sent")).scalars())
        unknown = set(conn.execute(select(o.c.key).where(o.c.status == "unknown")).scalars())
    assert ended == len(people)
    assert set(statuses) <= {"sent", "unknown"} and sum(statuses.values()) == 2 * len(people)
    assert sent <= set(keys)  # everything recorded sent reached the provider, once
    assert set(keys) - sent <= unknown  # what a killed worker sent but never recorded stays unknown


def test_caps_hold_with_several_workers_on_postgres(tmp_path: Path, pg_database: str) -> None:
    from journeys.journeykit import make_rig

    rig = make_rig(pg_database, tmp_path)
    try:
        rig.policies.update(rig.workspace_id, {"caps": {"sms": 1}})
        first = rig.save(journey({"sms": send_to("sms", "first")}, name="first"))
        second = rig.save(journey({"sms": send_to("sms", "second")}, name="second"))
        people = [f"p{i}" for i in range(600)]
        with rig.engine.begin() as conn:
            record_consent(conn, rig.workspace_id, [ConsentInput("profile", p, "sms", "marketing", True, "test",
                                                                 rig.clock.now()) for p in people])  # fmt: skip
        for p in people:
            rig.person(p, sms=f"139{int(p[1:]):08d}")
        # Both journeys' enrollments are due at once, interleaved, so workers race per person.
        for i in range(0, len(people), 100):
            rig.enroll(first, *people[i : i + 100])
            rig.enroll(second, *people[i : i + 100])
        workers = [_spawn(rig, pg_database) for _ in range(4)]
        for w in workers:
            assert w.wait(180) == 0, w.stderr.read() if w.stderr else ""
        lines = rig.sink("sms")
        per_person = Counter(str(line["profile_id"]) for line in lines)
        assert set(per_person) == set(people) and set(per_person.values()) == {1}
        assert len({line["key"] for line in lines}) == len(lines)
        with rig.engine.connect() as conn:
            o = OutboxMessage.__table__
            # The work really was shared between the processes.
            assert len(set(conn.execute(select(o.c.claimed_by).distinct()).scalars())) >= 2
            e = Enrollment.__table__
            assert (
                conn.execute(select(func.count()).select_from(e).where(e.c.status == "done")).scalar_one()
                == 1200
            )
    finally:
        rig.channels.close()
        rig.engine.dispose()


def test_journeys_worker_command_scales_out_on_postgres(tmp_path: Path, pg_database: str) -> None:
    """`quanyu journeys worker --processes 2` shares due steps and sends with nobody else's help."""
    from journeys.journeykit import make_rig
    from testkit import QUANYU

    rig = make_rig(pg_database, tmp_path)
    try:
        live = rig.save(journey({"hi": send_to("sink", "你好", purpose="transactional")}))
        people = [f"w{i}" for i in range(300)]
        rig.enroll(live, *people)  # due now: the workers run on the system clock
        env = {**os.environ, "QUANYU_DATABASE_URL": pg_database}
        worker = subprocess.Popen([QUANYU, "journeys", "worker", "--processes", "2", "--data-dir", str(tmp_path)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(rig.sink()) < len(people):
                time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(30)
        keys = [line["key"] for line in rig.sink()]
        assert len(keys) == len(people) == len(set(keys))
    finally:
        rig.channels.close()
        rig.engine.dispose()
