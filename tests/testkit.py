"""Shared test helpers and fixtures (imported by tests/conftest.py so pytest registers the fixtures)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from quanyu.platform import Platform
from quanyu.settings import Settings

PG_ADMIN_URL = os.environ.get("QUANYU_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    ok = _postgres_available()
    if not ok and IN_CI:
        pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
    return ok


@pytest.fixture
def pg_database(postgres_ok: bool) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not postgres_ok:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432 (required and never skipped in CI)")
    name = f"quanyu_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The operational store URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return str(request.getfixturevalue("pg_database"))


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", pipeline_enabled=False)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    p = Platform(settings)
    yield p
    p.close()


@dataclass
class Tenant:
    workspace_id: str
    token: str
    write_key: str
    source_id: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_tenant(platform: Platform, source_type: str = "website", name: str = "品牌 Brand") -> Tenant:
    ws = platform.workspaces.create(name)
    token = platform.workspaces.issue_token(ws.id)
    created = platform.sources.create(ws.id, f"{source_type} source", source_type)
    return Tenant(ws.id, token, created.write_key, created.source.id)


@pytest.fixture
def tenant(platform: Platform) -> Tenant:
    return new_tenant(platform)


@pytest.fixture
def client(settings: Settings, platform: Platform) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from quanyu.api import create_app

    with TestClient(create_app(settings, platform)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


QUANYU = str(Path(sys.executable).with_name("quanyu"))


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([QUANYU, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"quanyu {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> LiveServer:
    port = port or free_port()
    proc = subprocess.Popen(
        [QUANYU, "serve", "--data-dir", str(data_dir), "--port", str(port), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, data_dir, proc, port)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A real `quanyu serve` process on an initialised data directory, with its credentials."""
    import json

    data_dir = tmp_path / "live"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    server = start_server(data_dir)
    try:
        yield server, creds
    finally:
        server.stop()
