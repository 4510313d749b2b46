"""Identifier types a workspace declares for itself, kept in the operational store.

The built-ins cover the platforms every brand shares; a brand adds its own (a franchise CRM
number, a loyalty app id) with a priority, a per-person limit and junk values. Stitching,
lookups and the pipeline ask `types_for(workspace)`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, delete, insert, select

from quanyu.errors import Conflict
from quanyu.identity.identifiers import BUILTIN_TYPES, IdentifierType, IdentifierTypes
from quanyu.store.engine import reading
from quanyu.store.models import DeclaredIdentifierType

_T = DeclaredIdentifierType.__table__


class TypeDeclaration(BaseModel):
    priority: int = Field(ge=1, le=99, description="higher wins when links compete (user_id is 100)")
    max_per_profile: int = Field(ge=1, le=100)
    label: str = Field(default="", max_length=200)
    blocklist: list[str] = Field(default_factory=list, max_length=1000)


class DeclaredTypes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, IdentifierTypes] = {}
        self._lock = threading.Lock()

    def declare(self, workspace_id: str, name: str, spec: TypeDeclaration) -> dict[str, Any]:
        if name in BUILTIN_TYPES:
            raise Conflict(f"内置类型不可覆盖 / {name!r} is a built-in type", code="builtin_identifier_type")
        declared = IdentifierTypes.custom(
            name, spec.priority, spec.max_per_profile, spec.label, spec.blocklist
        )
        IdentifierTypes([declared])  # validates the name and limits, with the same messages
        row = {"workspace_id": workspace_id, "name": name, "priority": spec.priority,
               "max_per_profile": spec.max_per_profile, "label": spec.label or name,
               "blocklist": sorted({v.casefold() for v in spec.blocklist}), "created_at": datetime.now(UTC)}  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.workspace_id == workspace_id, _T.c.name == name))
            conn.execute(insert(_T).values(**row))
        with self._lock:
            self._cache.pop(workspace_id, None)
        return _public(row, builtin=False)

    def types_for(self, workspace_id: str) -> IdentifierTypes:
        with self._lock:
            cached = self._cache.get(workspace_id)
        if cached is not None:
            return cached
        with reading(self.engine) as conn:
            rows = conn.execute(select(_T).where(_T.c.workspace_id == workspace_id)).mappings().all()
        types = IdentifierTypes(
            IdentifierTypes.custom(r["name"], r["priority"], r["max_per_profile"], r["label"], r["blocklist"])
            for r in rows
        )
        with self._lock:
            self._cache[workspace_id] = types
        return types

    def list(self, workspace_id: str) -> list[dict[str, Any]]:
        types = sorted(self.types_for(workspace_id), key=lambda t: (-t.priority, t.name))
        return [_public(_row_of(t), builtin=t.name in BUILTIN_TYPES) for t in types]


def _row_of(t: IdentifierType) -> dict[str, Any]:
    return {"name": t.name, "priority": t.priority, "max_per_profile": t.max_per_profile, "label": t.label,
            "blocklist": sorted(t.blocklist)}  # fmt: skip


def _public(row: dict[str, Any], builtin: bool) -> dict[str, Any]:
    keys = ("name", "priority", "max_per_profile", "label", "blocklist")
    return {**{k: row[k] for k in keys}, "builtin": builtin}
