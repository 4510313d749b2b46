"""The demo brand's data in the connectors' own formats (issue 6).

A real brand does not hand-write Segment calls for its marketplace shops, tills and official
account: it uploads the platforms' order exports, the POS receipts, lets WeChat push its events
and imports its ad platforms' cost reports. `DemoFeeds` turns the generated messages of those
sources into exactly that:

- marketplace `Order Completed` / `Order Refunded` → one export CSV per platform (天猫 千牛 订单
  报表 in GBK with CRLF, 京东, 有赞, 抖店, 小红书千帆), Chinese headers, Asia/Shanghai local
  times; a refund is the refund columns of the order's row, for `/api/v1/imports/orders`;
- POS orders and returns → a receipt export, one row per item (`/api/v1/imports/pos`);
- official-account follows, QR scans, unfollows and menu clicks → WeChat's XML pushes
  (`/connect/wechat/{source_id}`), signed with the source's token;
- ad clicks → a daily cost report per ad channel and campaign (`/api/v1/ad-costs/import`); the
  clicks themselves stay `/v1/batch` messages (see docs/demo-connectors.md).

Everything else (members joining on Tmall, Douyin videos, coupons, article reads …) has no
native form here and stays a `/v1/batch` message. The exports carry the same identifiers the
generator recorded in the ground truth (buyer ids, masked or full receiver phones, member
cards and till phones, openids of the official account's app id); a till guest, whom the POS
importer knows as `pos-{store}-{receipt}`, gets that id in the ground truth instead (`truth`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quanyu.demo.generator import STORES, DemoBrand
from quanyu.demo.generator.identifiers import OA_APP_ID
from quanyu.demo.generator.sources import LIBRARIES

Message = dict[str, Any]

# Marketplace source key -> the importer's platform name.
MARKETPLACES = {
    "tmall_flagship": "tmall",
    "jd_flagship": "jd",
    "youzan_shop": "youzan",
    "douyin": "douyin",
    "xiaohongshu": "xiaohongshu",
}
POS = "pos"
WECHAT_OA = "wechat_oa"
ADS = "ads"
ORDER_EVENTS = frozenset({"Order Completed", "Order Refunded"})
# Official-account events WeChat pushes (an article read is not pushed: it stays a batch message).
OA_PUSHED = frozenset(
    {"Official Account Followed", "QR Scanned", "Official Account Unfollowed", "Menu Clicked"}
)
OA_TOKEN = "shanchaji-demo-token"  # noqa: S105  (a demo value) the token typed into the official account's server settings
OA_ORIGINAL_ID = "gh_5a1c0e7d3b92"  # the account's original id (ToUserName)
_MENU_KEYS = {"会员中心": "MENU_MEMBER", "门店查询": "MENU_STORES", "领券中心": "MENU_COUPONS",
              "小程序商城": "MENU_SHOP", "联系导购": "MENU_GUIDE"}  # fmt: skip
# Ad platform (generator) -> the cost import's channel, and a typical cost per click in CNY.
AD_CHANNELS = {"baidu": ("baidu", 2.1), "tencent_ads": ("tencent", 1.6), "oceanengine": ("ocean_engine", 1.2),
               "xiaohongshu": ("xiaohongshu", 2.6)}  # fmt: skip
_PAYMENTS = {"wechat_pay": "微信支付", "alipay": "支付宝", "unionpay": "银联卡", "cash": "现金"}
_STORE_NAMES = {s.store_id: s.name for s in STORES}
_NAMESPACE = uuid.UUID("6b0f7c1e-2d4a-4e8b-9c3f-64656d6f6665")


@dataclass(frozen=True)
class Export:
    """One file for an import route: `route` is `orders`, `pos` or `ad-costs`."""

    route: str
    source_key: str
    param: str | None  # the order platform or the ad channel
    name: str
    data: bytes
    rows: int


@dataclass
class Feed:
    """One window of the brand (its year, or one replayed day) as the connectors take it."""

    batch: DemoBrand  # messages without a native form, for /v1/batch
    exports: list[Export] = field(default_factory=list)
    pushes: list[bytes] = field(default_factory=list)  # WeChat XML bodies, in time order
    converted: int = 0  # generated messages now carried by an export or a push
    lookups: int = 0  # identify messages: the unionid the official account's user/info returns


def local_time(stamp: str) -> str:
    """'2026-11-11T20:05:00+08:00' (the generator's Shanghai stamps) → '2026-11-11 20:05:00'."""
    return f"{stamp[:10]} {stamp[11:19]}"


def _unix(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp())


def _digest(text: str, size: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest()) % size


def _money(value: float) -> str:
    return f"{value:.2f}"


def _external(message: Message, kind: str) -> str:
    for entry in message.get("context", {}).get("externalIds", ()):
        if entry["type"] == kind:
            return str(entry["id"])
    return ""


def _split(amount: float, lines: list[dict[str, Any]]) -> list[float]:
    """`amount` shared over the lines by their list price, cents exact (the rest on line one)."""
    weights = [float(line["price"]) * int(line["quantity"]) for line in lines]
    whole = sum(weights) or 1.0
    parts = [round(amount * w / whole, 2) for w in weights]
    parts[0] = round(amount - sum(parts[1:]), 2)
    return parts


@dataclass
class _Order:
    completed: Message
    refund: Message | None = None


class DemoFeeds:
    """Converts windows of one generated brand; remembers which openids were looked up."""

    def __init__(self, brand: DemoBrand) -> None:
        self.orders: dict[str, dict[str, _Order]] = {key: {} for key in (*MARKETPLACES, POS)}
        for key, book in self.orders.items():
            for message in brand.events.get(key, ()):
                event = message.get("event")
                if event == "Order Completed":
                    book[message["properties"]["order_id"]] = _Order(message)
                elif event == "Order Refunded":
                    book[message["properties"]["order_id"]].refund = message
        self._clicks = [m for m in brand.events.get(ADS, ()) if m.get("event") == "Ad Clicked"]
        self._looked_up: set[str] = set()
        self._guests: dict[str, str] = {}  # guest id -> the importer's id of its receipt
        self._returns: dict[str, str] = {}  # guest id -> the importer's id of its return receipt

    def feed(self, part: DemoBrand, cutoff: str, label: str) -> Feed:
        """`part` (messages of one window, ending at `cutoff`, a Shanghai stamp) as connector
        files and pushes, plus what stays for `/v1/batch`. `label` names the files."""
        batch: dict[str, list[Message]] = {}
        out = Feed(DemoBrand(part.sources, batch, [], part.people))
        for key, messages in part.events.items():
            if key in self.orders:
                kept = [m for m in messages if m.get("event") not in ORDER_EVENTS]
                touched = [m for m in messages if m.get("event") in ORDER_EVENTS]
                out.converted += len(touched)
                if touched:
                    out.exports.append(self._order_export(key, touched, cutoff, label))
            elif key == WECHAT_OA:
                kept = [m for m in messages if m.get("event") not in OA_PUSHED]
                for message in messages:
                    if message.get("event") in OA_PUSHED:
                        out.pushes.append(wechat_push(message))
                        out.converted += 1
                        lookup = self._lookup(message)
                        if lookup is not None:
                            kept.append(lookup)
                            out.lookups += 1
                kept.sort(key=lambda m: str(m["timestamp"]))
            else:
                kept = list(messages)
                if key == ADS:
                    # A day's report covers the whole day so far: a later report of the same day
                    # (the next replayed day starts at 10:00) updates its rows.
                    days = {str(m["timestamp"])[:10] for m in messages if m.get("event") == "Ad Clicked"}
                    clicks = [
                        m
                        for m in self._clicks
                        if str(m["timestamp"])[:10] in days and m["timestamp"] < cutoff
                    ]
                    out.exports.extend(ad_costs(clicks, label))
            if kept:
                batch[key] = kept
        return out

    # -- orders ------------------------------------------------------------------------------------

    def _order_export(self, key: str, touched: list[Message], cutoff: str, label: str) -> Export:
        """The window's export: orders placed in it, and orders refunded in it again with the
        refund (an export of the window's orders, as the seller back-end writes it)."""
        book = self.orders[key]
        ids = list(dict.fromkeys(str(m["properties"]["order_id"]) for m in touched))
        ids.sort(key=lambda i: str(book[i].completed["timestamp"]))
        rows: list[list[str]] = []
        for order_id in ids:
            order = book[order_id]
            refund = order.refund if order.refund is not None and order.refund["timestamp"] < cutoff else None
            if key == POS:
                rows.extend(self._pos_rows(order.completed, refund))
            else:
                rows.extend(_ORDER_ROWS[key](order.completed, refund, cutoff))
        if key == POS:
            return Export("pos", key, None, f"pos_{label}.csv", _csv(POS_HEADER, rows), len(rows))
        platform = MARKETPLACES[key]
        header = _HEADERS[key]
        if key == "tmall_flagship":  # 千牛 writes GBK with CRLF, as Excel on Chinese Windows reads it
            data = _qianniu(header, rows)
        elif key == "youzan_shop":
            data = _csv(header, rows, encoding="utf-8-sig")
        else:
            data = _csv(header, rows)
        return Export("orders", key, platform, f"{platform}_orders_{label}.csv", data, len(rows))

    def _pos_rows(self, completed: Message, refund: Message | None) -> list[list[str]]:
        props = completed["properties"]
        store = str(props["store_id"])
        receipt = str(props["order_id"]).removeprefix(f"POS-{store}-")
        card, phone = _external(completed, "member_card"), _external(completed, "phone")
        if not card:
            self._guests[str(completed["anonymousId"])] = f"pos-{store}-{receipt}"
        lines = props["products"]
        amounts = _split(float(props["total"]), lines)
        common = [store, _STORE_NAMES.get(store, store)]
        payment = _PAYMENTS.get(str(props.get("payment_method", "")), "")
        guide = str(props.get("guide_id") or "")

        def rows(number: str, at: str, kind: str, original: str) -> list[list[str]]:
            return [
                [*common, number, local_time(at), kind, original, card, phone, str(line["sku"]), str(line["name"]),
                 str(line["quantity"]), _money(float(line["price"])), _money(amount), guide, payment]
                for line, amount in zip(lines, amounts, strict=True)
            ]  # fmt: skip

        out = rows(receipt, str(completed["timestamp"]), "销售", "")
        if refund is not None:
            number = f"{receipt}-R"
            if not card:
                self._returns[str(completed["anonymousId"])] = f"pos-{store}-{number}"
            out += rows(number, str(refund["timestamp"]), "退货", receipt)
        return out

    # -- WeChat ------------------------------------------------------------------------------------

    def _lookup(self, message: Message) -> Message | None:
        """The first push of an openid makes the brand's server ask WeChat's user/info for the
        follower's unionid (a push carries the openid only) and send it as an `identify`."""
        openid = str(message["anonymousId"])
        unionid = _external(message, "wechat_unionid")
        if not unionid or openid in self._looked_up:
            return None
        self._looked_up.add(openid)
        ids = [
            e for e in message["context"]["externalIds"] if e["type"] in ("wechat_openid", "wechat_unionid")
        ]
        return {
            "type": "identify",
            "messageId": str(uuid.uuid5(_NAMESPACE, f"userinfo/{OA_APP_ID}/{openid}")),
            "timestamp": message["timestamp"],
            "anonymousId": openid,
            "traits": {},
            "context": {"library": LIBRARIES[WECHAT_OA], "externalIds": ids},
        }

    # -- ground truth ------------------------------------------------------------------------------

    def truth(
        self, rows: Iterable[tuple[str, str, str, str]], batch_ids: set[str]
    ) -> list[tuple[str, str, str, str]]:
        """The ground truth with each till guest's id replaced by the importer's receipt ids
        (unless a batch message still carries the guest id, `batch_ids`)."""
        out: list[tuple[str, str, str, str]] = []
        for person, source, kind, value in rows:
            if source == POS and kind == "anonymous_id" and value in self._guests:
                out.append((person, source, kind, self._guests[value]))
                if value in self._returns:
                    out.append((person, source, kind, self._returns[value]))
                if value not in batch_ids:
                    continue
            out.append((person, source, kind, value))
        return sorted(set(out))


# -- marketplace exports ---------------------------------------------------------------------------


def _csv(header: list[str], rows: list[list[str]], *, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _qianniu(header: list[str], rows: list[list[str]]) -> bytes:
    """千牛's CSV: GBK, CRLF, and the order number written as an Excel formula `="…"` (so that
    Excel keeps its 19 digits), unquoted, as 千牛 writes it."""

    def cell(value: str) -> str:
        if value.startswith('="') or not any(c in value for c in ',"\r\n'):
            return value
        return '"' + value.replace('"', '""') + '"'

    lines = [",".join(cell(v) for v in row) for row in (header, *rows)]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def _finished(completed: Message, cutoff: str) -> str:
    """When the buyer confirmed receipt (3–7 days after paying), or '' if not yet by `cutoff`."""
    paid = _unix(str(completed["timestamp"]))
    at = paid + 86400 * (3 + _digest(str(completed["properties"]["order_id"]), 5))
    stamp = datetime.fromtimestamp(at, datetime.fromisoformat(str(completed["timestamp"])).tzinfo).isoformat()
    return local_time(stamp) if stamp < cutoff else ""


def _created(completed: Message) -> str:
    """The order was placed a few seconds to a minute before it was paid."""
    paid = datetime.fromisoformat(str(completed["timestamp"]))
    at = paid.timestamp() - 5 - _digest(str(completed["properties"]["order_id"]), 55)
    return local_time(datetime.fromtimestamp(at, paid.tzinfo).isoformat())


def _receiver(completed: Message) -> dict[str, str]:
    traits = completed.get("context", {}).get("traits", {})
    return {k: str(traits.get(k, "")) for k in ("name", "phone", "province", "city")}


def _refund_cells(refund: Message | None) -> tuple[str, str]:
    if refund is None:
        return "0.00", ""
    return _money(float(refund["properties"]["total"])), local_time(str(refund["timestamp"]))


TMALL_HEADER = ["订单编号", "买家会员名", "买家ID", "买家应付货款", "买家应付邮费", "总金额", "买家实际支付金额", "订单状态",
                "买家留言", "收货人姓名", "收货地址", "运送方式", "联系手机", "订单创建时间", "订单付款时间", "宝贝标题",
                "宝贝种类", "物流单号", "宝贝总数量", "店铺Id", "店铺名称", "订单关闭原因", "退款金额", "确认收货时间",
                "退款时间"]  # fmt: skip


def _tmall(completed: Message, refund: Message | None, cutoff: str) -> list[list[str]]:
    p = completed["properties"]
    buyer = str(completed["anonymousId"])
    r = _receiver(completed)
    finished = _finished(completed, cutoff)
    status = "交易成功" if finished else "卖家已发货，等待买家确认"
    amount, refunded_at = _refund_cells(refund)
    lines = p["products"]
    titles = "，".join(str(line["name"]) for line in lines)
    waybill = f"SF{1_000_000_000 + _digest(str(p['order_id']), 8_999_999_999)}"
    return [[f'="{p["order_id"]}"', f"{buyer[2]}**{buyer[-1]}", buyer, _money(p["revenue"]), _money(p["shipping"]),
             _money(p["subtotal"] + p["shipping"]), _money(p["total"]), status, "", r["name"],
             f"{r['province']} {r['city']} ***", "快递", r["phone"], _created(completed),
             local_time(str(completed["timestamp"])), titles, str(len(lines)), waybill,
             str(sum(int(line["quantity"]) for line in lines)), "57301234", str(p["affiliation"]), "", amount,
             finished, refunded_at]]  # fmt: skip


JD_HEADER = ["订单号", "商品ID", "商品名称", "订购数量", "支付方式", "下单时间", "京东价", "订单金额", "结算金额", "应付金额",
             "订单状态", "订单类型", "下单帐号", "客户姓名", "客户地址", "联系电话", "订单备注", "付款确认时间", "订单完成时间",
             "运费金额", "商家SKUID", "店铺名称", "退款金额", "售后状态", "售后完成时间"]  # fmt: skip


def _jd(completed: Message, refund: Message | None, cutoff: str) -> list[list[str]]:
    p = completed["properties"]
    r = _receiver(completed)
    finished = _finished(completed, cutoff)
    amount, refunded_at = _refund_cells(refund)
    after_sale = "退款成功" if refund is not None else ""
    total = _money(p["total"])
    return [[str(p["order_id"]), str(line["product_id"]), str(line["name"]), str(line["quantity"]), "在线支付",
             _created(completed), _money(float(line["price"])), total, total, total,
             "完成" if finished else "等待确认收货", "SOP", str(completed["anonymousId"]), r["name"],
             f"{r['province']} {r['city']} ****", r["phone"], "", local_time(str(completed["timestamp"])), finished,
             _money(p["shipping"]), str(line["sku"]), str(p["affiliation"]), amount, after_sale, refunded_at]
            for line in p["products"]]  # fmt: skip


YOUZAN_HEADER = ["订单号", "订单状态", "订单创建时间", "买家付款时间", "交易成功时间", "买家ID", "买家手机号", "商品名称",
                 "商品规格", "商品编码", "商品单价", "商品数量", "订单实付金额", "运费", "收货人/提货人",
                 "收货人手机号/提货人手机号", "收货人省份", "收货人城市", "店铺名称", "退款状态", "已退款金额",
                 "退款时间"]  # fmt: skip


def _youzan(completed: Message, refund: Message | None, cutoff: str) -> list[list[str]]:
    p = completed["properties"]
    r = _receiver(completed)
    finished = _finished(completed, cutoff)
    amount, refunded_at = _refund_cells(refund)
    return [[str(p["order_id"]), "交易成功" if finished else "已发货", _created(completed),
             local_time(str(completed["timestamp"])), finished, str(completed["anonymousId"]), "", str(line["name"]),
             "", str(line["sku"]), _money(float(line["price"])), str(line["quantity"]), _money(p["total"]),
             _money(p["shipping"]), r["name"], r["phone"], r["province"], r["city"], str(p["affiliation"]),
             "全额退款" if refund is not None else "", amount, refunded_at]
            for line in p["products"]]  # fmt: skip


DOUYIN_HEADER = ["主订单编号", "子订单编号", "选购商品", "商品规格", "商品数量", "商品ID", "商家编码", "商品单价",
                 "订单应付金额", "运费", "优惠总金额", "收件人", "收件人手机号", "省", "市", "区", "订单提交时间",
                 "支付完成时间", "订单完成时间", "订单状态", "售后状态", "取消原因", "达人ID", "直播间ID", "流量来源",
                 "用户ID", "退款金额", "售后完成时间"]  # fmt: skip


def _douyin(completed: Message, refund: Message | None, cutoff: str) -> list[list[str]]:
    # 抖店 writes one row per sub-order with that line's own amounts: they add up to the order.
    p = completed["properties"]
    r = _receiver(completed)
    finished = _finished(completed, cutoff)
    lines = p["products"]
    goods = _split(float(p["revenue"]), lines)
    discounts = _split(float(p["discount"]), lines)
    amount, refunded_at = _refund_cells(refund)
    rows = []
    for i, (line, paid, off) in enumerate(zip(lines, goods, discounts, strict=True)):
        shipping = float(p["shipping"]) if i == 0 else 0.0
        rows.append([str(p["order_id"]), str(int(p["order_id"]) + i + 1), str(line["name"]), "", str(line["quantity"]),
                     str(line["product_id"]), str(line["sku"]), _money(float(line["price"])),
                     _money(paid + shipping), _money(shipping), _money(off), r["name"], r["phone"], r["province"],
                     r["city"], "", _created(completed), local_time(str(completed["timestamp"])), finished,
                     "已完成" if finished else "已发货", "退款成功" if refund is not None else "", "", "", "", "商品卡",
                     str(completed["anonymousId"]), amount if i == 0 else "0.00", refunded_at])  # fmt: skip
    return rows


XIAOHONGSHU_HEADER = ["订单号", "订单状态", "售后状态", "下单时间", "支付时间", "完成时间", "用户ID", "商品ID", "商品名称",
                      "SKU编码", "商品数量", "商品单价", "实付金额", "运费", "收件人姓名", "收件人电话", "省", "市",
                      "退款金额", "退款时间"]  # fmt: skip


def _xiaohongshu(completed: Message, refund: Message | None, cutoff: str) -> list[list[str]]:
    p = completed["properties"]
    r = _receiver(completed)
    finished = _finished(completed, cutoff)
    amount, refunded_at = _refund_cells(refund)
    return [[str(p["order_id"]), "已完成" if finished else "已发货", "退款成功" if refund is not None else "",
             _created(completed), local_time(str(completed["timestamp"])), finished, str(completed["anonymousId"]),
             str(line["product_id"]), str(line["name"]), str(line["sku"]), str(line["quantity"]),
             _money(float(line["price"])), _money(p["total"]), _money(p["shipping"]), r["name"], r["phone"],
             r["province"], r["city"], amount, refunded_at]
            for line in p["products"]]  # fmt: skip


POS_HEADER = ["门店编号", "门店名称", "小票号", "交易时间", "交易类型", "原小票号", "会员卡号", "手机号", "商品编码", "商品名称",
              "数量", "单价", "金额", "导购工号", "支付方式"]  # fmt: skip
_HEADERS = {"tmall_flagship": TMALL_HEADER, "jd_flagship": JD_HEADER, "youzan_shop": YOUZAN_HEADER,
            "douyin": DOUYIN_HEADER, "xiaohongshu": XIAOHONGSHU_HEADER}  # fmt: skip
_ORDER_ROWS = {"tmall_flagship": _tmall, "jd_flagship": _jd, "youzan_shop": _youzan, "douyin": _douyin,
               "xiaohongshu": _xiaohongshu}  # fmt: skip


# -- WeChat pushes ---------------------------------------------------------------------------------


def wechat_push(message: Message) -> bytes:
    """The XML WeChat pushes for one official-account event (plain mode)."""
    event, props = message["event"], message["properties"]
    scene = str(props.get("scene") or "")
    qr = bool(scene) and not scene.startswith("ADD_SCENE_")  # a search or profile-card follow has no scene
    if event == "Official Account Followed":
        kind, key = "subscribe", f"qrscene_{scene}" if qr else ""
    elif event == "QR Scanned":
        kind, key = "SCAN", scene
    elif event == "Official Account Unfollowed":
        kind, key = "unsubscribe", ""
    else:
        kind, key = "CLICK", _MENU_KEYS.get(str(props.get("menu")), "MENU_OTHER")
    fields = [("ToUserName", OA_ORIGINAL_ID), ("FromUserName", str(message["anonymousId"]))]
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields)
    body += f"<CreateTime>{_unix(str(message['timestamp']))}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    body += f"<Event><![CDATA[{kind}]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
    if kind in ("subscribe", "SCAN") and key:
        body += f"<Ticket><![CDATA[gQ{hashlib.sha1(scene.encode(), usedforsecurity=False).hexdigest()[:30]}]]></Ticket>"
    return f"<xml>{body}</xml>".encode()


# -- ad costs --------------------------------------------------------------------------------------

COSTS_HEADER = ["日期", "推广计划", "展现", "点击", "消费"]


def ad_costs(clicks: list[Message], label: str) -> list[Export]:
    """Each ad channel's daily cost report for the clicks of the window: clicks counted per day
    and campaign, impressions and spend from a typical click rate and cost per click."""
    counted: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for message in clicks:
        if message.get("event") != "Ad Clicked":
            continue
        known = AD_CHANNELS.get(str(message["properties"].get("platform")))
        if known is None:
            continue
        campaign = str(message["context"]["campaign"]["name"])
        counted[known[0]][(str(message["timestamp"])[:10], campaign)] += 1
    cpc = {name: price for name, price in AD_CHANNELS.values()}
    out = []
    for channel, days in sorted(counted.items()):
        rows = []
        for (day, campaign), n in sorted(days.items()):
            salt = _digest(f"{channel}/{campaign}/{day}", 1000) / 1000
            rows.append(
                [
                    day,
                    campaign,
                    str(n * (30 + int(salt * 40))),
                    str(n),
                    _money(n * cpc[channel] * (0.8 + salt * 0.4)),
                ]
            )
        out.append(
            Export(
                "ad-costs",
                ADS,
                channel,
                f"ad_costs_{channel}_{label}.csv",
                _csv(COSTS_HEADER, rows),
                len(rows),
            )
        )
    return out
