"""Helpers shared by the reliability tests: auth headers, error shapes, waiting for the pipeline."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx

from testkit import LiveServer, start_server


def basic(key: str) -> dict[str, str]:
    """HTTP Basic with the write key as user and an empty password (what the SDKs send)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error_shape(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: {"code": str, "message": str, "details"?: any}, with the expected status."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert set(body) <= {"code", "message", "details"}, body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def track(message_id: str, user_id: str = "u1", event: str = "Viewed", **extra: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": user_id, "event": event, **extra}


def wait_drained(
    url: str, token: str, *, min_processed: int = 0, timeout: float = 30.0, settle: float = 0.0
) -> dict[str, Any]:
    """Poll /api/v1/pipeline/status until nothing is queued and `processed` reached `min_processed`."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/api/v1/pipeline/status", headers=bearer(token), timeout=10)
        assert resp.status_code == 200, resp.text
        status = resp.json()
        if status["queued"] == 0 and status["queued_batches"] == 0 and status["processed"] >= min_processed:
            if settle:
                time.sleep(settle)
                again = httpx.get(f"{url}/api/v1/pipeline/status", headers=bearer(token), timeout=10).json()
                if again != status:
                    status = again
                    continue
            return status
        time.sleep(0.1)
    raise AssertionError(f"pipeline did not drain within {timeout} s: {status}")


def warehouse_counts(data_dir: Path) -> Counter[str]:
    """messageId -> number of rows in the events table (read after the server stopped)."""
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("select message_id, count(*) from events group by 1").fetchall()
    finally:
        con.close()
    return Counter({str(mid): int(n) for mid, n in rows})


class Stderr:
    """Drain a server's stderr in the background so a chatty process never blocks on a full pipe."""

    def __init__(self, server: LiveServer) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(server,), daemon=True)
        self._thread.start()

    def _pump(self, server: LiveServer) -> None:
        stream = server.process.stderr
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.lines[-200:])


def launch(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> tuple[LiveServer, Stderr]:
    server = start_server(data_dir, *extra, env=env, port=port)
    return server, Stderr(server)


@contextmanager
def running(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[LiveServer]:
    server, _ = launch(data_dir, *extra, env=env, port=port)
    try:
        yield server
    finally:
        server.stop()


def warehouse_rows_containing(data_dir: Path, needle: str) -> int:
    """Rows of the events table whose text (every column, JSON included) contains `needle`.

    The byte scan alone is not enough for DuckDB, whose string compression can hide a value.
    """
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(
            "select count(*) from events as e where contains(cast(e as varchar), $needle)", {"needle": needle}
        ).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def scan_files(root: Path, needles: dict[str, str]) -> dict[str, list[str]]:
    """Which of the named strings occur (as raw bytes) in which files under `root`."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, needle in needles.items():
            if needle.encode() in data:
                found.setdefault(name, []).append(path.name)
    return found
