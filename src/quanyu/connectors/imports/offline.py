"""Offline touchpoints: store tills (POS), event and exhibition sign-up lists, and live-stream
interaction exports.

- POS: one row per item of a receipt (门店编号, 小票号, 交易时间, 会员卡号, 手机号, 商品, 数量, 金额,
  导购工号). A sale becomes `Order Completed` with the store and the guide; a return (交易类型
  退货) becomes `Order Refunded`. The member card and the phone typed at the till identify the
  buyer.
- Sign-ups: one row per registrant (姓名, 手机号, 邮箱, 公司, 活动名称, 报名时间, 是否签到).
  `Event Registered`, and `Event Attended` for those checked in.
- Live streams: one row per interaction (用户ID, 行为, 时间, 直播间ID, 评论内容, 订单号, 金额):
  watching, commenting, liking, sharing, following and buying become `Live Stream Watched`,
  `Live Stream Commented`, …, and `Order Completed` with the live room.
"""

from __future__ import annotations

from typing import Any

from quanyu.connectors.imports.columns import col
from quanyu.connectors.imports.formats import Built, Context, Format, Output, Parsed, identity, iso
from quanyu.connectors.imports.report import Problem

_SALE = frozenset({"销售", "sale", "消费", "收银"})
_RETURN = frozenset({"退货", "return", "refund", "退款"})

POS_COLUMNS = (
    col("store_id", "门店编号", "门店代码", "店铺编号", kind="id", required=True),
    col("store_name", "门店名称"),
    col("receipt_no", "小票号", "单据号", "流水号", kind="id", required=True),
    col("time", "交易时间", "销售时间", "日期时间", kind="time", required=True),
    col("kind", "交易类型", "单据类型"),
    col("original_receipt", "原小票号", "原单号", kind="id"),
    col("member_card", "会员卡号", "会员号", kind="id"),
    col("phone", "手机号", "会员手机号", kind="phone"),
    col("sku", "商品编码", "商品条码", kind="id"),
    col("product_name", "商品名称"),
    col("quantity", "数量", kind="int"),
    col("price", "单价", "零售价", kind="money"),
    col("amount", "金额", "实收金额", "成交金额", kind="money"),
    col("guide_id", "导购工号", "导购编号", "营业员", kind="id"),
    col("payment", "支付方式", "付款方式"),
)


def _pos_kind(line: Parsed) -> str | None:
    kind = str(line.values.get("kind", "销售")).strip().casefold()
    return "sale" if kind in _SALE else "return" if kind in _RETURN else None


def build_pos(rows: list[Parsed], ctx: Context) -> Output:
    out = Output()
    receipts: dict[tuple[str, str], list[Parsed]] = {}
    for row in rows:
        receipts.setdefault((str(row.values["store_id"]), str(row.values["receipt_no"])), []).append(row)
    for (store_id, receipt), lines in receipts.items():
        kind = _pos_kind(lines[0])
        if kind is None:
            out.problems.append(Problem(lines[0].line, "kind", "unknown_kind",
                                        f"未知交易类型 / unknown transaction type {lines[0].values['kind']!r} "
                                        "(销售 or 退货)"))  # fmt: skip
            continue
        head = lines[0].values
        who = _till_who(head, store_id, receipt)
        total = round(sum(_amount(ln) for ln in lines), 2)
        props: dict[str, Any] = {
            "order_id": f"POS-{store_id}-{receipt}",
            "receipt_no": receipt,
            "store_id": store_id,
            "total": total,
            "revenue": total,
            "currency": "CNY",
            "products": [_product(ln) for ln in lines],
        }
        for name in ("store_name", "guide_id", "payment"):
            if head.get(name):
                props[name] = head[name]
        event = "Order Completed"
        if kind == "return":
            event = "Order Refunded"
            if head.get("original_receipt"):
                props["order_id"] = f"POS-{store_id}-{head['original_receipt']}"
                props["return_receipt_no"] = receipt
        message = {
            "type": "track",
            "event": event,
            "timestamp": iso(head["time"]),
            "properties": props,
            **who,
        }
        out.messages.append(Built(lines[0].line, f"pos:{store_id}:{receipt}", message))
    return out


