"""The brand's own web presence: ads, the website, campaign H5 pages, the app, lead forms."""

from __future__ import annotations

from typing import Any, NamedTuple

from .catalog import SEARCH_TERMS, pick_products, product_fields, product_line
from .consent import consent
from .identifiers import OA_APP_ID
from .membership import register
from .noise import junk_identifier, mistype_phone, scribble_email, scribble_phone
from .orders import complete_order
from .outbox import Who
from .people import Person
from .world import World

SITE = "https://www.camelliatea.cn"
H5 = "https://h5.camelliatea.cn"
_USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 "
    "XWEB/1110019 MMWEBSDK/20231202 MicroMessenger/8.0.45.2521(0x28002D37) WeChat/arm64",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
)
# (platform, utm_source, utm_medium, click-id parameter, landing)
AD_PLATFORMS = (
    ("baidu", "baidu", "cpc", "bd_vid", "website"),
    ("tencent_ads", "tencent_ads", "feed", "gdt_vid", "h5"),
    ("oceanengine", "douyin", "feed", "clickid", "h5"),
    ("xiaohongshu", "xiaohongshu", "kol", "clickid", "website"),
)
_CLICK_ID_KIND = {"bd_vid": "bd_vid", "gdt_vid": "gdt_vid", "clickid": "clickid"}
FORMS = (
    ("FORM-SAMPLE", "免费试饮申领 Free tasting pack"),
    ("FORM-SALON", "品鉴会报名 Tea salon sign-up"),
    ("FORM-CORPGIFT", "企业团购咨询 Corporate gifting enquiry"),
)
CONSENT_TEXT = (
    "我已阅读并同意《山茶记隐私政策》，同意山茶记通过短信、电话和微信向我发送产品与活动信息，"
    "可随时回复TD退订。"
)
_CATEGORY_PATHS = {"茶叶": "tea", "茶具": "teaware", "零食": "snacks"}


def web_context(world: World, person: Person) -> dict[str, Any]:
    """userAgent and a documentation-range IP for one browsing session."""
    agent = _USER_AGENTS[int(person.person_id[1:]) % len(_USER_AGENTS)]
    return {"userAgent": agent, "ip": f"203.0.113.{world.rng.randrange(1, 255)}"}


class AdClick(NamedTuple):
    """What an ad click hands the landing page: UTM campaign and the platform's click id."""

    campaign: dict[str, str]
    param: str  # bd_vid, gdt_vid or clickid
    click_id: str

    def properties(self) -> dict[str, str]:
        """The click id as landing-page properties carry it."""
        return {self.param: self.click_id}


def click_ad(world: World, person: Person, t: int) -> tuple[str, AdClick]:
    """`Ad Clicked` on an ad platform; returns the landing ("website"/"h5") and the click."""
    platform, utm_source, medium, param, landing = world.rng.choice(AD_PLATFORMS)
    key = world.timeline.campaign_key(t)
    campaign = {
        "name": key,
        "source": utm_source,
        "medium": medium,
        "content": f"creative_{world.rng.randint(1, 24):02d}",
    }
    if platform == "baidu":
        campaign["term"] = world.rng.choice(SEARCH_TERMS)
    click_id = world.ids.new(_CLICK_ID_KIND[param])
    world.outbox.track(
        "ads",
        Who(person.person_id, anonymous_id=click_id),
        t,
        "Ad Clicked",
        {
            "platform": platform,
            "campaign_id": f"{platform}_{key}",
            "adgroup_id": f"ag_{world.rng.randint(100, 999)}",
            "creative_id": campaign["content"],
            param: click_id,
            "landing_page": SITE if landing == "website" else H5,
        },
        {"campaign": campaign, **web_context(world, person)},
    )
    return landing, AdClick(campaign, param, click_id)


def ad_journey(world: World, person: Person, t: int) -> None:
    """An ad click that lands on the website or a campaign H5 page."""
    landing, ad = click_ad(world, person, t)
    visit = visit_website if landing == "website" else visit_h5
    visit(world, person, t + world.rng.randint(2, 8), ad)


