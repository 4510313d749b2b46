"""Messaging: channel configurations, the send policy (quiet hours, caps, opt-in channels,
holdout), the kill switch, consent, suppressions, receipts and guide tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from quanyu.api.deps import Caller, PlatformDep
from quanyu.channels.registry import adapter_types
from quanyu.journeys.policy import ConsentInput, list_suppressions, record_consent, suppress, unsuppress
from quanyu.store.engine import reading
from quanyu.store.models import ConsentRecord, ConsentState, GuideTask

router = APIRouter(prefix="/api/v1", tags=["messaging 触达"])
_CL = ConsentRecord.__table__
_CS = ConsentState.__table__
_T = GuideTask.__table__


def _actor(caller: Caller) -> str:
    return f"token:{caller.token_id}"


class ChannelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=32, description="GET /api/v1/channels/types")
    settings: dict[str, Any] = Field(default_factory=dict)
    default: bool = False


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting is an error, not a silent no-op

    quiet_hours: str | None = Field(default=None, description='"21:00-09:00", or "" for none')
    caps: dict[str, int] | None = None
    opt_in_channels: list[str] | None = None
    holdout_percent: float | None = None


class KillSwitch(BaseModel):
    on: bool


class ConsentBody(BaseModel):
    profile_id: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=200, description="a phone, e-mail or openid")
    channel: str = Field(default="*", max_length=16)
    purpose: str = Field(default="marketing", max_length=32)
    granted: bool
    source: str = Field(default="api", max_length=64)
    at: datetime | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _subject(self) -> ConsentBody:
        if (self.profile_id is None) == (self.address is None):
            raise ValueError("give profile_id or address (择一：用户或地址)")
        return self


class SuppressionBody(BaseModel):
    channel: str = Field(max_length=16, description='a channel, or "*" for every channel')
    address: str = Field(
        min_length=1, max_length=200, description="an address, or a profile id with channel *"
    )
    reason: str = Field(default="manual", max_length=64)


class ReceiptBody(BaseModel):
    kind: Literal["delivered", "opened", "clicked", "bounced", "complained", "failed"]
    key: str | None = Field(default=None, max_length=200)
    provider_id: str | None = Field(default=None, max_length=200)
    at: datetime | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _which(self) -> ReceiptBody:
        if self.key is None and self.provider_id is None:
            raise ValueError("give key or provider_id")
        return self


# -- channels ------------------------------------------------------------------------------------


@router.get("/channels/types", operation_id="channel_types", tags=["messaging 触达"])
def channel_types(caller: Caller) -> dict[str, Any]:
    """Adapter types that can be configured (built-ins and plugins)."""
    return {"items": [{"type": k.type, "channel": k.channel, "label": k.label, "secrets": list(k.secrets)}
                      for k in sorted(adapter_types().values(), key=lambda k: k.type)]}  # fmt: skip


@router.get("/channels", operation_id="list_channels")
def list_channels(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return {"items": platform.journeys.channels.all(caller.workspace_id)}


@router.post("/channels", operation_id="create_channel", status_code=201)
def create_channel(body: ChannelCreate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Configure a channel; settings are checked now and secrets are stored encrypted."""
    return platform.journeys.channels.create(
        caller.workspace_id, body.name, body.type, body.settings, body.default
    )


# -- policy and kill switch ----------------------------------------------------------------------


