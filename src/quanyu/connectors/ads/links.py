"""Ad redirect links (广告跳转链接): `/a/{id}` placed in an ad as its landing URL.

A click is recorded as an `Ad Clicked` track event under the link's `ads` source (through the
same intake as `/v1/batch`), then the visitor is sent on, with a 302, to the link's stored
landing page, with the link's UTM values and the ad platform's click id appended:

- UTM goes into the event's `context.campaign` (name, source, medium, term, content), the place
  the pipeline promotes to the `utm_*` columns, and onto the landing URL for the site's own
  analytics;
- click ids the platform appends to the ad's URL (百度 `bd_vid`, 腾讯 `gdt_vid`/`qz_gdt`,
  巨量引擎 `clickid`, Google `gclid` …) go into the event's properties, the place identity
  resolution reads them from (`identity.extract`), and on to the landing page, whose own page
  event carries them as well: the two records share the click id, so the click and the visit
  are one person. Conversion-callback macros (`callback`, `ad_id`, `creative_id`) follow them.

Only the stored target is ever used: nothing on the incoming request can change where the
redirect leads (no open redirect).
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from quanyu.collect.sources import Sources
from quanyu.errors import Conflict, InvalidInput, NotFound
from quanyu.store.engine import reading
from quanyu.store.models import AdLink

_L = AdLink.__table__

# channel -> (label, default utm_source). The channel names are shared with cost imports, so a
# campaign's clicks and its spend meet on the same (channel, campaign).
CHANNELS: dict[str, tuple[str, str]] = {
    "baidu": ("百度营销 Baidu", "baidu"),
    "tencent": ("腾讯广告 Tencent Ads (广点通)", "tencent"),
    "ocean_engine": ("巨量引擎 Ocean Engine (抖音/头条)", "oceanengine"),
    "xiaohongshu": ("小红书聚光 Xiaohongshu", "xiaohongshu"),
    "weibo": ("微博超级粉丝通 Weibo", "weibo"),
    "kuaishou": ("磁力引擎 Kuaishou", "kuaishou"),
    "google": ("Google Ads", "google"),
    "other": ("其他 Other", "other"),
}
# Click ids, by the query parameter each platform appends; the same names identity resolution
# reads from event properties (identity.extract._CLICK_ID_PATHS, checked by a test).
CLICK_IDS: dict[str, str] = {
    "bd_vid": "百度 Baidu",
    "gdt_vid": "腾讯广告 Tencent Ads",
    "qz_gdt": "腾讯广告 (QQ空间/朋友圈) Tencent Ads",
    "clickid": "巨量引擎 / 小红书 Ocean Engine, Xiaohongshu",
    "gclid": "Google Ads",
    "fbclid": "Meta",
    "ttclid": "TikTok",
    "msclkid": "Microsoft Ads",
}
# Macros platforms fill in for conversion callbacks (回传): kept on the event, passed on.
MACROS = ("callback", "ad_id", "creative_id")
PASSED = (*CLICK_IDS, *MACROS)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
DEFAULT_MEDIUM = "cpc"
EVENT = "Ad Clicked"
MAX_URL = 2048
MAX_PARAM = 1024  # a callback URL is long, but one value never needs more
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 8
# Spaces, control characters and backslashes have no place in a landing URL; browsers read a
# backslash as a slash, which is how "https://brand.com\@evil.com" tricks a naive check.
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_LINK_ID = re.compile(r"^[a-z0-9]{1,16}$")


def check_target(url: str) -> str:
    """The landing URL, if it is an absolute http(s) URL a browser cannot misread; else 400."""
    text = url.strip()

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"落地页地址无效 / invalid target URL ({why}): {text[:200]!r}",
                            code="invalid_target_url")  # fmt: skip

    if not text or len(text) > MAX_URL:
        raise bad(f"1–{MAX_URL} 字符 / 1–{MAX_URL} characters")
    if _UNSAFE_URL.search(text):
        raise bad("含空白、控制字符或反斜杠 / spaces, control characters or backslashes")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise bad("仅支持 http/https / only http and https")
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise bad("端口无效 / bad port") from None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise bad("需要主机名，不能带用户名密码 / needs a host and no user:password@")
    return text


def _clean(value: str | None, field: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if _CONTROL.search(text) or len(text) > limit:
        raise InvalidInput(f"{field} 无效 / invalid {field}: at most {limit} characters, no control characters",
                           code="invalid_ad_link")  # fmt: skip
    return text or None


class AdLinks:
    def __init__(self, engine: Engine, sources: Sources) -> None:
        self.engine = engine
        self.sources = sources

    def create(self, workspace_id: str, source_id: str, name: str, target_url: str, campaign: str,
               channel: str, actor: str, *, utm_source: str | None = None, utm_medium: str | None = None,
               utm_campaign: str | None = None, utm_term: str | None = None,
               utm_content: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Record a link; the UTM values default to the channel, `cpc` and the campaign."""
        target = check_target(target_url)
        if channel not in CHANNELS:
            raise InvalidInput(f"未知渠道 / unknown channel {channel!r} (known: {', '.join(CHANNELS)})",
                               code="invalid_channel")  # fmt: skip
        # NFKC as cost imports do, so a full-width "２０２６_双11" meets its costs.
        name_text, campaign_text = (
            _clean(name, "name"),
            _clean(unicodedata.normalize("NFKC", campaign), "campaign"),
        )
        if not name_text or not campaign_text:
            raise InvalidInput("名称与计划不能为空 / name and campaign are required", code="invalid_ad_link")
        source = self.sources.get(workspace_id, source_id)
        if source.type != "ads":
            raise InvalidInput(f"来源 {source_id} 不是广告来源 / source {source_id} is not an `ads` source",
                               code="invalid_source")  # fmt: skip
        row = {
            "workspace_id": workspace_id, "source_id": source_id, "name": name_text, "target_url": target,
            "campaign": campaign_text, "channel": channel,
            "utm_source": _clean(utm_source, "utm_source") or CHANNELS[channel][1],
            "utm_medium": _clean(utm_medium, "utm_medium") or DEFAULT_MEDIUM,
            "utm_campaign": _clean(utm_campaign, "utm_campaign") or campaign_text,
            "utm_term": _clean(utm_term, "utm_term"), "utm_content": _clean(utm_content, "utm_content"),
            "created_at": datetime.now(UTC), "created_by": actor,
        }  # fmt: skip
        for _attempt in range(5):  # 36^8 ids: a collision is rare, and then another id is drawn
            row["id"] = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
            try:
                with self.engine.begin() as conn:
                    conn.execute(_L.insert().values(**row))
                return public(row)
            except IntegrityError:
                continue
        raise Conflict(
            "无法生成链接ID，请重试 / could not draw a free link id, try again", code="ad_link_id_taken"
        )

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(_L).where(_L.c.workspace_id == workspace_id).order_by(_L.c.created_at, _L.c.id)
            ).all()
        return [public(r._mapping) for r in rows]

    def get(self, workspace_id: str, link_id: str) -> dict[str, Any]:
        found = self.by_id(link_id)
        if found is None or found["workspace_id"] != workspace_id:
            raise NotFound(f"广告链接不存在 / ad link {link_id} not found", code="ad_link_not_found")
        return public(found)

    def by_id(self, link_id: str) -> dict[str, Any] | None:
        """The stored link by its id alone (the public redirect carries only the id)."""
        if not _LINK_ID.match(link_id):
            return None
        with reading(self.engine) as conn:
            row = conn.execute(select(_L).where(_L.c.id == link_id)).first()
        return dict(row._mapping) if row is not None else None


