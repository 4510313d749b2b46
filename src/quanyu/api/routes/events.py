"""The event browser."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from quanyu.api.deps import Caller, PlatformDep
from quanyu.warehouse.browser import event_stats, list_events
from quanyu.warehouse.events import EventFilter

router = APIRouter(prefix="/api/v1/events", tags=["events 事件"])


@router.get("", operation_id="list_events")
def events(
    caller: Caller,
    platform: PlatformDep,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    event: str | None = None,
    type: Annotated[str | None, Query(pattern="^(identify|track|page|screen|group|alias)$")] = None,
    source_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Events newest first; pass `next_cursor` back as `cursor` for the next page."""
    flt = EventFilter(caller.workspace_id, user_id, anonymous_id, event, type, source_id, since, until)
    return list_events(platform.warehouse, flt, cursor, limit)


@router.get("/stats", operation_id="event_stats")
def stats(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Events, visitors, orders and revenue per channel (公域/私域, 线上/线下)."""
    return event_stats(platform.warehouse, caller.workspace_id)