@router.get("/messaging/policy", operation_id="get_messaging_policy")
def get_policy(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return platform.journeys.policies.get(caller.workspace_id, fresh=True).public()


@router.patch("/messaging/policy", operation_id="update_messaging_policy")
def update_policy(body: PolicyUpdate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    return platform.journeys.policies.update(caller.workspace_id, changes).public()


@router.post("/messaging/kill-switch", operation_id="kill_switch")
def kill_switch(body: KillSwitch, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Stop every send of the workspace at once (workers see it within a second), or resume."""
    return platform.journeys.policies.set_kill_switch(caller.workspace_id, body.on, _actor(caller)).public()


# -- consent and suppressions ----------------------------------------------------------------------


@router.post("/consent", operation_id="record_consent", status_code=201)
def post_consent(body: ConsentBody, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Record a grant or withdrawal (kept with its source and time; the newest wins)."""
    kind, subject = ("profile", body.profile_id) if body.profile_id else ("address", body.address)
    assert subject is not None
    record = ConsentInput(kind, subject, body.channel, body.purpose, body.granted, body.source,
                          body.at or datetime.now(UTC), {**body.evidence, "actor": _actor(caller)})  # fmt: skip
    with platform.engine.begin() as conn:
        record_consent(conn, caller.workspace_id, [record])
    return get_consent(caller, platform, subject)


@router.get("/consent", operation_id="get_consent")
def get_consent(caller: Caller, platform: PlatformDep,
                subject: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:  # fmt: skip
    """A profile's or an address's current consent and its history, newest first."""
    ws = caller.workspace_id
    with reading(platform.engine) as conn:
        state = conn.execute(select(_CS).where(_CS.c.workspace_id == ws, _CS.c.subject == subject)).all()
        history = conn.execute(select(_CL).where(_CL.c.workspace_id == ws, _CL.c.subject == subject)
                               .order_by(_CL.c.at.desc()).limit(200)).all()  # fmt: skip
    return {"subject": subject,
            "current": [{"channel": r.channel, "purpose": r.purpose, "granted": r.granted, "source": r.source,
                         "at": r.at.isoformat()} for r in state],
            "history": [{"channel": r.channel, "purpose": r.purpose, "granted": r.granted, "source": r.source,
                         "at": r.at.isoformat(), "recorded_at": r.recorded_at.isoformat(), "evidence": r.evidence}
                        for r in history]}  # fmt: skip


@router.get("/suppressions", operation_id="list_suppressions")
def get_suppressions(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return {"items": list_suppressions(platform.engine, caller.workspace_id)}


@router.post("/suppressions", operation_id="add_suppression", status_code=201)
def add_suppression(body: SuppressionBody, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    with platform.engine.begin() as conn:
        suppress(conn, caller.workspace_id, body.channel, body.address, body.reason, _actor(caller))
    return {"channel": body.channel, "address": body.address, "reason": body.reason}


@router.delete("/suppressions", operation_id="remove_suppression")
def remove_suppression(caller: Caller, platform: PlatformDep, channel: str, address: str) -> dict[str, Any]:
    with platform.engine.begin() as conn:
        removed = unsuppress(conn, caller.workspace_id, channel, address)
    return {"removed": removed}


# -- receipts and tasks --------------------------------------------------------------------------


@router.post("/receipts", operation_id="record_receipt")
def post_receipt(body: ReceiptBody, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """A delivery receipt from a provider integration (delivered, opened, clicked, bounced,
    complained, failed) for a message key or a provider id; it becomes an event on the person."""
    matched = platform.journeys.receipts.record(body.kind, key=body.key, provider_id=body.provider_id,
                                                at=body.at, detail=body.detail,
                                                workspace_id=caller.workspace_id)  # fmt: skip
    return {"matched": matched}


@router.get("/tasks", operation_id="list_tasks")
def list_tasks(caller: Caller, platform: PlatformDep, assignee: str | None = None,
               status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:  # fmt: skip
    """Tasks journeys created for sales reps and store guides."""
    stmt = select(_T).where(_T.c.workspace_id == caller.workspace_id).order_by(_T.c.id.desc()).limit(limit)
    if assignee:
        stmt = stmt.where(_T.c.assignee == assignee)
    if status:
        stmt = stmt.where(_T.c.status == status)
    with reading(platform.engine) as conn:
        rows = conn.execute(stmt).all()
    return {"items": [{"id": r.id, "profile_id": r.profile_id, "assignee": r.assignee, "title": r.title,
                       "note": r.note, "journey_id": r.journey_id, "status": r.status,
                       "created_at": r.created_at.isoformat(), "due_at": r.due_at.isoformat() if r.due_at else None}
                      for r in rows]}  # fmt: skip
