"""Every import format by kind (and platform, for orders)."""

from __future__ import annotations

from typing import Any

from quanyu.connectors.imports import customers, offline, orders
from quanyu.connectors.imports.formats import Format
from quanyu.errors import InvalidInput

KINDS = ("orders", "pos", "signups", "live", "customers")


def find(kind: str, platform: str | None = None) -> Format:
    """The format for `kind` (and `platform` for orders), or InvalidInput naming the choices."""
    if kind == "orders":
        if platform not in orders.FORMATS:
            raise InvalidInput(
                f"请用 --platform 指定平台 / --platform must be one of {', '.join(orders.FORMATS)}"
                + (f" (got {platform!r})" if platform else ""),
                code="unknown_platform",
            )
        return orders.FORMATS[platform]
    if kind == "customers":
        return customers.FORMAT
    if kind in offline.FORMATS:
        return offline.FORMATS[kind]
    raise InvalidInput(
        f"未知导入类型 / unknown import kind {kind!r}: one of {', '.join(KINDS)}", code="unknown_kind"
    )


def describe() -> list[dict[str, Any]]:
    """Each format with its columns (field and accepted header names), for docs, API and CLI."""
    formats = [*orders.FORMATS.values(), *offline.FORMATS.values(), customers.FORMAT]
    return [
        {
            "kind": f.kind,
            "format": f.name,
            "label": f.label,
            "source_types": sorted(f.source_types),
            "columns": [
                {"field": c.field, "headers": list(c.aliases[1:]) or [c.field], "kind": c.kind,
                 "required": c.required}
                for c in f.columns
            ],
        }
        for f in formats
    ]  # fmt: skip
