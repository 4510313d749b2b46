"""Sources: where events come from. Each has a write key (stored hashed) and channel defaults."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from quanyu.collect.source_types import (
    DOMAINS,
    PRESENCES,
    SOURCE_TYPES,
    is_secret_setting,
)
from quanyu.errors import InvalidInput, NotFound, QuanyuError
from quanyu.org.credentials import digest, hint, new_id, new_secret
from quanyu.org.vault import Vault
from quanyu.store.engine import reading
from quanyu.store.models import Source


@dataclass(frozen=True)
class SourceInfo:
    id: str
    workspace_id: str
    name: str
    type: str
    channel: str
    domain: str
    presence: str
    write_key_hint: str
    settings: dict[str, Any] = field(default_factory=dict)
    secret_settings: list[str] = field(default_factory=list)
    created_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "name": self.name,
            "type": self.type,
            "channel": self.channel,
            "domain": self.domain,
            "presence": self.presence,
            "write_key_hint": self.write_key_hint,
            "settings": self.settings,
            "secret_settings": self.secret_settings,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class NewSource:
    source: SourceInfo
    write_key: str


class Sources:
    def __init__(self, engine: Engine, vault: Vault) -> None:
        self.engine = engine
        self.vault = vault

    def create(
        self,
        workspace_id: str,
        name: str,
        type_: str,
        settings: dict[str, Any] | None = None,
        *,
        domain: str | None = None,
        presence: str | None = None,
    ) -> NewSource:
        stype = SOURCE_TYPES.get(type_)
        if stype is None:
            raise InvalidInput(
                f"未知的来源类型 / unknown source type {type_!r}; choose one of: {', '.join(SOURCE_TYPES)}",
                code="unknown_source_type",
            )
        if not name.strip():
            raise InvalidInput("来源名称不能为空 / source name must not be empty")
        domain = domain or stype.domain
        presence = presence or stype.presence
        if domain not in DOMAINS or presence not in PRESENCES:
            raise InvalidInput("domain must be public|private and presence online|offline")
        plain, secret = _split_settings(settings or {})
        _check_connector_settings(type_, plain)
        write_key = new_secret("wk")
        row = {
            "id": new_id("src"),
            "workspace_id": workspace_id,
            "name": name.strip(),
            "type": type_,
            "channel": stype.channel,
            "domain": domain,
            "presence": presence,
            "write_key_hash": digest(write_key),
            "write_key_hint": hint(write_key),
            "settings": plain,
            "secrets": self.vault.seal(secret),
            "created_at": datetime.now(UTC),
            "disabled_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(Source.__table__.insert().values(**row))
        return NewSource(_info(row, sorted(secret)), write_key)

    def by_write_key(self, write_key: str) -> SourceInfo | None:
        return self._one(Source.write_key_hash == digest(write_key))

    def by_id(self, source_id: str) -> SourceInfo | None:
        """An enabled source by id alone (connector push URLs carry only the source id)."""
        return self._one(Source.id == source_id)

    def get(self, workspace_id: str, source_id: str) -> SourceInfo:
        info = self._one(Source.id == source_id, Source.workspace_id == workspace_id)
        if info is None:
            raise NotFound(f"来源不存在 / source {source_id} not found", code="source_not_found")
        return info

    def list(self, workspace_id: str) -> builtins.list[SourceInfo]:
        stmt = select(Source).where(Source.workspace_id == workspace_id).order_by(Source.created_at)
        with reading(self.engine) as conn:
            return [self._to_info(r._mapping) for r in conn.execute(stmt)]

    def all(self) -> builtins.list[SourceInfo]:
        with reading(self.engine) as conn:
            return [self._to_info(r._mapping) for r in conn.execute(select(Source))]

    def secret_settings(self, workspace_id: str, source_id: str) -> dict[str, str]:
        stmt = select(Source.secrets).where(Source.id == source_id, Source.workspace_id == workspace_id)
        with reading(self.engine) as conn:
            sealed = conn.execute(stmt).scalar_one_or_none()
        return self.vault.open(sealed)

    def _one(self, *where: Any) -> SourceInfo | None:
        stmt = select(Source).where(*where, Source.disabled_at.is_(None))
        with reading(self.engine) as conn:
            row = conn.execute(stmt).first()
        return self._to_info(row._mapping) if row else None

    def _to_info(self, row: Any) -> SourceInfo:
        return _info(dict(row), sorted(self.vault.open(row["secrets"])))


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain = {k: v for k, v in settings.items() if not is_secret_setting(k)}
    secret = {k: str(v) for k, v in settings.items() if is_secret_setting(k)}
    return plain, secret


def _info(row: dict[str, Any], secret_names: list[str]) -> SourceInfo:
    return SourceInfo(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        type=row["type"],
        channel=row["channel"],
        domain=row["domain"],
        presence=row["presence"],
        write_key_hint=row["write_key_hint"],
        settings=dict(row["settings"] or {}),
        secret_settings=secret_names,
        created_at=row["created_at"],
    )


def _check_connector_settings(type_: str, plain: dict[str, Any]) -> None:
    """Refuse a webhook mapping or a form that could never work when the source is created, with
    the same located errors as the routes that edit them (imported here: connectors import collect)."""
    if "mapping" in plain:
        from quanyu.connectors.webhook_in import parse_mapping

        parse_mapping(plain["mapping"])
    if type_ == "form" and plain.get("title") is not None:
        from quanyu.connectors.forms import parse_config

        try:
            parse_config("", plain)
        except QuanyuError as err:  # a 409 when a saved form is opened; here it is bad input
            raise InvalidInput(err.message, code=err.code, details=err.details) from None
