"""Customer lists from a CRM or a spreadsheet: one `identify` per customer.

Columns are found by the usual Chinese and English names (客户编号/customer_id, 手机号/phone,
…) or named on the command line (`--map 会员手机=phone`); `--map 列名=traits.xxx` carries any
other column as a trait. The customer id becomes the `userId`: the CRM is the brand's own system
of record, so its id is the strongest identifier a person can have.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from quanyu.connectors.imports.columns import col
from quanyu.connectors.imports.formats import Built, Context, Format, Output, Parsed, identity, iso
from quanyu.connectors.imports.report import Problem

COLUMNS = (
    col("customer_id", "客户编号", "客户ID", "会员ID", "用户ID", "id", kind="id"),
    col("name", "姓名", "客户姓名", "会员姓名"),
    col("phone", "手机号", "手机", "联系电话", "mobile", kind="phone"),
    col("email", "邮箱", "电子邮箱", "e-mail", kind="email"),
    col("member_card", "会员卡号", "卡号", kind="id"),
    col("gender", "性别"),
    col("birthday", "生日", "出生日期"),
    col("city", "城市", "所在城市"),
    col("province", "省份", "省"),
    col("level", "会员等级", "等级"),
    col("company", "公司", "公司名称"),
    col("tags", "标签"),
    col("created_at", "创建时间", "注册时间", "入会时间", kind="time"),
    col("updated_at", "更新时间", "最后修改时间", kind="time"),
)
_IDENTIFIERS = ("phone", "email", "member_card")


def build_customers(rows: list[Parsed], ctx: Context) -> Output:
    out = Output()
    for row in rows:
        v = row.values
        if not any(v.get(k) for k in ("customer_id", *_IDENTIFIERS)):
            out.problems.append(Problem(row.line, None, "missing_identifier",
                                        "没有客户编号、手机号、邮箱或会员卡号 / no customer id, phone, e-mail or "
                                        "member card"))  # fmt: skip
            continue
        traits: dict[str, Any] = {}
        for key, value in v.items():
            if key in ("customer_id", "created_at", "updated_at"):
                continue
            if key.startswith("traits."):
                traits[key.removeprefix("traits.")] = value
            elif key == "tags":
                traits["tags"] = [t.strip() for t in str(value).replace("，", ",").split(",") if t.strip()]
            elif "*" not in str(value) or key not in _IDENTIFIERS:
                traits[key] = value
        if v.get("created_at"):
            traits["created_at"] = iso(v["created_at"])
        customer_id = str(v["customer_id"]) if v.get("customer_id") else None
        first = next(str(v[k]) for k in ("customer_id", *_IDENTIFIERS) if v.get(k))
        who = identity(user_id=customer_id, anonymous_id=None if customer_id else f"crm-{first}")
        message: dict[str, Any] = {"type": "identify", "traits": traits, **who}
        at = v.get("updated_at") or v.get("created_at")
        if at is not None:
            message["timestamp"] = iso(at)
        # The same customer with the same values is the same message; a changed row is a new one.
        key = f"customer:{first}:{hash_values(traits, at)}"
        out.messages.append(Built(row.line, key, message))
    return out


def hash_values(traits: dict[str, Any], at: Any) -> str:
    return hashlib.sha256(
        orjson.dumps([traits, iso(at) if at else ""], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:32]


FORMAT = Format("customers", "customers", "客户名单 Customer list", frozenset(), COLUMNS, build_customers,
                mappable=True)  # fmt: skip
