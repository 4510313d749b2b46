"""Quarantined messages: list them, replay them (optionally with a corrected payload)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from quanyu.api.deps import Caller, PlatformDep

router = APIRouter(prefix="/api/v1/quarantine", tags=["quarantine 隔离"])


class ReplayRequest(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=10_000)
    payload: dict[str, Any] | None = Field(
        default=None, description="A corrected message to replay instead of the stored one (one id only)."
    )


@router.get("", operation_id="list_quarantine")
def list_quarantine(
    caller: Caller,
    platform: PlatformDep,
    status: Annotated[str, Query(pattern="^(quarantined|replayed|all)$")] = "quarantined",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
) -> dict[str, Any]:
    entries = platform.quarantine.list(
        caller.workspace_id, status=None if status == "all" else status, limit=limit, before_id=before_id
    )
    return {
        "items": [e.public() for e in entries],
        "next_before_id": entries[-1].id if len(entries) == limit else None,
    }


@router.post("/replay", operation_id="replay_quarantine")
def replay(body: ReplayRequest, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    if body.payload is not None and len(body.ids) != 1:
        from quanyu.errors import InvalidInput

        raise InvalidInput("修正内容只能对应一条记录 / a corrected payload replays exactly one id")
    return platform.intake.replay(caller.workspace_id, body.ids, body.payload)
