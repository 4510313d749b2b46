"""Pipeline status and an on-demand drain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from quanyu.api.deps import Caller, PlatformDep
from quanyu.pipeline.status import pipeline_status

router = APIRouter(prefix="/api/v1/pipeline", tags=["pipeline 处理"])


@router.get("/status", operation_id="pipeline_status")
def status(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    pending = platform.pipeline.identity_pending()
    return pipeline_status(platform.queue, platform.quarantine, caller.workspace_id, pending)


@router.post("/run", operation_id="pipeline_run")
def run(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Drain the queue now (the background worker does this continuously)."""
    return platform.pipeline.drain().public()