def _cookie(world: World, person: Person, kind: str) -> str:
    if world.chance(0.06):
        person.flags.discard(f"{kind}_login")
        return person.renew(kind, world.ids)
    return person.id(kind, world.ids)


def _landing_url(base: str, path: str, ad: AdClick | None) -> str:
    if ad is None:
        return base + path
    campaign, param, click_id = ad
    query = "&".join(f"utm_{k}={v}" for k, v in campaign.items() if k != "name")
    return f"{base}{path}?utm_campaign={campaign['name']}&{query}&{param}={click_id}"


def visit_website(world: World, person: Person, t: int, ad: AdClick | None = None, buy: bool = False) -> None:
    """A website session: landing, product pages, maybe a search, a sign-up or an order."""
    cookie = _cookie(world, person, "cookie")
    anonymous = junk_identifier(world.rng) if person.noisy and world.chance(0.08) else cookie
    user_id = person.user_id if "cookie_login" in person.flags else None
    who = Who(person.person_id, user_id, anonymous)
    context = web_context(world, person)
    path = f"/campaign/{ad.campaign['name']}" if ad else world.rng.choice(("/", "/", "/category/tea"))
    referrer = "https://www.baidu.com/" if ad is None and world.chance(0.4) else ""
    if ad:
        context["campaign"] = ad.campaign
    page = {
        "url": _landing_url(SITE, path, ad),
        "path": path,
        "referrer": referrer,
        "title": "山茶记 Camellia Tea | 一杯好茶",
    }
    name = "首页 Home" if path == "/" else "活动页 Landing"
    world.outbox.page("website", who, t, name, page, context, ad.properties() if ad else None)
    context = {k: v for k, v in context.items() if k != "campaign"}
    t = _browse_web(world, person, who, t, context)
    if ad and world.chance(0.18):
        submit_form(world, person, t + world.rng.randint(30, 240), anonymous_id=cookie, campaign=ad.campaign)
    if buy or world.chance(0.03):
        _web_checkout(world, person, t, cookie, context, buy)


def _browse_web(world: World, person: Person, who: Who, t: int, context: dict[str, Any]) -> int:
    if world.chance(0.3):
        t += world.rng.randint(10, 60)
        query = world.rng.choice(SEARCH_TERMS)
        world.outbox.track("website", who, t, "Products Searched", {"query": query}, context)
    for product in pick_products(world.rng, person.tea_lover):
        t += world.rng.randint(8, 120)
        path = f"/products/{product.product_id}"
        world.outbox.page(
            "website",
            who,
            t,
            "商品详情 Product",
            {"url": SITE + path, "path": path, "referrer": SITE + "/", "title": f"{product.name} - 山茶记"},
            context,
        )
        world.outbox.track("website", who, t + 1, "Product Viewed", product_fields(product), context)
    return t + world.rng.randint(10, 90)


def _web_checkout(
    world: World, person: Person, t: int, cookie: str, context: dict[str, Any], buy: bool
) -> None:
    t = sign_in(world, person, t, "website", cookie, context)
    who = Who(person.person_id, person.user_id, cookie)
    if not buy:
        return
    products = pick_products(world.rng, person.tea_lover)
    for product in products:
        world.outbox.track("website", who, t, "Product Added", product_line(product), context)
        t += world.rng.randint(5, 50)
    world.outbox.track("website", who, t, "Checkout Started", {"currency": "CNY"}, context)
    complete_order(
        world,
        person,
        t + world.rng.randint(30, 200),
        "website",
        who,
        products,
        extra={"payment_method": world.rng.choice(("alipay", "wechat_pay"))},
        context=context,
    )


