"""Journey engine throughput: N enrollments through trigger → wait → send to a local sink.

    .venv/bin/python bench/journeys.py                      # 1,000,000 people, SQLite and PostgreSQL
    .venv/bin/python bench/journeys.py --people 100000 --backend sqlite

What runs is the product's own code on a real operational store: `JourneyEngine.enroll` (the
path every trigger takes), `run_due` (claims due enrollments, runs the wait and the send step
with the consent / suppression / quiet-hours / cap gate, writes the step log and the outbox in
one transaction per batch) and the outbox `Dispatcher` (marks rows `sending`, calls the sink
adapter, which appends and fsyncs a JSON-lines file, records the outcome). On PostgreSQL,
`--workers` processes claim steps and sends with FOR UPDATE SKIP LOCKED while the main process
enrolls; SQLite has one writer, so one process does everything.

Reported: wall time from the first enrollment to the last recorded send, step executions per
second (entered + waiting + queued rows of the step log), duplicate sends (sink lines sharing a
key, plus outbox rows sent twice for one enrollment and node: must be 0), and, measured in the
same run on the same store, a baseline: a plain executemany of N enrollment-shaped rows, the
floor any engine writing one row per enrollment pays.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from quanyu.channels.configs import ChannelConfigs
from quanyu.channels.sink import read_sink
from quanyu.journeys.clock import ManualClock
from quanyu.journeys.engine import Candidate, JourneyEngine
from quanyu.journeys.outbox import Dispatcher
from quanyu.journeys.people import Person
from quanyu.journeys.policy import Policies
from quanyu.journeys.saved import SavedJourneys
from quanyu.journeys.stats import duplicate_sends
from quanyu.org.vault import Vault
from quanyu.org.workspaces import Workspaces
from quanyu.store import make_engine, upgrade
from quanyu.store.models import Enrollment, JourneyStep

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOON_SHANGHAI = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
JOURNEY = {
    "name": "基准 bench: trigger → wait → send",
    "trigger": {"type": "event", "event": "Signed Up"},
    "start": "wait",
    "nodes": {
        "wait": {"type": "wait", "duration": {"hours": 1}, "next": "send"},
        "send": {
            "type": "send",
            "channel": "sink",
            "content": {"text": "欢迎 {{ profile.first_name | default: '朋友' }}"},
        },
    },
}


def _parts(url: str, data_dir: Path, at: datetime) -> tuple[Any, JourneyEngine, Dispatcher]:
    engine = make_engine(url)
    clock = ManualClock(at)
    journeys, policies = SavedJourneys(engine), Policies(engine)
    channels = ChannelConfigs(engine, Vault.for_data_dir(data_dir), sink_dir=data_dir / "sink")
    return engine, JourneyEngine(engine, journeys, policies, clock=clock), Dispatcher(engine, policies, channels,
                                                                                     clock=clock)  # fmt: skip


def _drain(runner: JourneyEngine, dispatcher: Dispatcher, batch: int, done: Any = None) -> None:
    """Steps and sends until nothing is due; with `done` (an Event), keep polling until it is
    set (more enrollments are coming) and then until nothing is due."""
    while True:
        step = runner.run_due(batch)
        sent = dispatcher.dispatch(batch)
        if step.claimed or sent.claimed:
            continue
        if done is None or done.is_set():
            return
        time.sleep(0.01)


def _worker(url: str, data_dir: str, at_iso: str, batch: int, done: Any) -> None:
    engine, runner, dispatcher = _parts(url, Path(data_dir), datetime.fromisoformat(at_iso))
    _drain(runner, dispatcher, batch, done)
    engine.dispose()


def _baseline(url: str, n: int) -> float:
    """Seconds for a plain executemany of n enrollment-shaped rows into a scratch table."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_baseline"))
        conn.execute(text("CREATE TABLE bench_baseline (id BIGINT PRIMARY KEY, journey_id VARCHAR(40), "
                          "profile_id VARCHAR(64), node VARCHAR(64), status VARCHAR(8), due_at VARCHAR(40))"))  # fmt: skip
    due = NOON_SHANGHAI.isoformat()
    started = time.perf_counter()
    for i in range(0, n, 5000):
        rows = [{"id": k, "j": "jrn", "p": f"p{k}", "n": "wait", "s": "active", "d": due}
                for k in range(i, min(n, i + 5000))]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_baseline VALUES (:id, :j, :p, :n, :s, :d)"), rows)
    took = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_baseline"))
    engine.dispose()
    return took


