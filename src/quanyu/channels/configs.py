"""Configured channels of a workspace (an SMTP server, an SMS account, an official account) and
the adapters built from them.

A journey's send step names a configuration (`via`) or uses the workspace's default for the
channel. Without a configured default, e-mail falls back to `QUANYU_SMTP_URL` and the sink to a
JSON-lines file in the data directory. Secret settings (passwords, keys) are sealed with the
vault and never echoed back.
"""

from __future__ import annotations

import contextlib
import secrets as _secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from quanyu.channels.base import ChannelAdapter, ChannelConfigError
from quanyu.channels.registry import adapter_types, build
from quanyu.errors import InvalidInput, NotFound
from quanyu.org.vault import Vault
from quanyu.store.engine import reading
from quanyu.store.models import ChannelConfig

_C = ChannelConfig.__table__


class NoChannel(ChannelConfigError):
    """No configuration serves this channel in this workspace."""


class ChannelConfigs:
    def __init__(self, engine: Engine, vault: Vault, *, smtp_url: str | None = None,
                 sink_dir: Path | None = None, allow_networks: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.engine = engine
        self.vault = vault
        self.smtp_url = smtp_url
        self.sink_dir = sink_dir
        self.allow_networks = allow_networks
        self._adapters: dict[tuple[str, str], ChannelAdapter] = {}
        self._apps: dict[tuple[str, str, str], str | None] = {}
        self._guard = threading.Lock()

    # -- configuration -------------------------------------------------------------------------

    def create(self, workspace_id: str, name: str, type_: str, settings: Mapping[str, Any],
               default: bool = False) -> dict[str, Any]:  # fmt: skip
        kinds = adapter_types()
        kind = kinds.get(type_)
        if kind is None:
            raise InvalidInput(f"未知渠道类型 / unknown channel type {type_!r}; known: {', '.join(sorted(kinds))}",
                               code="unknown_channel_type")  # fmt: skip
        plain = {k: v for k, v in settings.items() if k not in kind.secrets}
        secret = {k: str(v) for k, v in settings.items() if k in kind.secrets}
        # Which private networks outbound HTTP may reach is the deployment's decision
        # (QUANYU_WEBHOOK_ALLOW_NETWORKS), never a setting a management token can pass in.
        plain.pop("allow", None)
        plain.pop("allow_private", None)
        if kind.channel == "webhook":
            plain["allow"] = list(self.allow_networks)
        if type_ == "http_sms" and self.allow_networks:
            plain["allow_private"] = True
        try:
            build(type_, plain, secret).close()  # refuse bad settings now, not at the first send
        except ChannelConfigError as exc:
            raise InvalidInput(
                f"渠道设置无效 / invalid channel settings: {exc}", code="invalid_channel"
            ) from None
        config_id = "ch_" + _secrets.token_hex(6)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if default:
                conn.execute(update(_C).where(_C.c.workspace_id == workspace_id, _C.c.channel == kind.channel)
                             .values(is_default=False))  # fmt: skip
            conn.execute(_C.insert().values(id=config_id, workspace_id=workspace_id, name=name, channel=kind.channel,
                                            type=type_, settings=plain, secrets=self.vault.seal(secret),
                                            is_default=default, created_at=now))  # fmt: skip
        return self.get(workspace_id, config_id)

    def get(self, workspace_id: str, config_id: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = conn.execute(
                select(_C).where(_C.c.workspace_id == workspace_id, _C.c.id == config_id)
            ).first()
        if row is None:
            raise NotFound(f"渠道配置不存在 / channel config {config_id} not found", code="channel_not_found")
        return _public(row, self.vault)

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(_C).where(_C.c.workspace_id == workspace_id).order_by(_C.c.name)).all()
        return [_public(r, self.vault) for r in rows]

    # -- adapters ------------------------------------------------------------------------------

    def adapter(self, workspace_id: str, config_id: str, channel: str) -> ChannelAdapter:
        """The adapter serving `config_id` ("default:<channel>" for the workspace default)."""
        cache_key = (workspace_id, config_id)
        with self._guard:
            found = self._adapters.get(cache_key)
        if found is not None:
            return found
        adapter = self._build(workspace_id, config_id, channel)
        with self._guard:
            self._adapters.setdefault(cache_key, adapter)
            return self._adapters[cache_key]

    def app_id(self, workspace_id: str, config_id: str, channel: str) -> str | None:
        """The WeChat app a configuration sends as (its `app_id` setting), or None."""
        key = (workspace_id, config_id, channel)
        with self._guard:
            if key in self._apps:
                return self._apps[key]
        with reading(self.engine) as conn:
            if config_id.startswith("default:"):
                stmt = select(_C.c.settings).where(_C.c.workspace_id == workspace_id, _C.c.channel == channel)
                row = conn.execute(stmt.order_by(_C.c.is_default.desc(), _C.c.created_at)).first()
            else:
                row = conn.execute(select(_C.c.settings).where(_C.c.workspace_id == workspace_id,
                                                               _C.c.id == config_id)).first()  # fmt: skip
        found = str(row.settings.get("app_id")) if row is not None and row.settings.get("app_id") else None
        with self._guard:
            self._apps[key] = found
        return found

    def webhook_for(self, workspace_id: str, url: str, via: str = "") -> ChannelAdapter:
        """An adapter posting to a journey step's own URL (signed with the `via` config's secret)."""
        cache_key = (workspace_id, f"url:{via}:{url}")
        with self._guard:
            found = self._adapters.get(cache_key)
        if found is not None:
            return found
        settings: dict[str, Any] = {"url": url, "allow": list(self.allow_networks)}
        secret: dict[str, str] = {}
        if via:
            with reading(self.engine) as conn:
                row = conn.execute(
                    select(_C).where(_C.c.workspace_id == workspace_id, _C.c.id == via)
                ).first()
            if row is None:
                raise NoChannel(f"渠道配置不存在 / channel config {via} not found")
            settings = {**row.settings, "url": url}
            secret = self.vault.open(row.secrets)
        adapter = build("webhook", settings, secret)
        with self._guard:
            self._adapters.setdefault(cache_key, adapter)
            return self._adapters[cache_key]

    def _build(self, workspace_id: str, config_id: str, channel: str) -> ChannelAdapter:
        with reading(self.engine) as conn:
            if config_id.startswith("default:"):
                row = conn.execute(select(_C).where(_C.c.workspace_id == workspace_id, _C.c.channel == channel,
                                                    _C.c.is_default.is_(True))).first()  # fmt: skip
                if row is None:
                    row = conn.execute(select(_C).where(_C.c.workspace_id == workspace_id, _C.c.channel == channel)
                                       .order_by(_C.c.created_at)).first()  # fmt: skip
            else:
                row = conn.execute(
                    select(_C).where(_C.c.workspace_id == workspace_id, _C.c.id == config_id)
                ).first()
        if row is not None:
            return build(row.type, row.settings, self.vault.open(row.secrets))
        if channel == "email" and self.smtp_url:
            from quanyu.channels.email import settings_from_url

            plain = settings_from_url(self.smtp_url)
            return build(
                "smtp", plain, {"password": plain.pop("password", "")} if "password" in plain else {}
            )
        if channel == "sink" and self.sink_dir is not None:
            return build("sink", {"path": str(self.sink_dir / f"{workspace_id}.jsonl")}, {})
        raise NoChannel(
            f"没有可用的 {channel} 渠道配置 / no {channel} channel is configured (config {config_id})"
        )

    def close(self) -> None:
        with self._guard:
            adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            with contextlib.suppress(Exception):  # closing is best effort
                adapter.close()


def _public(row: Any, vault: Vault) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "channel": row.channel, "type": row.type, "settings": row.settings,
            "secrets": sorted(vault.open(row.secrets)), "default": row.is_default,
            "created_at": row.created_at.isoformat()}  # fmt: skip
