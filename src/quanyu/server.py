"""Running the server, and telling the CLI whether one holds a data directory.

DuckDB allows a single writing process, so `quanyu serve` takes an exclusive lock on the data
directory and records its URL; CLI commands that find the lock taken talk to that URL instead.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from quanyu.settings import Settings


class ServerLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._fh: IO[str] | None = None

    def acquire(self, url: str) -> bool:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.data_dir / "server.lock", "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        (self.data_dir / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": url}))
        return True

    def release(self) -> None:
        if self._fh is not None:
            (self.data_dir / "server.json").unlink(missing_ok=True)
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def running_server(data_dir: Path) -> str | None:
    """The URL of the server holding `data_dir`, or None when no server holds it."""
    lock_path = data_dir / "server.lock"
    if not lock_path.exists():
        return None
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = data_dir / "server.json"
            return json.loads(info.read_text())["url"] if info.exists() else None
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def serve(settings: Settings, *, access_log: bool = False) -> None:
    """Serve the API (and the pipeline worker) until interrupted."""
    import uvicorn

    from quanyu.api import create_app
    from quanyu.errors import Conflict

    url = f"http://{settings.host}:{settings.port}"
    lock = ServerLock(settings.data_dir)
    if not lock.acquire(url):
        raise Conflict(f"已有服务占用该数据目录 / a server already holds {settings.data_dir}")
    try:
        app = create_app(settings)
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=access_log,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )
    finally:
        lock.release()