def _till_who(v: dict[str, Any], store_id: str, receipt: str) -> dict[str, Any]:
    card, phone = v.get("member_card"), v.get("phone")
    external = [("member_card", str(card))] if card else []
    if phone and "*" not in str(phone):
        external.append(("phone", str(phone)))
    # A walk-in without a card is a guest of this receipt only.
    return identity(anonymous_id=str(card) if card else f"pos-{store_id}-{receipt}", external=external)


def _amount(line: Parsed) -> float:
    v = line.values
    if "amount" in v:
        return float(v["amount"])
    return float(v.get("price", 0.0)) * int(v.get("quantity", 1))


def _product(line: Parsed) -> dict[str, Any]:
    v = line.values
    product: dict[str, Any] = {"quantity": v.get("quantity", 1)}
    for key, name in (("sku", "sku"), ("product_name", "name"), ("price", "price")):
        if key in v:
            product[name] = v[key]
    return product


SIGNUP_COLUMNS = (
    col("name", "姓名", "名字"),
    col("phone", "手机号", "手机", "联系电话", kind="phone"),
    col("email", "邮箱", "电子邮箱", kind="email"),
    col("company", "公司", "单位", "公司名称"),
    col("title", "职位", "职务"),
    col("city", "城市", "所在城市"),
    col("event_name", "活动名称", "展会名称"),
    col("event_id", "活动编号", "活动ID", kind="id"),
    col("registered_at", "报名时间", "登记时间", "提交时间", kind="time", required=True),
    col("attended", "是否签到", "签到", "是否到场", kind="flag"),
    col("checked_in_at", "签到时间", kind="time"),
    col("channel", "报名渠道", "渠道"),
)


def build_signups(rows: list[Parsed], ctx: Context) -> Output:
    out = Output()
    default_name = ctx.options.get("event_name", "")
    for row in rows:
        v = row.values
        if not v.get("phone") and not v.get("email"):
            out.problems.append(Problem(row.line, "phone", "missing_contact",
                                        "手机号和邮箱都为空 / neither a phone nor an e-mail address"))  # fmt: skip
            continue
        event_name = v.get("event_name") or default_name
        if not event_name:
            out.problems.append(Problem(row.line, "event_name", "missing_event",
                                        "没有活动名称列，请用 --event-name 指定 / no event name column: pass "
                                        "--event-name"))  # fmt: skip
            continue
        contact = str(v.get("phone") or v.get("email"))
        external = [(k, str(v[k])) for k in ("phone", "email") if v.get(k) and "*" not in str(v[k])]
        who = identity(anonymous_id=f"signup-{contact}", external=external)
        traits = {k: v[k] for k in ("name", "phone", "email", "company", "title", "city") if v.get(k)}
        event: dict[str, Any] = {"event_name": event_name}
        for key in ("event_id", "channel", "city"):
            if v.get(key):
                event[key] = v[key]
        key = f"signup:{v.get('event_id') or event_name}:{contact}"
        registered = {"type": "track", "event": "Event Registered", "timestamp": iso(v["registered_at"]),
                      "properties": dict(event), **who}  # fmt: skip
        registered.setdefault("context", {})["traits"] = traits
        out.messages.append(Built(row.line, f"{key}:registered", registered))
        if v.get("attended"):
            at = v.get("checked_in_at") or v["registered_at"]
            attended = {"type": "track", "event": "Event Attended", "timestamp": iso(at),
                        "properties": dict(event), **identity(anonymous_id=f"signup-{contact}", external=external)}  # fmt: skip
            out.messages.append(Built(row.line, f"{key}:attended", attended))
    return out