def sign_in(
    world: World, person: Person, t: int, source: str, anonymous_id: str, context: dict[str, Any]
) -> int:
    """Sign up (first time) or log in on the website or app, then `identify`."""
    login_flag = f"{'cookie' if source == 'website' else 'app_install'}_login"
    if login_flag in person.flags:
        return t
    person.flags.add(login_flag)
    new = register(world, person, t, source)
    assert person.user_id is not None
    who = Who(person.person_id, person.user_id, anonymous_id)
    traits: dict[str, Any] = {"phone": _typed_phone(world, person)}
    if person.email and world.chance(0.7):
        traits["email"] = scribble_email(world.rng, person.email) if person.noisy else person.email
    if new:
        traits["name"] = person.name
        world.outbox.track(source, who, t, "Signed Up", {"method": "phone_sms"}, context)
        if world.chance(0.5):
            world.outbox.alias(source, who, t + 1, anonymous_id)
    world.outbox.identify(source, who, t + 2, traits, context)
    return t + world.rng.randint(20, 90)


def _typed_phone(world: World, person: Person) -> str:
    return scribble_phone(world.rng, person.phone) if person.noisy else person.phone


def visit_h5(world: World, person: Person, t: int, ad: AdClick | None = None) -> None:
    """A campaign H5 page opened inside WeChat: claim a coupon, share, leave a lead."""
    cookie = _cookie(world, person, "h5_cookie")
    external: tuple[tuple[str, ...], ...] = ()
    if world.chance(0.55):  # opened via WeChat OAuth, so the page knows the openid
        external = (
            ("wechat_openid", person.id("oa_openid", world.ids), OA_APP_ID),
            ("wechat_unionid", person.id("wechat_unionid", world.ids)),
        )
    who = Who(person.person_id, None, cookie, external)
    context = web_context(world, person)
    key = ad.campaign["name"] if ad else world.timeline.campaign_key(t)
    if ad:
        context["campaign"] = ad.campaign
    path = f"/{key}"
    world.outbox.page(
        "h5",
        who,
        t,
        "活动落地页 Campaign landing",
        {"url": _landing_url(H5, path, ad), "path": path, "referrer": "", "title": "山茶记 · 限时好礼"},
        context,
        ad.properties() if ad else None,
    )
    t += world.rng.randint(10, 90)
    if world.chance(0.45):
        world.outbox.track(
            "h5", who, t, "Coupon Claimed", {"coupon_id": "CPN-FESTIVAL-30", "campaign": key}, context
        )
    if world.chance(0.15):
        world.outbox.track(
            "h5",
            who,
            t + 5,
            "Campaign Shared",
            {"share_channel": world.rng.choice(("friend", "moments", "group"))},
            context,
        )
    if world.chance(0.22):
        submit_form(
            world,
            person,
            t + world.rng.randint(20, 120),
            anonymous_id=cookie,
            campaign=ad.campaign if ad else None,
        )


def submit_form(
    world: World,
    person: Person,
    t: int,
    anonymous_id: str | None = None,
    campaign: dict[str, str] | None = None,
) -> None:
    """A lead form: name, phone, city and the consent the person gave."""
    form_id, form_name = world.rng.choice(FORMS)
    phone = _typed_phone(world, person)
    if world.chance(0.015):
        phone = mistype_phone(world.rng, person.phone)
    anonymous = anonymous_id or person.id("respondent", world.ids)
    who = Who(person.person_id, None, anonymous, (("phone", phone),))
    traits: dict[str, Any] = {"name": person.name, "phone": phone, "city": person.city}
    if person.email and world.chance(0.3):
        traits["email"] = person.email
    granted = world.chance(0.93)  # the consent box is ticked by default; a few untick it
    properties = {
        "form_id": form_id,
        "form_name": form_name,
        **traits,
        "consent": granted,
        "consent_text": CONSENT_TEXT,
        "consent_time": world.timeline.stamp(t),
    }
    context: dict[str, Any] = {"campaign": campaign} if campaign else {}
    world.outbox.track("lead_forms", who, t, "Form Submitted", properties, context, traits)
    # The form tool's connector also reports the consent itself, per channel the wording names
    # (短信 SMS, 微信 WeChat; a phone call is not a journey channel).
    for channel in ("sms", "wechat_oa"):
        consent(world, "lead_forms", who, t + 1, channel, granted, form=form_id, wording=CONSENT_TEXT)
    person.flags.add("lead")