def public(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "source_id": row["source_id"], "name": row["name"], "target_url": row["target_url"],
            "campaign": row["campaign"], "channel": row["channel"],
            **{k: row[k] for k in UTM_FIELDS}, "created_at": row["created_at"].isoformat(),
            "created_by": row["created_by"]}  # fmt: skip


def link_url(public_url: str, link_id: str) -> str:
    """The URL to put in the ad (its landing URL at the platform)."""
    return f"{public_url.rstrip('/')}/a/{link_id}"


def passed_params(query: Mapping[str, str]) -> dict[str, str]:
    """The click ids and macros on the incoming query, in a fixed order; empty, oversized and
    control-character values are dropped (a click id never holds them)."""
    out: dict[str, str] = {}
    for name in PASSED:
        value = query.get(name)
        if value and len(value) <= MAX_PARAM and not _CONTROL.search(value):
            out[name] = value
    return out


def landing_url(link: Mapping[str, Any], query: Mapping[str, str]) -> str:
    """The stored target with the link's UTM values and the incoming click ids appended.

    The target's own query is kept byte for byte (re-encoding could change what the landing
    page reads), except for parameters this link sets, which it replaces.
    """
    parts = urlsplit(link["target_url"])
    extra = {k: link[k] for k in UTM_FIELDS if link.get(k)}
    extra.update(passed_params(query))
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in extra]
    joined = "&".join([*kept, urlencode(extra)]) if extra else "&".join(kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def anonymous_id(cookie: str | None) -> str | None:
    """The visitor's id from analytics.js' `ajs_anonymous_id` cookie (older versions store it
    JSON-quoted, some URL-encoded), or None when absent or not an id."""
    if not cookie:
        return None
    text = unquote(cookie).strip().strip('"')
    return text if _ANONYMOUS_ID.match(text) else None


def new_anonymous_id() -> str:
    return str(uuid.uuid4())


def click_message(link: Mapping[str, Any], query: Mapping[str, str], anonymous: str, *, ip: str | None,
                  user_agent: str | None, referrer: str | None) -> dict[str, Any]:  # fmt: skip
    """The `Ad Clicked` track message of one click, in the Segment spec."""
    campaign = {"name": link["utm_campaign"], "source": link["utm_source"], "medium": link["utm_medium"],
                "term": link.get("utm_term"), "content": link.get("utm_content")}  # fmt: skip
    context: dict[str, Any] = {"campaign": {k: v for k, v in campaign.items() if v}}
    if ip:
        context["ip"] = ip
    if user_agent:
        context["userAgent"] = user_agent[:512]
    if referrer:
        context["page"] = {"referrer": referrer[:MAX_URL]}
    properties = {"ad_link_id": link["id"], "link_name": link["name"], "campaign": link["campaign"],
                  "channel": link["channel"], "target_url": link["target_url"], **passed_params(query)}  # fmt: skip
    return {"type": "track", "event": EVENT, "anonymousId": anonymous, "messageId": f"adclick-{uuid.uuid4()}",
            "properties": properties, "context": context}  # fmt: skip


def clicks(warehouse: Any, workspace_id: str, link_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per link: clicks stored so far, distinct visitors (anonymous ids), clicks with a
    platform click id, and the last click's time."""
    from quanyu.warehouse.functions import json_text

    out: dict[str, dict[str, Any]] = {
        i: {"clicks": 0, "visitors": 0, "with_click_id": 0, "last_click_at": None} for i in link_ids
    }
    if not link_ids:
        return out
    ev = warehouse.table("events")
    link = json_text(ev.properties, "$.ad_link_id")
    hits = ev.filter(ev.workspace_id == workspace_id, ev.event == EVENT, link.isin(link_ids))
    with_id = [json_text(hits.properties, f"$.{name}").notnull() for name in CLICK_IDS]
    any_id = with_id[0]
    for test in with_id[1:]:
        any_id = any_id | test
    expr = hits.group_by(link_id=link).aggregate(
        clicks=hits.count(), visitors=hits.anonymous_id.nunique(), with_click_id=any_id.sum(),
        last_click_at=hits.timestamp.max(),
    )  # fmt: skip
    for row in warehouse.execute(expr).to_pylist():
        last = row["last_click_at"]
        out[row["link_id"]] = {"clicks": int(row["clicks"] or 0), "visitors": int(row["visitors"] or 0),
                               "with_click_id": int(row["with_click_id"] or 0),
                               "last_click_at": last.astimezone(UTC).isoformat() if last else None}  # fmt: skip
    return out