LIVE_COLUMNS = (
    col("user_id", "用户ID", "观众ID", "抖音号", "用户UID", kind="id", required=True),
    col("nickname", "用户昵称", "昵称"),
    col("action", "行为", "互动类型", "行为类型", required=True),
    col("time", "时间", "行为时间", "互动时间", kind="time", required=True),
    col("live_id", "直播间ID", "直播场次ID", "场次ID", kind="id"),
    col("live_title", "直播标题", "直播间标题"),
    col("comment", "评论内容", "内容"),
    col("order_id", "订单号", "订单编号", kind="id"),
    col("amount", "金额", "支付金额", kind="money"),
    col("product_name", "商品名称"),
    col("duration", "观看时长(秒)", "观看时长", kind="int"),
)
_ACTIONS = {
    "进入直播间": "Live Stream Watched",
    "观看": "Live Stream Watched",
    "评论": "Live Stream Commented",
    "点赞": "Live Stream Liked",
    "分享": "Live Stream Shared",
    "关注": "Account Followed",
    "加粉丝团": "Fan Club Joined",
    "下单": "Order Completed",
    "购买": "Order Completed",
}
_LIVE_BUYER_TYPE = {"douyin": "douyin_id", "xiaohongshu": "xiaohongshu_id", "tmall": "tmall_buyer_id"}


def build_live(rows: list[Parsed], ctx: Context) -> Output:
    out = Output()
    platform = ctx.options.get("platform", "douyin")
    id_type = _LIVE_BUYER_TYPE.get(platform, f"{platform}_id")
    for row in rows:
        v = row.values
        event = _ACTIONS.get(str(v["action"]).strip())
        if event is None:
            out.problems.append(Problem(row.line, "action", "unknown_action",
                                        f"未知互动类型 / unknown action {v['action']!r} "
                                        f"(known: {'、'.join(_ACTIONS)})"))  # fmt: skip
            continue
        props: dict[str, Any] = {"platform": platform}
        for key, name in (("live_id", "live_id"), ("live_title", "live_title"), ("comment", "comment"),
                          ("duration", "duration_seconds"), ("product_name", "product_name")):  # fmt: skip
            if key in v:
                props[name] = v[key]
        if event == "Order Completed":
            if not v.get("order_id"):
                out.problems.append(Problem(row.line, "order_id", "missing_order",
                                            "下单行缺少订单号 / a purchase needs an order id"))  # fmt: skip
                continue
            props.update({"order_id": v["order_id"], "total": v.get("amount", 0.0),
                          "revenue": v.get("amount", 0.0), "currency": "CNY"})  # fmt: skip
        who = identity(anonymous_id=str(v["user_id"]), external=[(id_type, str(v["user_id"]))])
        if v.get("nickname"):
            who.setdefault("context", {})["traits"] = {"nickname": v["nickname"]}
        message = {"type": "track", "event": event, "timestamp": iso(v["time"]), "properties": props, **who}
        key = (f"live:{platform}:order:{v['order_id']}" if event == "Order Completed"
               else f"live:{platform}:{v.get('live_id', '')}:{v['user_id']}:{event}:{iso(v['time'])}")  # fmt: skip
        out.messages.append(Built(row.line, key, message))
    return out


FORMATS: dict[str, Format] = {
    "pos": Format("pos", "pos", "门店收银小票 POS transactions", frozenset({"pos", "crm", "server"}),
                  POS_COLUMNS, build_pos),
    "signups": Format("signups", "signups", "活动报名名单 Event sign-up list",
                      frozenset({"offline_event", "form", "crm", "server"}), SIGNUP_COLUMNS, build_signups),
    "live": Format("live", "live", "直播互动导出 Live-stream interactions",
                   frozenset({"live_stream", "douyin", "xiaohongshu", "tmall", "server"}), LIVE_COLUMNS, build_live),
}  # fmt: skip
