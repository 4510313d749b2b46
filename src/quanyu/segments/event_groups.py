"""Named event groups a workspace declares, kept in the operational store.

"Was this person reached?" depends on what the brand counts as a touch: a delivered message, a
coupon sent, a guide's WeCom chat, or browsing the mini-program too. A group names that list
once (`touch` = ["Message Delivered", "Coupon Sent"]); definitions say `{"event_group": "touch"}`
and follow the group when it changes, on their next refresh.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Engine, delete, insert, select

from quanyu.errors import InvalidInput, NotFound
from quanyu.store.engine import reading
from quanyu.store.models import EventGroup

_T = EventGroup.__table__
NAME_PATTERN = r"^[\w\-.]{1,64}$"  # letters (any script), digits, _ - .


class EventGroupSpec(BaseModel):
    events: list[str] = Field(min_length=1, max_length=50, description="event names in the group")
    description: str = Field(default="", max_length=500)

    @field_validator("events")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if any(not n.strip() or len(n) > 200 for n in names):
            raise ValueError("event names are 1–200 characters (事件名长度 1–200)")
        return list(dict.fromkeys(names))


class EventGroups:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, workspace_id: str, name: str, spec: EventGroupSpec, actor: str) -> dict[str, Any]:
        """Declare or replace the group `name`."""
        _check_name(name)
        row = {"workspace_id": workspace_id, "name": name, "description": spec.description,
               "events": spec.events, "updated_at": datetime.now(UTC), "updated_by": actor}  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.workspace_id == workspace_id, _T.c.name == name))
            conn.execute(insert(_T).values(**row))
        return _public(row)

    def get(self, workspace_id: str, name: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = conn.execute(select(_T).where(_T.c.workspace_id == workspace_id, _T.c.name == name)).first()
        if row is None:
            raise NotFound(f"事件组不存在 / no event group named {name!r}", code="event_group_not_found")
        return _public(row._asdict())

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(_T).where(_T.c.workspace_id == workspace_id).order_by(_T.c.name)).all()
        return [_public(r._asdict()) for r in rows]

    def mapping(self, workspace_id: str) -> dict[str, list[str]]:
        """name → event names, what the segment compiler reads."""
        return {g["name"]: g["events"] for g in self.all(workspace_id)}


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput(
            f"事件组名称无效 / invalid event group name {name!r}: 1–64 letters, digits, _ - .",
            code="invalid_event_group",
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "events": list(row["events"]), "description": row["description"],
            "updated_at": row["updated_at"].isoformat(), "updated_by": row["updated_by"]}  # fmt: skip
