"""Which adapter type builds which channel adapter, built-ins and plugins alike."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Factory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterType:
    type: str
    channel: str
    factory: Factory
    label: str
    secrets: tuple[str, ...] = ()  # settings that are stored encrypted (passwords, keys)


_TYPES: dict[str, AdapterType] = {}
# Built-in adapter modules; importing one registers its types.
_BUILTINS = (
    "quanyu.channels.email",
    "quanyu.channels.webhook",
    "quanyu.channels.sink",
    "quanyu.channels.sms.aliyun",
    "quanyu.channels.sms.tencent",
    "quanyu.channels.sms.generic",
    "quanyu.channels.wechat.template",
    "quanyu.channels.wechat.wecom",
)
_loaded = False


def register(kind: AdapterType) -> None:
    _TYPES[kind.type] = kind


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    for ep in entry_points(group="quanyu.channels"):
        try:
            register(ep.load())
        except Exception:
            log.exception("channel plugin %s could not be loaded", ep.name)


def adapter_types() -> dict[str, AdapterType]:
    _load()
    return dict(_TYPES)


def build(type_: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> ChannelAdapter:
    """An adapter of `type_`; unknown types and bad settings raise `ChannelConfigError`."""
    kinds = adapter_types()
    if type_ not in kinds:
        raise ChannelConfigError(
            f"未知渠道类型 {type_!r} / unknown channel type {type_!r} (known: {', '.join(sorted(kinds))})"
        )
    return kinds[type_].factory(settings, secrets)
