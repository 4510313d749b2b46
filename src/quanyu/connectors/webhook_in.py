"""Generic inbound webhooks: any system that can POST JSON (a CRM, a ticketing tool, an order
system, a low-code form) becomes a source, with a mapping from its JSON to Segment messages.

- **Authentication**: `X-Quanyu-Signature: sha256=<hex HMAC-SHA256(secret, signed)>` where
  `signed` is the raw body, or `{timestamp}.{body}` when `X-Quanyu-Timestamp` (unix seconds) is
  sent; a timestamp more than 5 minutes from now is refused, so a captured request cannot be
  replayed later. Signatures are compared in constant time.
- **Mapping** (the source's `mapping` setting): which items of the body become messages, and how
  each item's fields map to `type`, `event`, `userId`, `anonymousId`, `timestamp`, `messageId`,
  `properties`, `traits` and `externalIds`. Values are JSON paths (`$.buyer.phone`, the subset in
  `jsonpath`) or `{"const": …}`; `event` may be a plain literal.
- **Retries dedupe**: without a `messageId` path, an item's messageId is derived from the source
  and the item's canonical JSON, so the same item pushed twice is stored once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from quanyu.collect.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from quanyu.collect.messages import parse_time
from quanyu.connectors import jsonpath
from quanyu.connectors.jsonpath import JsonPathError, Path, key_step
from quanyu.errors import Forbidden, InvalidInput
from quanyu.journeys.effects import external_id
from quanyu.store.models import Source

MAX_BODY_BYTES = MAX_BATCH_BYTES
MAX_ITEMS = MAX_BATCH_EVENTS
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-Quanyu-Signature"
TIMESTAMP_HEADER = "X-Quanyu-Timestamp"
_TYPES = ("track", "identify")
_KEYS = frozenset({"items", "type", "event", "userId", "anonymousId", "timestamp", "messageId",
                   "properties", "traits", "externalIds"})  # fmt: skip
_ID_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# Derived messageIds: one namespace, so a derived id never collides with another connector's.
_NAMESPACE = uuid.UUID("3a4c8f0e-9b7d-4e51-a0c2-77656268686b")
LIBRARY = {"name": "quanyu-webhook", "version": "1"}


# -- signatures -----------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The `X-Quanyu-Signature` value a sender computes (used by tests and the docs' example)."""
    signed = body if timestamp is None else timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None, timestamp: str | None,
           *, require_timestamp: bool = False, now: float | None = None) -> None:  # fmt: skip
    """Raise Forbidden (`invalid_signature`, `stale_timestamp`, `missing_timestamp`) unless the
    request is signed with `secret` and, when timestamped, fresh."""
    if timestamp is not None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise Forbidden("时间戳无效 / X-Quanyu-Timestamp must be unix seconds", code="stale_timestamp")
        skew = abs((time.time() if now is None else now) - int(timestamp))
        if skew > TOLERANCE_SECONDS:
            raise Forbidden(
                f"请求已过期（时间相差 {int(skew)} 秒，上限 {TOLERANCE_SECONDS} 秒）/ stale request: the timestamp "
                f"is {int(skew)} s from now, more than {TOLERANCE_SECONDS} s (replayed or clock wrong)",
                code="stale_timestamp",
            )
    elif require_timestamp:
        raise Forbidden("缺少 X-Quanyu-Timestamp / X-Quanyu-Timestamp is required", code="missing_timestamp")
    expected = sign(secret, body, timestamp)
    # compare_digest on bytes: constant time, and a non-ASCII header cannot raise.
    if not signature or not hmac.compare_digest(signature.strip().encode("utf-8"), expected.encode("ascii")):
        raise Forbidden("Webhook 签名无效 / invalid webhook signature", code="invalid_signature")


# -- the mapping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A JSON path into the item, or a constant."""

    path: Path | None = None
    const: Any = None

    def resolve(self, item: Any) -> tuple[bool, Any]:
        return (True, self.const) if self.path is None else self.path.get(item)

    def where(self, base: str) -> str:
        """Where in the payload this value is read from (for error messages)."""
        return base + str(self.path)[1:] if self.path is not None else "(const)"


