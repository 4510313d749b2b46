"""Reading people: find a profile by identifier, its identifiers, timeline, links and history."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import ibis
import orjson
import sqlglot

from quanyu.errors import InvalidInput, NotFound
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.membership import profile_events
from quanyu.warehouse.base import Warehouse
from quanyu.warehouse.events import Cursor, past_cursor, to_micros
from quanyu.warehouse.schema import JSON_COLUMNS

TIMELINE_FIELDS = (
    "message_id", "timestamp", "type", "event", "name", "channel", "source_type", "source_id", "domain",
    "presence", "order_id", "amount", "currency", "line_items", "properties", "store_id", "guide_id",
    "utm_source", "utm_campaign",
)  # fmt: skip


def identifier_key(types: IdentifierTypes, id_type: str, value: str, scope: str = "") -> str:
    """The graph key of a (type, value, scope) someone typed; InvalidInput (400) saying why not."""
    if id_type not in types:
        known = ", ".join(t.name for t in types)
        raise InvalidInput(f"未知的标识类型 / unknown identifier type {id_type!r} (known: {known})",
                           code="invalid_identifier")  # fmt: skip
    ident = types.identify(id_type, value, scope)
    if ident is None:
        hint = " (需要 scope=应用ID / needs scope=app id)" if types.get(id_type).scoped and not scope else ""
        raise InvalidInput(
            f"无效的标识值 / not a valid {id_type} value: {value!r}{hint}", code="invalid_identifier"
        )
    return ident.key


def find(
    warehouse: Warehouse, workspace_id: str, id_type: str, value: str, scope: str = "",
    types: IdentifierTypes | None = None,
) -> str:  # fmt: skip
    """The id of the profile an identifier belongs to; NotFound (404) when nobody has it."""
    key = identifier_key(types or IdentifierTypes(), id_type, value, scope)
    hit = [
        r for r in warehouse.query(_point("key", key), {}).to_pylist() if r["workspace_id"] == workspace_id
    ]
    if not hit:
        raise NotFound(f"未找到该标识的用户 / no profile has {key}", code="profile_not_found")
    return str(hit[0]["profile_id"])


def lookup(
    warehouse: Warehouse, workspace_id: str, id_type: str, value: str, scope: str = "",
    types: IdentifierTypes | None = None,
) -> dict[str, Any]:  # fmt: skip
    return profile(warehouse, workspace_id, find(warehouse, workspace_id, id_type, value, scope, types))


def resolve_id(warehouse: Warehouse, workspace_id: str, pid: str) -> str:
    """The living profile id for `pid` (itself, or where it merged into); NotFound otherwise."""
    return _members(warehouse, workspace_id, pid)[0]


def _members(warehouse: Warehouse, workspace_id: str, pid: str) -> tuple[str, list[dict[str, Any]]]:
    rows = _identifiers(warehouse, workspace_id, pid)
    if rows:
        return pid, rows
    resolved = _follow(warehouse, workspace_id, pid)
    rows = _identifiers(warehouse, workspace_id, resolved) if resolved != pid else []
    if not rows:
        raise NotFound(f"用户不存在 / profile {pid} not found", code="profile_not_found")
    return resolved, rows


def profile(warehouse: Warehouse, workspace_id: str, pid: str) -> dict[str, Any]:
    """A profile with its identifiers; an id that merged away answers with its survivor."""
    resolved, rows = _members(warehouse, workspace_id, pid)
    return {
        "profile_id": resolved,
        "redirected_from": pid if resolved != pid else None,
        "first_seen": rows[0]["first_seen"].isoformat(),
        "identifiers": [
            {"type": r["id_type"], "value": r["value"], **({"scope": r["scope"]} if r["scope"] else {}),
             "first_seen": r["first_seen"].isoformat()}
            for r in rows
        ],
    }  # fmt: skip


def timeline(
    warehouse: Warehouse, workspace_id: str, pid: str, cursor: str | None = None, limit: int = 50,
    order: str = "desc",
) -> dict[str, Any]:  # fmt: skip
    """Every event of the person across channels, in time order, keyset-paginated."""
    if order not in ("asc", "desc"):
        raise InvalidInput("order 只能是 asc 或 desc / order must be asc or desc", code="invalid_order")
    resolved = resolve_id(warehouse, workspace_id, pid)
    mine = profile_events(
        warehouse.table("events"), warehouse.table("identity_event_keys"), warehouse.table("identity_nodes"),
        workspace_id, [resolved],
    )  # fmt: skip
    if cursor:
        mine = mine.filter(past_cursor(mine, Cursor.decode(cursor), newest_first=order == "desc"))
    keys = [mine.timestamp, mine.message_id]
    ordered = mine.order_by([k.desc() for k in keys] if order == "desc" else keys)
    rows = warehouse.execute(ordered.select(*TIMELINE_FIELDS).limit(limit + 1)).to_pylist()
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = Cursor(to_micros(rows[-1]["timestamp"]), rows[-1]["message_id"]).encode() if more else None
    return {"profile_id": resolved, "items": [_event_item(r) for r in rows], "next_cursor": next_cursor}


def history(warehouse: Warehouse, workspace_id: str, pid: str) -> dict[str, Any]:
    """Merges and splits this person took part in, newest first, with their explanations."""
    resolved = resolve_id(warehouse, workspace_id, pid)
    changes = warehouse.table("identity_changes")
    involved = changes.filter(
        changes.workspace_id == workspace_id,
        (changes.profile_id == resolved)
        | changes.other_profile_ids.contains(resolved)
        | (changes.profile_id == pid)
        | changes.other_profile_ids.contains(pid),
    )
    rows = warehouse.execute(involved.order_by([ibis.desc("at"), "change_id"]).limit(200)).to_pylist()
    return {
        "profile_id": resolved,
        "items": [
            {"change_id": r["change_id"], "at": r["at"].astimezone(UTC).isoformat(), "kind": r["kind"],
             "profile_id": r["profile_id"], "other_profile_ids": r["other_profile_ids"],
             "explanation": r["explanation"], "reason": _json(r["reason"])}
            for r in rows
        ],
    }  # fmt: skip


def links_of(warehouse: Warehouse, workspace_id: str, pid: str) -> dict[str, Any]:
    """The links that hold this person together (and those refused at their identifiers)."""
    resolved = resolve_id(warehouse, workspace_id, pid)
    nodes = warehouse.table("identity_nodes")
    mine = nodes.filter(nodes.workspace_id == workspace_id, nodes.profile_id == resolved)
    keys = {r["key"] for r in warehouse.execute(mine.select("key")).to_pylist()}
    edges = warehouse.table("identity_edges")
    touching = edges.filter(edges.workspace_id == workspace_id).filter(
        edges.a_key.isin(mine.key) | edges.b_key.isin(mine.key)
    )
    rows = warehouse.execute(touching.order_by(["first_seen", "a_key", "b_key"]).limit(1000)).to_pylist()
    excl = warehouse.table("identity_exclusions")
    wrong = {
        (r["a_key"], r["b_key"])
        for r in warehouse.execute(
            excl.filter(
                excl.workspace_id == workspace_id, excl.a_key.isin(mine.key) | excl.b_key.isin(mine.key)
            )
        ).to_pylist()
    }
    items = []
    for r in rows:
        status = (
            "excluded" if (r["a_key"], r["b_key"]) in wrong
            else "active" if r["a_key"] in keys and r["b_key"] in keys
            else "refused"
        )  # fmt: skip
        items.append({"a": r["a_key"], "b": r["b_key"], "status": status, "kind": r["kind"],
                      "channel": r["channel"], "source_type": r["source_type"], "message_id": r["message_id"],
                      "first_seen": r["first_seen"].astimezone(UTC).isoformat()})  # fmt: skip
    return {"profile_id": resolved, "items": items}


def _event_item(row: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_COLUMNS:
        if key in row:
            row[key] = _json(row[key])
    row["timestamp"] = row["timestamp"].astimezone(UTC).isoformat()
    props = row.get("properties") or {}
    # What a person reading the timeline looks for first: products, money and coupons.
    row["products"] = row.pop("line_items") or props.get("products") or []
    row["coupon"] = props.get("coupon") or props.get("coupon_code")
    return row


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _identifiers(warehouse: Warehouse, workspace_id: str, pid: str) -> list[dict[str, Any]]:
    rows = [
        r
        for r in warehouse.query(_point("profile_id", pid), {}).to_pylist()
        if r["workspace_id"] == workspace_id
    ]
    return sorted(rows, key=lambda r: (r["first_seen"], r["id_type"], r["value"]))


def _follow(warehouse: Warehouse, workspace_id: str, pid: str) -> str:
    seen = {pid}
    for _ in range(32):  # chains are short; the bound only guards against a cycle
        hit = warehouse.query(_REDIRECT, {"ws": workspace_id, "pid": pid}).to_pylist()
        if not hit or hit[0]["profile_id"] in seen:
            return pid
        pid = hit[0]["profile_id"]
        seen.add(pid)
    return pid


def _point(column: str, value: str) -> sqlglot.exp.Expression:
    """Nodes whose `column` equals `value`, as one equality with a constant: the shape the
    engine answers from its index (the workspace is checked on the few rows it returns). The
    value is a bound literal in the tree, never spliced into SQL text."""
    return (
        sqlglot.select("workspace_id", "profile_id", "id_type", "value", "scope", "first_seen")
        .from_("identity_nodes")
        .where(sqlglot.exp.column(column).eq(sqlglot.exp.Literal.string(value)))
    )


_REDIRECT = (
    sqlglot.select("profile_id")
    .from_("identity_redirects")
    .where("workspace_id = $ws AND old_profile_id = $pid")
    .order_by("at DESC")
    .limit(1)
)
