"""Segments: the definition schema, previews, saved segments with their versions and modes,
membership refreshes, members (JSON pages, CSV and Parquet exports), the entry/exit log, the
signal stream (segment_entered / segment_exited), event groups."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quanyu.api.deps import Caller, PlatformDep
from quanyu.platform import Platform
from quanyu.segments import membership, signals
from quanyu.segments.definition import json_schema
from quanyu.segments.event_groups import EventGroupSpec
from quanyu.segments.export import export
from quanyu.segments.preview import MAX_SAMPLE, preview
from quanyu.segments.saved import SegmentCreate, SegmentUpdate

router = APIRouter(prefix="/api/v1/segments", tags=["segments 分群"])

Limit = Annotated[int, Query(ge=1, le=membership.MAX_PAGE)]


class PreviewRequest(BaseModel):
    definition: dict[str, Any] = Field(description="a segment definition (GET /api/v1/segments/schema)")
    sample: int = Field(default=20, ge=0, le=MAX_SAMPLE, description="how many members to show")


def _actor(caller: Caller) -> str:
    return f"token:{caller.token_id}"


def _timeout(platform: Platform) -> float:
    return platform.settings.segment_timeout_seconds


@router.get("/schema", operation_id="segment_definition_schema")
def definition_schema(caller: Caller) -> dict[str, Any]:
    """The JSON Schema of a segment definition."""
    return json_schema()


@router.post("/preview", operation_id="preview_segment")
def preview_segment(body: PreviewRequest, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """How many people a definition matches now, a sample, breakdowns by channel, first-touch
    source and domain, and the SQL it compiles to; nothing is saved."""
    return preview(platform.warehouse, platform.segments, caller.workspace_id, body.definition,
                   sample=body.sample, timeout=_timeout(platform))  # fmt: skip


@router.get("/event-groups", operation_id="list_event_groups")
def list_event_groups(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Named event groups of the workspace (e.g. `touch`: what counts as reaching someone)."""
    return {"items": platform.segments.event_groups.all(caller.workspace_id)}


@router.get("/event-groups/{name}", operation_id="get_event_group")
def get_event_group(name: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return platform.segments.event_groups.get(caller.workspace_id, name)


@router.put("/event-groups/{name}", operation_id="put_event_group")
def put_event_group(name: str, body: EventGroupSpec, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Declare or replace a group; segments using it follow on their next refresh."""
    return platform.segments.event_groups.put(caller.workspace_id, name, body, _actor(caller))


@router.get("", operation_id="list_segments")
def list_segments(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """The workspace's saved segments with their mode (realtime or scheduled, and why) and
    their last refresh."""
    return {"items": platform.segments.all(caller.workspace_id)}


@router.get("/signals", operation_id="segment_signals")
def segment_signals(
    caller: Caller,
    platform: PlatformDep,
    after: Annotated[
        str | None, Query(description="next_cursor of the previous page; from the start without")
    ] = None,
    limit: Limit = 100,
    segment_id: str | None = None,
) -> dict[str, Any]:
    """Segment signals (`segment_entered`, `segment_exited`) oldest first, past the cursor
    `after`: one per entry or exit of any mode. `next_cursor` is always set; poll with it."""
    return signals.signals_page(platform.warehouse, caller.workspace_id, after, limit, segment_id)


@router.post("", operation_id="create_segment", status_code=201)
def create_segment(body: SegmentCreate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Save a segment (version 1), checked in full as a preview would be; members are computed
    by the next refresh."""
    return platform.segments.create(caller.workspace_id, body, _actor(caller), platform.warehouse)


@router.post("/refresh", operation_id="refresh_all_segments")
def refresh_all_segments(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Refresh every segment of the workspace now: what each one did, and the ones that failed."""
    return membership.refresh_workspace(platform.warehouse, platform.segments, caller.workspace_id,
                                        mode="on_demand", timeout=_timeout(platform))  # fmt: skip


@router.get("/{segment_id}", operation_id="get_segment")
def get_segment(segment_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """A segment with its current definition and every version, newest first."""
    return platform.segments.get(caller.workspace_id, segment_id)


@router.put("/{segment_id}", operation_id="update_segment")
def update_segment(
    segment_id: str, body: SegmentUpdate, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Change the name, description or definition: a new version; the old ones are kept."""
    return platform.segments.update(caller.workspace_id, segment_id, body, _actor(caller), platform.warehouse)


@router.delete("/{segment_id}", operation_id="delete_segment")
def delete_segment(segment_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Delete a segment (409 `segment_in_use` while another segment uses it). Its versions and
    log are kept; its member list is dropped."""
    deleted = platform.segments.delete(caller.workspace_id, segment_id, _actor(caller))
    membership.forget(platform.warehouse, caller.workspace_id, segment_id)
    return deleted


@router.post("/{segment_id}/refresh", operation_id="refresh_segment")
def refresh_segment(segment_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Bring the members up to date now; answers who entered and who left."""
    return membership.refresh_membership(platform.warehouse, platform.segments, caller.workspace_id, segment_id,
                                         mode="on_demand", timeout=_timeout(platform)).public()  # fmt: skip


@router.get("/{segment_id}/members", operation_id="segment_members", response_model=None)
def segment_members(
    segment_id: str,
    caller: Caller,
    platform: PlatformDep,
    limit: Limit = 100,
    cursor: str | None = None,
    format: Literal["json", "csv", "parquet"] = "json",
) -> dict[str, Any] | Response:
    """Members as JSON pages (keyset cursor), or every member as a CSV (formula cells
    neutralised) or Parquet file."""
    platform.segments.current(caller.workspace_id, segment_id)  # 404 for unknown and deleted ones
    if format == "json":
        return membership.members_page(platform.warehouse, caller.workspace_id, segment_id, limit, cursor)
    body = export(platform.warehouse, caller.workspace_id, segment_id, format)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/vnd.apache.parquet"
    disposition = f'attachment; filename="{segment_id}.{format}"'
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


@router.get("/{segment_id}/log", operation_id="segment_log")
def segment_log(
    segment_id: str,
    caller: Caller,
    platform: PlatformDep,
    limit: Limit = 100,
    cursor: str | None = None,
    kind: Literal["entered", "exited"] | None = None,
    profile_id: str | None = None,
) -> dict[str, Any]:
    """Entries and exits, newest first: who, when, under which version, by which run and mode."""
    platform.segments.current(caller.workspace_id, segment_id)
    return membership.log_page(
        platform.warehouse, caller.workspace_id, segment_id, limit, cursor, kind, profile_id
    )