@dataclass(frozen=True)
class Mapping:
    type: str
    items: Path | None = None
    event: Value | None = None
    user_id: Value | None = None
    anonymous_id: Value | None = None
    timestamp: Value | None = None
    message_id: Value | None = None
    properties: dict[str, Value] = field(default_factory=dict)
    traits: dict[str, Value] = field(default_factory=dict)
    external_ids: tuple[tuple[str, Value], ...] = ()


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, where: str, message: str, code: str = "invalid_mapping") -> None:
        self.items.append({"path": where, "code": code, "message": message})


def parse_mapping(raw: Any) -> Mapping:
    """Validate a mapping document; every problem is reported at once with its JSON path in the
    mapping (`$.properties.total`), as InvalidInput `invalid_mapping` with `details.errors`."""
    errors = _Errors()
    if not isinstance(raw, AbcMapping):
        errors.add("$", "映射必须是 JSON 对象 / a mapping must be a JSON object")
        _raise(errors)
    for key in sorted(set(raw) - _KEYS):
        errors.add(
            "$" + key_step(str(key)), f"未知字段 / unknown mapping field {key!r}; known: {sorted(_KEYS)}"
        )
    mtype = raw.get("type", "track")
    if mtype not in _TYPES:
        errors.add("$.type", f"type 须为 track 或 identify / type must be one of {list(_TYPES)}")
    items = None
    if raw.get("items") is not None:
        items = _path(raw["items"], "$.items", errors)
    event = None
    if mtype == "track":
        if raw.get("event") in (None, ""):
            errors.add(
                "$.event",
                "track 需要 event（名称或 JSON 路径）/ track needs an event (a name or a JSON path)",
            )
        else:
            event = _value(raw["event"], "$.event", errors, literal=True)
    elif raw.get("event") is not None:
        errors.add("$.event", "identify 没有 event / identify has no event")
    ids = {k: _value(raw[k], f"$.{k}", errors) if raw.get(k) is not None else None
           for k in ("userId", "anonymousId", "timestamp", "messageId")}  # fmt: skip
    if ids["userId"] is None and ids["anonymousId"] is None:
        errors.add("$", "需要 userId 或 anonymousId 路径 / a userId or anonymousId path is required",
                   code="missing_identity")  # fmt: skip
    properties = _fields(raw.get("properties"), "$.properties", errors)
    traits = _fields(raw.get("traits"), "$.traits", errors)
    if mtype == "identify" and properties:
        errors.add(
            "$.properties", "identify 用 traits 而非 properties / identify maps traits, not properties"
        )
    external = _external_ids(raw.get("externalIds"), errors)
    if errors.items:
        _raise(errors)
    return Mapping(mtype, items, event, ids["userId"], ids["anonymousId"], ids["timestamp"], ids["messageId"],
                   properties, traits, external)  # fmt: skip


def _raise(errors: _Errors) -> None:
    first = errors.items[0]
    raise InvalidInput(
        f"映射无效 / invalid mapping: {first['path']}: {first['message']}"
        + (f" (+{len(errors.items) - 1} more)" if len(errors.items) > 1 else ""),
        code="invalid_mapping",
        details={"errors": errors.items},
    )


def _path(text: Any, where: str, errors: _Errors) -> Path | None:
    try:
        return jsonpath.parse(text)
    except JsonPathError as err:
        errors.add(where, str(err), code="invalid_path")
        return None


def _value(raw: Any, where: str, errors: _Errors, literal: bool = False) -> Value | None:
    if isinstance(raw, AbcMapping) and set(raw) == {"const"}:
        return Value(const=raw["const"])
    if isinstance(raw, str) and raw.startswith("$"):
        path = _path(raw, where, errors)
        if path is not None and path.wildcards:
            errors.add(where, "值路径不能含 [*] / a value path may not contain [*]", code="invalid_path")
        return Value(path) if path is not None else None
    if literal and isinstance(raw, str):
        return Value(const=raw)
    errors.add(where, "须为以 $ 开头的 JSON 路径或 {\"const\": 值} / expected a JSON path starting with $ "
               "or {\"const\": value}")  # fmt: skip
    return None


