"""The profile fields conditions may name: an allow list with each field's kind.

Tag rules and profile search refer to fields by these names only; anything else is refused
before a query is built. `traits.<key>` reaches a merged trait (its text, or its number when
compared with one); `tags` is searchable but not usable in tag rules (a rule that read tags
could depend on itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from quanyu.errors import InvalidInput


class Kind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    TIMESTAMP = "timestamp"
    TEXT = "text"
    BOOLEAN = "boolean"
    TEXT_LIST = "text_list"
    TRAIT = "trait"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    label: str
    column: str = ""  # the profiles column (for traits: "traits")
    trait: str = ""  # the trait key, for `traits.<key>`


_COLUMNS = (
    ("event_count", Kind.INTEGER, "事件数 Events"),
    ("order_count", Kind.INTEGER, "订单数 Orders"),
    ("revenue", Kind.NUMBER, "消费金额 Revenue"),
    ("refund_count", Kind.INTEGER, "退款单数 Refunds"),
    ("refund_amount", Kind.NUMBER, "退款金额 Refunded amount"),
    ("net_revenue", Kind.NUMBER, "净消费金额 Net revenue"),
    ("avg_order_value", Kind.NUMBER, "客单价 Average order value"),
    ("first_seen", Kind.TIMESTAMP, "首次出现 First seen"),
    ("last_seen", Kind.TIMESTAMP, "最近出现 Last seen"),
    ("first_purchase_at", Kind.TIMESTAMP, "首次购买 First purchase"),
    ("last_purchase_at", Kind.TIMESTAMP, "最近购买 Last purchase"),
    ("preferred_channel", Kind.TEXT, "偏好渠道 Preferred channel"),
    ("first_touch_channel", Kind.TEXT, "首次触点渠道 First-touch channel"),
    ("first_touch_source", Kind.TEXT, "首次来源 First-touch source"),
    ("first_touch_campaign", Kind.TEXT, "首次活动 First-touch campaign"),
    ("in_private_domain", Kind.BOOLEAN, "私域 In private domain"),
    ("in_public_domain", Kind.BOOLEAN, "公域 In public domain"),
    ("online", Kind.BOOLEAN, "线上 Online"),
    ("offline", Kind.BOOLEAN, "线下 Offline"),
    ("channels", Kind.TEXT_LIST, "到访渠道 Channels seen"),
    ("reachable_channels", Kind.TEXT_LIST, "可触达渠道 Reachable channels"),
    ("identifier_count", Kind.INTEGER, "标识数 Identifiers"),
    ("rfm_recency", Kind.INTEGER, "R 近度 Recency score"),
    ("rfm_frequency", Kind.INTEGER, "F 频度 Frequency score"),
    ("rfm_monetary", Kind.INTEGER, "M 额度 Monetary score"),
    ("rfm_segment", Kind.TEXT, "RFM 分群 RFM segment"),
)

FIELDS: dict[str, Field] = {name: Field(name, kind, label, name) for name, kind, label in _COLUMNS}
TAGS_FIELD = Field("tags", Kind.TEXT_LIST, "标签 Tags", "tags")

# Trait keys usable in conditions: word characters (any script), dots and dashes, starting with a
# word character. They are looked up as map keys, never parsed as JSON paths.
_TRAIT_KEY = re.compile(r"^\w[\w.\-]{0,63}$")


def resolve(name: str, *, allow_tags: bool) -> Field:
    """The field `name` refers to; InvalidInput for anything outside the allow list."""
    if name in FIELDS:
        return FIELDS[name]
    if name == "tags" and allow_tags:
        return TAGS_FIELD
    if name.startswith("traits."):
        key = name.removeprefix("traits.")
        if _TRAIT_KEY.match(key):
            return Field(name, Kind.TRAIT, f"属性 Trait {key}", "traits", key)
        raise InvalidInput(
            f"属性名无效 / invalid trait name {key!r} (letters, digits, _ . -, at most 64)",
            code="invalid_condition",
        )
    known = ", ".join([*FIELDS, *(["tags"] if allow_tags else []), "traits.<key>"])
    raise InvalidInput(f"未知字段 / unknown field {name!r}; known fields: {known}", code="invalid_condition")