def run_once(backend: str, people: int, batch: int, workers: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="quanyu-bench-journeys-"))
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{data_dir / 'ops.db'}"
    else:
        pg_name = f"quanyu_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        ws = Workspaces(engine).create("基准 Bench")
        saved = SavedJourneys(engine)
        made = saved.create(ws.id, JOURNEY, "bench", publish=True)
        live = next(j for j in saved.live(ws.id) if j.id == made["id"])
        _engine, runner, dispatcher = _parts(url, data_dir, NOON_SHANGHAI)
        later = NOON_SHANGHAI + timedelta(hours=1, seconds=1)

        procs: list[mp.process.BaseProcess] = []
        ctx = mp.get_context("spawn")
        started = time.perf_counter()
        enrolled = ctx.Event()
        if backend == "postgres":
            for _ in range(workers):
                p = ctx.Process(
                    target=_worker, args=(url, str(data_dir), NOON_SHANGHAI.isoformat(), batch, enrolled)
                )
                p.start()
                procs.append(p)
        for i in range(0, people, batch):
            cands = [Candidate(ws.id, f"p{k}", f"signup:{k}", NOON_SHANGHAI, {"plan": "free"},
                               Person(f"p{k}", {}, None, {"first_name": f"顾客{k}"}))
                     for k in range(i, min(people, i + batch))]  # fmt: skip
            runner.enroll(live, cands)
            if backend == "sqlite":
                _drain(runner, dispatcher, batch)
        enrolled.set()
        for p in procs:
            p.join()
        entered_at = time.perf_counter()
        # An hour later (the clock moves; nothing sleeps): the waits end and the sends go out.
        procs = []
        if backend == "postgres":
            for _ in range(workers):
                p = ctx.Process(target=_worker, args=(url, str(data_dir), later.isoformat(), batch, enrolled))
                p.start()
                procs.append(p)
            for p in procs:
                p.join()
        else:
            _, runner2, dispatcher2 = _parts(url, data_dir, later)
            _drain(runner2, dispatcher2, batch)
        finished = time.perf_counter()

        s, e = JourneyStep.__table__, Enrollment.__table__
        with engine.connect() as conn:
            steps = conn.execute(select(func.count()).select_from(s)
                                 .where(s.c.kind.in_(("entered", "waiting", "queued")))).scalar_one()  # fmt: skip
            done = conn.execute(select(func.count()).select_from(e).where(e.c.status == "done")).scalar_one()
        lines = read_sink(data_dir / "sink" / f"{ws.id}.jsonl")
        repeated = sum(n - 1 for n in Counter(line["key"] for line in lines).values() if n > 1)
        dup = repeated + duplicate_sends(engine, live.id)
        engine.dispose()
        baseline = _baseline(url, people)
        total = finished - started
        return {"backend": backend, "people": people, "workers": workers if backend == "postgres" else 1,
                "seconds": round(total, 1), "enter_seconds": round(entered_at - started, 1),
                "send_seconds": round(finished - entered_at, 1), "step_executions": steps,
                "steps_per_second": round(steps / total), "sent": len(lines), "completed": done,
                "duplicate_sends": dup, "baseline_insert_seconds": round(baseline, 1),
                "ratio_to_baseline": round(total / baseline, 2)}  # fmt: skip
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg_name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": pg_name})  # fmt: skip
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}"'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes on PostgreSQL")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        results = []
        for run in range(args.runs):
            result = run_once(backend, args.people, args.batch, args.workers)
            results.append(result)
            print(f"run {run + 1}: {result}", flush=True)
        secs = [r["seconds"] for r in results]
        rates = [r["steps_per_second"] for r in results]
        ratios = [r["ratio_to_baseline"] for r in results]
        print(f"{backend}: {args.people:,} enrollments, median {statistics.median(secs)} s "
              f"(runs {' · '.join(map(str, secs))}), median {statistics.median(rates):,.0f} step executions/s, "
              f"median ratio to plain insert {statistics.median(ratios)}, "
              f"duplicate sends {sum(r['duplicate_sends'] for r in results)}", flush=True)  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
