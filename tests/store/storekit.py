"""Helpers shared by the store tests: backend detection, failure injection, child processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url


def backend_of(url: str) -> str:
    """The backend name: "sqlite" or "postgresql"."""
    return make_url(url).get_backend_name()


def xfail_on(request: pytest.FixtureRequest, backend: str, wanted: str, reason: str) -> None:
    """Mark the running test as an expected (strict) failure on one backend only."""
    if backend == wanted:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def install_failing_trigger(engine: Engine, table: str, operation: str) -> None:
    """Make every INSERT or UPDATE on `table` fail inside the database itself (a real refused write)."""
    name = f"qy_fail_{table}_{operation.lower()}"
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION qy_fail() RETURNS trigger LANGUAGE plpgsql AS "
                "$f$ BEGIN RAISE EXCEPTION 'injected failure'; END $f$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION qy_fail()"
            )


def drop_failing_trigger(engine: Engine, table: str, operation: str) -> None:
    name = f"qy_fail_{table}_{operation.lower()}"
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")


def spawn_python(code: str, *args: str) -> subprocess.Popen[str]:
    """A separate interpreter (a second "process" of the deployment) running `code`.

    The child prints "ready" once imported and then waits for a line on stdin before it acts,
    so several children can be released at the same moment.
    """
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"child did not start: {line!r}\n{err}")


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err
