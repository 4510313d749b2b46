"""Sources of the caller's workspace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from quanyu.api.deps import Caller, PlatformDep

router = APIRouter(prefix="/api/v1/sources", tags=["sources 来源"])


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)
    domain: str | None = None
    presence: str | None = None


class SourcePublic(BaseModel):
    id: str
    workspace_id: str
    name: str
    type: str
    channel: str
    domain: str
    presence: str
    write_key_hint: str
    settings: dict[str, Any]
    secret_settings: list[str]
    created_at: str | None


class SourceCreated(SourcePublic):
    write_key: str = Field(description="Shown once; only its hash is stored.")


@router.post("", status_code=201, response_model=SourceCreated, operation_id="create_source")
def create_source(body: SourceCreate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    created = platform.sources.create(
        caller.workspace_id, body.name, body.type, body.settings, domain=body.domain, presence=body.presence
    )
    return {**created.source.public(), "write_key": created.write_key}


@router.get("", response_model=list[SourcePublic], operation_id="list_sources")
def list_sources(caller: Caller, platform: PlatformDep) -> list[dict[str, Any]]:
    return [s.public() for s in platform.sources.list(caller.workspace_id)]