def _fields(raw: Any, where: str, errors: _Errors) -> dict[str, Value]:
    if raw is None:
        return {}
    if not isinstance(raw, AbcMapping):
        errors.add(where, "须为 {名称: 路径} 对象 / expected an object of {name: path}")
        return {}
    out: dict[str, Value] = {}
    for name, spec in raw.items():
        at = where + key_step(str(name))
        if not name or len(name) > 200:
            errors.add(at, "名称须为 1–200 个字符 / a name must be 1–200 characters")
            continue
        value = _value(spec, at, errors)
        if value is not None:
            out[name] = value
    return out


def _external_ids(raw: Any, errors: _Errors) -> tuple[tuple[str, Value], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add("$.externalIds", "须为 [{type, path}] 列表 / expected a list of {type, path}")
        return ()
    out: list[tuple[str, Value]] = []
    for i, spec in enumerate(raw):
        at = f"$.externalIds[{i}]"
        if not isinstance(spec, AbcMapping) or set(spec) - {"type", "path"}:
            errors.add(at, "须为 {type, path} / expected {type, path}")
            continue
        id_type = spec.get("type")
        if not isinstance(id_type, str) or not id_type or len(id_type) > 64 or set(id_type) - _ID_TYPE_CHARS:
            errors.add(at + ".type", "标识类型须为小写字母、数字、下划线 / type must be lowercase letters, digits "
                       "and _ (phone, email, member_card, …)")  # fmt: skip
            continue
        value = _value(spec.get("path"), at + ".path", errors)
        if value is not None:
            out.append((id_type, value))
    return tuple(out)


# -- applying it ----------------------------------------------------------------------------------


class MappingError(ValueError):
    """Why one item could not be mapped: a stable code, a bilingual message, where in the payload."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


@dataclass
class Item:
    index: int
    path: str  # where the item is in the payload
    raw: Any
    message: dict[str, Any] | None = None
    error: MappingError | None = None

    def problem(self) -> dict[str, Any]:
        assert self.error is not None
        return {"index": self.index, "path": self.error.path, "code": self.error.code,
                "message": f"{self.error.message} ({self.error.path})"}  # fmt: skip


def decode(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"请求体超过 {MAX_BODY_BYTES} 字节 / body exceeds {MAX_BODY_BYTES} bytes",
                           code="request_too_large")  # fmt: skip
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"请求体不是 JSON / the body is not JSON: {exc}", code="invalid_json") from None


def select_items(mapping: Mapping, payload: Any) -> list[tuple[str, Any]]:
    """The (payload path, item) pairs to map: what `items` reaches, else the body itself (each
    element of a top-level list). Too many items is an InvalidInput."""
    if mapping.items is not None:
        found = mapping.items.find(payload)
        if not found and not _container_exists(mapping.items, payload):
            raise InvalidInput(
                f"items 路径 {mapping.items} 在请求中不存在 / the items path {mapping.items} reaches nothing",
                code="no_items", details={"path": str(mapping.items)},
            )  # fmt: skip
    elif isinstance(payload, list):
        found = [(f"$[{i}]", v) for i, v in enumerate(payload)]
    else:
        found = [("$", payload)]
    if len(found) > MAX_ITEMS:
        raise InvalidInput(f"一次最多 {MAX_ITEMS} 条 / at most {MAX_ITEMS} items per request",
                           code="too_many_items")  # fmt: skip
    return found


def _container_exists(path: Path, payload: Any) -> bool:
    # `$.data.orders[*]` over an empty list is a push with nothing in it, not a wrong mapping.
    steps = path.steps
    for i, step in enumerate(steps):
        if isinstance(step, jsonpath.Wildcard):
            return bool(Path(steps[:i]).find(payload))
    return False


def map_items(mapping: Mapping, payload: Any, source_id: str) -> list[Item]:
    out = []
    for index, (where, raw) in enumerate(select_items(mapping, payload)):
        item = Item(index, where, raw)
        try:
            item.message = map_item(mapping, raw, where, source_id)
        except MappingError as err:
            item.error = err
        out.append(item)
    return out


def map_item(mapping: Mapping, item: Any, where: str, source_id: str) -> dict[str, Any]:
    """One Segment message from one item, or MappingError naming the payload path at fault."""
    if not isinstance(item, dict):
        raise MappingError("invalid_item", "条目必须是 JSON 对象 / each item must be a JSON object", where)
    message: dict[str, Any] = {"type": mapping.type, "context": {"library": dict(LIBRARY)}}
    if mapping.event is not None:
        message["event"] = _text(mapping.event, item, where, "event", required=True)
    for key, value in (("userId", mapping.user_id), ("anonymousId", mapping.anonymous_id)):
        if value is not None:
            text = _text(value, item, where, key)
            if text:
                message[key] = text
    if not message.get("userId") and not message.get("anonymousId"):
        paths = [v.where(where) for v in (mapping.user_id, mapping.anonymous_id) if v is not None]
        raise MappingError("missing_identity", "条目没有 userId 或 anonymousId / the item has no userId or "
                           f"anonymousId at {' or '.join(paths)}", paths[0] if paths else where)  # fmt: skip
    if mapping.timestamp is not None:
        found, raw = mapping.timestamp.resolve(item)
        if found and raw not in (None, ""):
            message["timestamp"] = _timestamp(raw, mapping.timestamp.where(where))
    message_id = _text(mapping.message_id, item, where, "messageId") if mapping.message_id else None
    message["messageId"] = message_id or derived_message_id(source_id, item)
    props = _object(mapping.properties, item)
    traits = _object(mapping.traits, item)
    if mapping.type == "identify":
        message["traits"] = traits
    else:
        message["properties"] = props
        if traits:
            message["context"]["traits"] = traits
    external = []
    for id_type, value in mapping.external_ids:
        text = _text(value, item, where, f"externalIds.{id_type}")
        if text:
            external.append(external_id(id_type, text))
    if external:
        message["context"]["externalIds"] = external
    return message


def derived_message_id(source_id: str, item: Any) -> str:
    """The same item from the same source always gets the same messageId (retries dedupe)."""
    canonical = orjson.dumps(item, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return str(uuid.uuid5(_NAMESPACE, f"{source_id}/{hashlib.sha256(canonical).hexdigest()}"))


def _text(value: Value, item: Any, base: str, name: str, required: bool = False) -> str | None:
    found, raw = value.resolve(item)
    where = value.where(base)
    if not found or raw is None or raw == "":
        if required:
            raise MappingError(
                "missing_value", f"{name} 在 {where} 处没有值 / {name}: nothing at {where}", where
            )
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MappingError("invalid_value", f"{name} 须为字符串或数字 / {name} must be a string or a number, "
                           f"found {type(raw).__name__} at {where}", where)  # fmt: skip
    text = raw if isinstance(raw, str) else (str(int(raw)) if float(raw).is_integer() else str(raw))
    if len(text) > 255:
        raise MappingError(
            "invalid_value", f"{name} 超过 255 字符 / {name} is longer than 255 at {where}", where
        )
    return text


def _timestamp(raw: Any, where: str) -> str:
    """ISO-8601, or epoch seconds / milliseconds (a number or a string of digits) → ISO-8601 UTC."""
    number: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        number = float(raw)
    elif isinstance(raw, str) and raw.strip().replace(".", "", 1).isdigit():
        number = float(raw.strip())
    if number is not None:
        # Seconds until the year 5138; anything bigger is milliseconds (13 digits today).
        seconds = number / 1000 if number >= 1e11 else number
        try:
            return datetime.fromtimestamp(seconds, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(raw, str):
        parsed = parse_time(raw.strip())
        if parsed is not None:
            return parsed.isoformat()
    raise MappingError("invalid_timestamp", f"时间无法识别（须为 ISO-8601 或纪元秒/毫秒）/ timestamp {raw!r} is not "
                       f"ISO-8601 or epoch seconds/ms at {where}", where)  # fmt: skip


def _object(fields: dict[str, Value], item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        found, raw = value.resolve(item)
        if found:
            out[name] = raw  # a missing optional field is left out, not an error
    return out


def save_mapping(engine: Engine, workspace_id: str, source_id: str, raw: dict[str, Any]) -> None:
    """Store a (validated) mapping in the source's settings, where the push route reads it."""
    table = Source.__table__
    where = (table.c.id == source_id, table.c.workspace_id == workspace_id)
    with engine.begin() as conn:
        settings = conn.execute(select(table.c.settings).where(*where)).scalar_one_or_none()
        if settings is None:
            settings = {}
        conn.execute(update(table).where(*where).values(settings={**settings, "mapping": raw}))
