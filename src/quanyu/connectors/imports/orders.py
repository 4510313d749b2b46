"""Order exports of Tmall/Taobao, JD, Youzan, Douyin shop and Xiaohongshu.

Each platform's seller back-end exports orders with its own Chinese headers (千牛 订单报表,
京东商家后台 订单导出, 有赞 订单导出, 抖店 订单导出, 小红书千帆 订单导出), some with one row per
order and some with one row per item (sub-order). Rows are grouped by order number and become
Segment e-commerce events:

- paid (shipped, awaiting receipt, finished) → `Order Completed`, at the payment time;
- closed before payment, cancelled → `Order Cancelled`;
- refunded in whole or in part (a refund amount, an after-sale status "退款成功", or closed
  after payment) → `Order Refunded` with the refunded amount, after `Order Completed`;
- still waiting for payment → skipped (reported), since it is not yet an order.

The platform buyer id becomes a `context.externalIds` entry of the platform's identifier type,
and the receiver (masked name and phone as marketplaces give them, full on Youzan) goes to
`context.traits`, where identity resolution reads it: full phones link, masked ones are kept as
partial evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from quanyu.connectors.imports.columns import Column, col
from quanyu.connectors.imports.formats import Built, Context, Format, Output, Parsed, Values, identity, iso
from quanyu.connectors.imports.report import Problem

PENDING, PAID, CANCELLED, CLOSED = "pending", "paid", "cancelled", "closed"


@dataclass(frozen=True)
class Platform:
    name: str
    label: str
    buyer_type: str  # the identifier type of the platform's buyer id
    statuses: dict[str, str]  # the platform's status text -> PENDING | PAID | CANCELLED | CLOSED
    refunded: frozenset[str]  # after-sale statuses that mean money went back
    columns: tuple[Column, ...]
    # One row per item whose amount columns are per item (summed), or per order (taken once).
    amounts_per_line: bool = False


TMALL = Platform(
    "tmall",
    "天猫/淘宝订单报表 Tmall/Taobao order report",
    "tmall_buyer_id",
    {
        "等待买家付款": PENDING,
        "买家已付款，等待卖家发货": PAID,
        "买家已付款": PAID,
        "卖家部分发货": PAID,
        "卖家已发货，等待买家确认": PAID,
        "交易成功": PAID,
        "交易关闭": CLOSED,
        "交易关闭(付款以前，卖家或买家主动关闭交易)": CANCELLED,
        "付款以前，卖家或买家主动关闭交易": CANCELLED,
    },
    frozenset({"退款成功", "退款完成"}),
    (
        col("order_id", "订单编号", "订单号", kind="id", required=True),
        col("status", "订单状态", required=True),
        col("created_at", "订单创建时间", kind="time", required=True),
        col("paid_at", "订单付款时间", "付款时间", kind="time"),
        col("finished_at", "确认收货时间", "交易成功时间", kind="time"),
        col("buyer_id", "买家ID", "买家openuid", "买家会员ID", kind="id"),
        col("buyer_nick", "买家会员名", "买家昵称"),
        col("total", "买家实际支付金额", "实付金额", kind="money"),
        col("subtotal", "买家应付货款", "总金额", kind="money"),
        col("shipping", "买家应付邮费", "邮费", kind="money"),
        col("product_name", "宝贝标题", "宝贝标题 ", "商品标题"),
        col("quantity", "宝贝总数量", "购买数量", kind="int"),
        col("receiver_name", "收货人姓名"),
        col("phone", "联系手机", "收货人手机号", kind="phone"),
        col("address", "收货地址", "收货地址 "),
        col("shop", "店铺名称"),
        col("refund_amount", "退款金额", kind="money"),
        col("refunded_at", "退款时间", "退款完成时间", kind="time"),
        col("after_sale", "退款状态", "售后状态"),
        col("close_reason", "订单关闭原因"),
    ),
)

JD = Platform(
    "jd",
    "京东订单导出 JD order export",
    "jd_pin",
    {
        "等待付款": PENDING,
        "等待付款确认": PENDING,
        "等待出库": PAID,
        "等待发货": PAID,
        "已发货": PAID,
        "配送中": PAID,
        "等待确认收货": PAID,
        "完成": PAID,
        "已完成": PAID,
        "已取消": CANCELLED,
        "取消": CANCELLED,
        "锁定": CANCELLED,
        "(删除)锁定": CANCELLED,
        "删除": CANCELLED,
    },
    frozenset({"退款成功", "退款完成", "售后完成(退款)"}),
    (
        col("order_id", "订单号", "订单编号", kind="id", required=True),
        col("status", "订单状态", required=True),
        col("created_at", "下单时间", kind="time", required=True),
        col("paid_at", "付款确认时间", "付款时间", kind="time"),
        col("finished_at", "订单完成时间", "完成时间", kind="time"),
        col("buyer_id", "下单帐号", "下单账号", "用户账号", "京东PIN", kind="id"),
        col("product_id", "商品ID", "商品编号", kind="id"),
        col("sku", "商家SKUID", "商家编码", kind="id"),
        col("product_name", "商品名称"),
        col("quantity", "订购数量", "商品数量", kind="int"),
        col("price", "京东价", "商品单价", kind="money"),
        col("total", "应付金额", "订单金额", kind="money"),
        col("shipping", "运费金额", "运费", kind="money"),
        col("receiver_name", "客户姓名", "收货人"),
        col("phone", "联系电话", "收货人电话", kind="phone"),
        col("address", "客户地址", "收货地址"),
        col("shop", "店铺名称"),
        col("refund_amount", "退款金额", kind="money"),
        col("refunded_at", "退款时间", "退款完成时间", "售后完成时间", kind="time"),
        col("after_sale", "售后状态", "退款状态"),
    ),
)

YOUZAN = Platform(
    "youzan",
    "有赞订单导出 Youzan order export",
    "youzan_id",
    {
        "待付款": PENDING,
        "等待买家付款": PENDING,
        "待成团": PAID,
        "待发货": PAID,
        "等待卖家发货": PAID,
        "已发货": PAID,
        "卖家已发货": PAID,
        "待收货": PAID,
        "已完成": PAID,
        "交易成功": PAID,
        "交易完成": PAID,
        "已关闭": CLOSED,
        "交易关闭": CLOSED,
        "已取消": CANCELLED,
    },
    frozenset({"退款成功", "全额退款", "部分退款", "已退款"}),
    (
        col("order_id", "订单号", "订单编号", kind="id", required=True),
        col("status", "订单状态", required=True),
        col("created_at", "订单创建时间", "下单时间", kind="time", required=True),
        col("paid_at", "买家付款时间", "付款时间", kind="time"),
        col("finished_at", "交易成功时间", "交易完成时间", kind="time"),
        col("buyer_id", "买家ID", "有赞用户ID", "yz_open_id", "粉丝ID", kind="id"),
        col("buyer_phone", "买家手机号", "会员手机号", kind="phone"),
        col("product_name", "商品名称"),
        col("sku", "商品编码", "规格编码", kind="id"),
        col("quantity", "商品数量", kind="int"),
        col("price", "商品单价", kind="money"),
        col("total", "订单实付金额", "实付金额", kind="money"),
        col("shipping", "运费", kind="money"),
        col("receiver_name", "收货人/提货人", "收货人"),
        col("phone", "收货人手机号/提货人手机号", "收货人手机号", kind="phone"),
        col("province", "收货人省份", "省"),
        col("city", "收货人城市", "市"),
        col("shop", "店铺名称", "归属店铺"),
        col("refund_amount", "已退款金额", "退款金额", kind="money"),
        col("refunded_at", "退款时间", "退款成功时间", kind="time"),
        col("after_sale", "退款状态", "售后状态"),
    ),
)

DOUYIN = Platform(
    "douyin",
    "抖店订单导出 Douyin shop order export",
    "douyin_id",
    {
        "待支付": PENDING,
        "待付款": PENDING,
        "备货中": PAID,
        "待发货": PAID,
        "部分发货": PAID,
        "已发货": PAID,
        "已完成": PAID,
        "已支付": PAID,
        "已关闭": CLOSED,
        "已取消": CANCELLED,
    },
    frozenset({"退款成功", "售后完成", "退货退款完成", "仅退款完成"}),
    (
        col("order_id", "主订单编号", "订单编号", kind="id", required=True),
        col("line_id", "子订单编号", kind="id"),
        col("status", "订单状态", required=True),
        col("created_at", "订单提交时间", "下单时间", kind="time", required=True),
        col("paid_at", "支付完成时间", "支付时间", kind="time"),
        col("finished_at", "订单完成时间", "完成时间", kind="time"),
        col("buyer_id", "用户ID", "买家ID", "抖音号", kind="id"),
        col("product_id", "商品ID", kind="id"),
        col("sku", "商家编码", kind="id"),
        col("product_name", "选购商品", "商品名称"),
        col("quantity", "商品数量", kind="int"),
        col("price", "商品单价", kind="money"),
        col("total", "订单应付金额", "应付金额", kind="money"),
        col("shipping", "运费", kind="money"),
        col("discount", "优惠总金额", kind="money"),
        col("receiver_name", "收件人"),
        col("phone", "收件人手机号", "收件人电话", kind="phone"),
        col("province", "省"),
        col("city", "市"),
        col("after_sale", "售后状态"),
        col("refund_amount", "退款金额", kind="money"),
        col("refunded_at", "售后完成时间", "退款时间", kind="time"),
        col("live_id", "直播间ID", kind="id"),
        col("author_id", "达人ID", kind="id"),
        col("traffic_source", "流量来源", "流量渠道"),
    ),
    amounts_per_line=True,
)

XIAOHONGSHU = Platform(
    "xiaohongshu",
    "小红书订单导出 Xiaohongshu order export",
    "xiaohongshu_id",
    {
        "待付款": PENDING,
        "待配货": PAID,
        "待发货": PAID,
        "已发货": PAID,
        "部分发货": PAID,
        "已签收": PAID,
        "已完成": PAID,
        "已关闭": CLOSED,
        "已取消": CANCELLED,
    },
    frozenset({"退款成功", "售后完成", "已退款"}),
    (
        col("order_id", "订单号", "订单编号", kind="id", required=True),
        col("status", "订单状态", required=True),
        col("created_at", "下单时间", "创建时间", kind="time", required=True),
        col("paid_at", "支付时间", kind="time"),
        col("finished_at", "完成时间", "签收时间", kind="time"),
        col("buyer_id", "用户ID", "小红书号", "买家ID", kind="id"),
        col("product_id", "商品ID", kind="id"),
        col("sku", "SKU编码", "商家编码", kind="id"),
        col("product_name", "商品名称"),
        col("quantity", "商品数量", "数量", kind="int"),
        col("price", "商品单价", "单价", kind="money"),
        col("total", "实付金额", "订单实付金额", kind="money"),
        col("shipping", "运费", kind="money"),
        col("receiver_name", "收件人姓名", "收件人"),
        col("phone", "收件人电话", "收件人手机号", kind="phone"),
        col("province", "省"),
        col("city", "市"),
        col("after_sale", "售后状态"),
        col("refund_amount", "退款金额", kind="money"),
        col("refunded_at", "退款时间", "售后完成时间", kind="time"),
    ),
)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (TMALL, JD, YOUZAN, DOUYIN, XIAOHONGSHU)}


def _status(platform: Platform, line: Parsed) -> str | None:
    text = line.values["status"]
    found = platform.statuses.get(text)
    return found if found is not None else platform.statuses.get(str(text).replace(" ", ""))


def build_orders(platform: Platform) -> Callable[[list[Parsed], Context], Output]:
    def build(rows: list[Parsed], ctx: Context) -> Output:
        out = Output()
        groups: dict[str, list[Parsed]] = {}
        for row in rows:
            groups.setdefault(str(row.values["order_id"]), []).append(row)
        for order_id, lines in groups.items():
            _order(platform, order_id, lines, out)
        return out

    return build


def _order(platform: Platform, order_id: str, lines: list[Parsed], out: Output) -> None:
    statuses = []
    for line in lines:
        status = _status(platform, line)
        if status is None:
            known = "、".join(platform.statuses)
            out.problems.append(Problem(line.line, "status", "unknown_status",
                                        f"未知订单状态 / unknown order status {line.values['status']!r} "
                                        f"(known: {known})"))  # fmt: skip
            return
        statuses.append(status)
    head = lines[0].values
    paid_at = _first(lines, "paid_at")
    if all(s == PENDING for s in statuses):
        out.skipped["pending_payment"] += 1
        return
    who = _who(platform, order_id, lines)
    base = {"order_id": order_id, "platform": platform.name, "currency": "CNY"}
    if head.get("shop"):
        base["affiliation"] = head["shop"]
    was_paid = paid_at is not None or any(s == PAID for s in statuses)
    if not was_paid:
        at = _first(lines, "finished_at") or head["created_at"]
        props = {**base, "status": head["status"], **_money_fields(platform, lines)}
        if head.get("close_reason"):
            props["reason"] = head["close_reason"]
        out.messages.append(_track(lines[0].line, f"{platform.name}:{order_id}:cancelled", who, "Order Cancelled",
                                   at, props))  # fmt: skip
        return
    completed_at = paid_at or head["created_at"]
    props = {**base, "status": head["status"], **_money_fields(platform, lines), "products": _products(lines)}
    for extra in ("live_id", "author_id", "traffic_source"):
        if head.get(extra):
            props[extra] = head[extra]
    out.messages.append(_track(lines[0].line, f"{platform.name}:{order_id}:completed", who, "Order Completed",
                               completed_at, props))  # fmt: skip
    refund = _refund(platform, lines, statuses, props.get("total"))
    if refund is not None:
        amount, refunded_lines = refund
        after = (datetime.fromisoformat(completed_at) + timedelta(seconds=1)).isoformat()
        at = _first(lines, "refunded_at") or max(
            t for t in (_first(lines, "finished_at"), after) if t is not None
        )
        refund_props: dict[str, Any] = {**base, "total": amount, "revenue": amount}
        if refunded_lines and len(refunded_lines) < len(lines):
            refund_props["products"] = _products(refunded_lines)
        if head.get("after_sale"):
            refund_props["reason"] = head["after_sale"]
        out.messages.append(_track(lines[0].line, f"{platform.name}:{order_id}:refunded", who, "Order Refunded",
                                   at, refund_props))  # fmt: skip


def _refund(
    platform: Platform, lines: list[Parsed], statuses: list[str], total: Any
) -> tuple[float, list[Parsed]] | None:
    refunded_lines = [ln for ln in lines if ln.values.get("after_sale") in platform.refunded]
    amounts = [ln.values["refund_amount"] for ln in lines if ln.values.get("refund_amount")]
    if amounts:
        amount = sum(amounts) if platform.amounts_per_line else amounts[0]
        return (round(amount, 2), refunded_lines) if amount > 0 else None
    if refunded_lines:
        if platform.amounts_per_line:
            return round(sum(_line_amount(ln) for ln in refunded_lines), 2), refunded_lines
        return round(float(total or 0.0), 2), refunded_lines
    if all(s in (CLOSED, CANCELLED) for s in statuses):  # closed after payment: money went back
        return round(float(total or 0.0), 2), []
    return None


def _line_amount(line: Parsed) -> float:
    v = line.values
    if "total" in v:
        return float(v["total"])
    return float(v.get("price", 0.0)) * int(v.get("quantity", 1))


_AMOUNTS = ("total", "subtotal", "shipping", "discount")


def _money_fields(platform: Platform, lines: list[Parsed]) -> dict[str, float]:
    fields: dict[str, float] = {}
    if len(lines) == 1 or not platform.amounts_per_line:
        # One amount per order (repeated on each item row of per-order exports): the first.
        for line in lines:
            v = line.values
            for name in _AMOUNTS:
                if name not in fields and name in v:
                    fields[name] = v[name]
    else:
        for name in _AMOUNTS:
            values = [ln.values[name] for ln in lines if name in ln.values]
            if values:
                fields[name] = round(sum(values), 2)
    if "total" not in fields:
        fields["total"] = round(sum(_line_amount(ln) for ln in lines), 2)
    # Segment's revenue excludes shipping (and tax); total is what the buyer paid.
    fields["revenue"] = round(fields["total"] - fields.get("shipping", 0.0), 2)
    return fields


def _products(lines: list[Parsed]) -> list[dict[str, Any]]:
    products = []
    for line in lines:
        v = line.values
        product: dict[str, Any] = {}
        for key, name in (("product_id", "product_id"), ("sku", "sku"), ("product_name", "name"),
                          ("price", "price"), ("quantity", "quantity"), ("line_id", "line_id")):  # fmt: skip
            if key in v:
                product[name] = v[key]
        if product:
            products.append(product)
    return products


def _first(lines: list[Parsed], name: str) -> Any:
    return next((ln.values[name] for ln in lines if name in ln.values), None)


def _who(platform: Platform, order_id: str, lines: list[Parsed]) -> dict[str, Any]:
    head = lines[0].values
    buyer = head.get("buyer_id")
    message = identity(
        anonymous_id=str(buyer) if buyer else f"{platform.name}-order-{order_id}",
        external=[(platform.buyer_type, str(buyer))] if buyer else [],
    )
    traits = _receiver(head)
    if traits:
        message.setdefault("context", {})["traits"] = traits
    return message


def _receiver(v: Values) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    if v.get("receiver_name"):
        traits["name"] = v["receiver_name"]
    phone = v.get("buyer_phone") or v.get("phone")
    if phone:
        traits["phone"] = phone
    province, city = v.get("province"), v.get("city")
    if not province and v.get("address"):
        parts = str(v["address"]).split()
        province, city = (parts[0], parts[1]) if len(parts) >= 3 else (None, None)
    if province:
        traits["province"] = province
    if city:
        traits["city"] = city
    return traits


def _track(line: int, key: str, who: dict[str, Any], event: str, at: Any, props: dict[str, Any]) -> Built:
    message = {"type": "track", "event": event, "timestamp": iso(at), "properties": props, **who}
    if "context" in who:
        message["context"] = {**who["context"]}
    return Built(line, key, message)


FORMATS: dict[str, Format] = {
    p.name: Format(
        "orders", p.name, p.label, frozenset({p.name, "server", "crm"}), p.columns, build_orders(p)
    )
    for p in PLATFORMS.values()
}
