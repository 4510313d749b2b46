"""The membership schedule: inside `quanyu serve`, every saved segment of every workspace is
refreshed every `QUANYU_SEGMENT_REFRESH_SECONDS` (default 300; 0 turns the schedule off).

It runs in its own thread beside the pipeline worker. A refresh that fails (a timeout, a
definition that no longer compiles) is kept on its segment (`membership.error`) and tried again
next round; it never stops the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from quanyu.segments.membership import refresh_workspace
from quanyu.segments.saved import SavedSegments
from quanyu.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def run_schedule(
    stop: threading.Event,
    interval: float,
    warehouse: Callable[[], Warehouse],
    store: SavedSegments,
    workspaces: Callable[[], list[str]],
    timeout: float | None,
) -> None:
    """Refresh every segment every `interval` seconds until `stop` is set (first round after
    one interval: a server starting up has the pipeline to catch up first)."""
    while not stop.wait(interval):
        for workspace_id in workspaces():
            if stop.is_set():
                return
            try:
                refresh_workspace(warehouse(), store, workspace_id, mode="scheduled", timeout=timeout)
            except Exception:
                log.exception("scheduled segment refresh failed for %s; retrying next round", workspace_id)
