"""Parametric QR codes of official accounts: create (through WeChat's API), list, the PNG, and
how many scans and follows each brought."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from quanyu.api.deps import Caller, PlatformDep
from quanyu.connectors.qr_codes import MAX_TEMPORARY_SECONDS, scans

router = APIRouter(prefix="/api/v1/qr-codes", tags=["connectors 连接器"])


class QrCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(
        min_length=1, max_length=40, description="a wechat_oa source with app_id and app_secret"
    )
    scene: str = Field(min_length=1, max_length=64, description="the scene string (EventKey of scans)")
    permanent: bool = False
    expire_seconds: int = Field(default=MAX_TEMPORARY_SECONDS, ge=60, le=MAX_TEMPORARY_SECONDS)
    campaign: str | None = Field(default=None, max_length=200)
    store_id: str | None = Field(default=None, max_length=64)
    guide_id: str | None = Field(default=None, max_length=64)
    channel: str | None = Field(
        default=None, max_length=64, description="where it is shown: poster, table card, ad"
    )
    note: str = Field(default="", max_length=2000)


@router.get("", operation_id="list_qr_codes")
def list_codes(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Codes with what they stand for and the scans, follows and people each brought."""
    items = platform.qr_codes.all(caller.workspace_id)
    counts = scans(platform.warehouse, caller.workspace_id, [q["scene"] for q in items])
    return {"items": [{**q, **counts.get(q["scene"], {})} for q in items]}


@router.post("", operation_id="create_qr_code", status_code=201)
def create_code(body: QrCreate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Create a temporary (≤ 30 days) or permanent code at WeChat and record its scene."""
    values = body.model_dump(exclude={"source_id", "scene"})
    return platform.qr_codes.create(caller.workspace_id, body.source_id, body.scene, f"token:{caller.token_id}",
                                    **values)  # fmt: skip


@router.get("/{qr_id}", operation_id="get_qr_code")
def get_code(qr_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    found = platform.qr_codes.get(caller.workspace_id, qr_id)
    return {**found, **scans(platform.warehouse, caller.workspace_id, [found["scene"]])[found["scene"]]}


@router.get("/{qr_id}/png", operation_id="qr_code_png", response_class=Response)
def code_png(qr_id: str, caller: Caller, platform: PlatformDep) -> Response:
    """The code as a PNG (rendered here; print it on posters and table cards)."""
    return Response(platform.qr_codes.png(caller.workspace_id, qr_id), media_type="image/png")
