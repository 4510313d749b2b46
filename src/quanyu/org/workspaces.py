"""Workspaces (tenants) and their management tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from quanyu.errors import NotFound, Unauthorized
from quanyu.org.credentials import digest, new_id, new_secret
from quanyu.store.engine import reading
from quanyu.store.models import ApiToken, Workspace

ADMIN_SCOPE = "admin"


@dataclass(frozen=True)
class WorkspaceInfo:
    id: str
    name: str
    timezone: str


@dataclass(frozen=True)
class TokenIdentity:
    token_id: str
    workspace_id: str
    scope: str


class Workspaces:
    """Create workspaces and issue / verify their management tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, timezone: str = "Asia/Shanghai") -> WorkspaceInfo:
        ws = Workspace(id=new_id("ws"), name=name, timezone=timezone, created_at=datetime.now(UTC))
        with self.engine.begin() as conn:
            conn.execute(Workspace.__table__.insert().values(**_row(ws)))
        return WorkspaceInfo(ws.id, ws.name, ws.timezone)

    def issue_token(self, workspace_id: str, name: str = "admin", scope: str = ADMIN_SCOPE) -> str:
        token = new_secret("qy")
        row = {
            "id": new_id("tok"),
            "workspace_id": workspace_id,
            "name": name,
            "scope": scope,
            "token_hash": digest(token),
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(ApiToken.__table__.insert().values(**row))
        return token

    def verify_token(self, token: str) -> TokenIdentity:
        stmt = select(ApiToken.id, ApiToken.workspace_id, ApiToken.scope).where(
            ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None)
        )
        with reading(self.engine) as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise Unauthorized("管理令牌无效 / invalid or revoked API token", code="invalid_token")
        return TokenIdentity(row.id, row.workspace_id, row.scope)

    def get(self, workspace_id: str) -> WorkspaceInfo:
        with reading(self.engine) as conn:
            row = conn.execute(select(Workspace).where(Workspace.id == workspace_id)).first()
        if row is None:
            raise NotFound(f"工作空间不存在 / workspace {workspace_id} not found")
        return WorkspaceInfo(row.id, row.name, row.timezone)

    def all(self) -> list[WorkspaceInfo]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(Workspace).order_by(Workspace.created_at)).all()
        return [WorkspaceInfo(r.id, r.name, r.timezone) for r in rows]


def _row(ws: Workspace) -> dict[str, object]:
    return {"id": ws.id, "name": ws.name, "timezone": ws.timezone, "created_at": ws.created_at}
