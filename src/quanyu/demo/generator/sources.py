"""The demo brand's sources: every system that would send events to Quanyu."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_TYPES = (
    "website",
    "h5",
    "app",
    "mini_program",
    "wechat_oa",
    "wecom",
    "tmall",
    "jd",
    "youzan",
    "douyin",
    "xiaohongshu",
    "pos",
    "offline_event",
    "form",
    "live_stream",
    "ads",
    "crm",
    "server",
)


@dataclass(frozen=True)
class DemoSource:
    """One sending system of the demo brand, as a workspace would register it."""

    key: str
    name: str
    type: str


SOURCES: tuple[DemoSource, ...] = (
    DemoSource("website", "品牌官网 Website", "website"),
    DemoSource("h5", "活动H5 Campaign H5", "h5"),
    DemoSource("app", "山茶记App Camellia app", "app"),
    DemoSource("mini_program", "微信小程序商城 Mini-program shop", "mini_program"),
    DemoSource("wechat_oa", "微信公众号 Official account", "wechat_oa"),
    DemoSource("wecom", "企业微信 WeCom", "wecom"),
    DemoSource("tmall_flagship", "天猫旗舰店 Tmall flagship", "tmall"),
    DemoSource("jd_flagship", "京东旗舰店 JD flagship", "jd"),
    DemoSource("youzan_shop", "有赞微商城 Youzan shop", "youzan"),
    DemoSource("douyin", "抖音小店与企业号 Douyin shop & account", "douyin"),
    DemoSource("xiaohongshu", "小红书店铺与账号 Xiaohongshu shop & account", "xiaohongshu"),
    DemoSource("pos", "门店收银 Store POS", "pos"),
    DemoSource("tea_salon", "线下品鉴会 Tea-tasting salons", "offline_event"),
    DemoSource("lead_forms", "留资表单 Lead forms", "form"),
    DemoSource("channels_live", "视频号直播 WeChat Channels live", "live_stream"),
    DemoSource("ads", "广告投放 Ad platforms", "ads"),
    DemoSource("crm", "会员CRM Membership CRM", "crm"),
    DemoSource("server", "服务端 Order & coupon service", "server"),
)

SOURCE_BY_KEY: dict[str, DemoSource] = {source.key: source for source in SOURCES}

# The SDK or connector that would have produced each source's messages.
LIBRARIES: dict[str, dict[str, str]] = {
    "website": {"name": "analytics.js", "version": "4.15.3"},
    "h5": {"name": "analytics.js", "version": "4.15.3"},
    "app": {"name": "analytics-kotlin", "version": "1.16.0"},
    "mini_program": {"name": "quanyu-miniprogram", "version": "0.9.2"},
    "wechat_oa": {"name": "quanyu-connector-wechat-oa", "version": "1.2.0"},
    "wecom": {"name": "quanyu-connector-wecom", "version": "1.1.0"},
    "tmall_flagship": {"name": "quanyu-connector-tmall", "version": "1.3.1"},
    "jd_flagship": {"name": "quanyu-connector-jd", "version": "1.0.4"},
    "youzan_shop": {"name": "quanyu-connector-youzan", "version": "1.0.2"},
    "douyin": {"name": "quanyu-connector-douyin", "version": "0.8.0"},
    "xiaohongshu": {"name": "quanyu-connector-xiaohongshu", "version": "0.6.1"},
    "pos": {"name": "analytics-python", "version": "2.3.2"},
    "tea_salon": {"name": "analytics-python", "version": "2.3.2"},
    "lead_forms": {"name": "quanyu-connector-jinshuju", "version": "0.4.0"},
    "channels_live": {"name": "quanyu-connector-channels", "version": "0.5.0"},
    "ads": {"name": "quanyu-connector-ads", "version": "1.0.0"},
    "crm": {"name": "analytics-java", "version": "3.5.1"},
    "server": {"name": "analytics-node", "version": "6.2.0"},
}
