"""The catalogue of source types and the channel defaults each one stamps on its events.

公域 (public) traffic lives on platforms the brand rents (Tmall, Douyin, ads); 私域 (private)
traffic is reachable on the brand's own terms (official account, WeCom, mini-program, members).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceType:
    name: str
    channel: str
    domain: str  # "public" | "private"
    presence: str  # "online" | "offline"
    label: str


_TYPES = [
    SourceType("website", "website", "private", "online", "官网 Website"),
    SourceType("h5", "h5", "private", "online", "H5 页面 H5 page"),
    SourceType("app", "app", "private", "online", "App"),
    SourceType("mini_program", "mini_program", "private", "online", "微信小程序 Mini-program"),
    SourceType("wechat_oa", "wechat_oa", "private", "online", "微信公众号 WeChat official account"),
    SourceType("wecom", "wecom", "private", "online", "企业微信 WeCom"),
    SourceType("tmall", "tmall", "public", "online", "天猫/淘宝 Tmall/Taobao"),
    SourceType("jd", "jd", "public", "online", "京东 JD"),
    SourceType("youzan", "youzan", "private", "online", "有赞 Youzan"),
    SourceType("douyin", "douyin", "public", "online", "抖音 Douyin"),
    SourceType("xiaohongshu", "xiaohongshu", "public", "online", "小红书 Xiaohongshu"),
    SourceType("pos", "pos", "private", "offline", "门店收银 POS"),
    SourceType("offline_event", "offline_event", "private", "offline", "线下活动 Offline event"),
    SourceType("form", "form", "private", "online", "表单 Form"),
    SourceType("live_stream", "live_stream", "public", "online", "直播 Live stream"),
    SourceType("ads", "ads", "public", "online", "广告投放 Ads"),
    SourceType("crm", "crm", "private", "offline", "CRM"),
    SourceType("server", "server", "private", "online", "服务端 Server"),
    SourceType("webhook", "webhook", "private", "online", "通用 Webhook Generic webhook"),
    # Quanyu's own events about the messages it sends: receipts (delivered, opened, clicked,
    # bounced), journey effects (traits set, lead scores) and consent from unsubscribe links.
    SourceType("messaging", "messaging", "private", "online", "消息触达 Messaging (journeys, receipts)"),
]

SOURCE_TYPES: dict[str, SourceType] = {t.name: t for t in _TYPES}
CHANNELS = frozenset(t.channel for t in _TYPES)
DOMAINS = frozenset({"public", "private"})
PRESENCES = frozenset({"online", "offline"})

# Connector settings whose names contain one of these are secrets: encrypted, never echoed back.
SECRET_MARKERS = ("secret", "token", "password", "aes_key", "api_key", "private_key")


def is_secret_setting(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)
