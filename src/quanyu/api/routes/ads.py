"""Ads and tracking: redirect links with campaign ids (and the public `/a/{id}` redirect that
records each click), ad cost imports per campaign and day, and hashed audience files of a
segment for the ad platforms."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from quanyu.api.bodies import read_limited
from quanyu.api.deps import Caller, PlatformDep, get_platform
from quanyu.collect.messages import Envelope
from quanyu.connectors.ads import audiences, costs
from quanyu.connectors.ads.links import (
    AdLinks,
    anonymous_id,
    click_message,
    clicks,
    landing_url,
    link_url,
    new_anonymous_id,
)
from quanyu.errors import NotFound, QuanyuError
from quanyu.platform import Platform

log = logging.getLogger(__name__)
router = APIRouter(tags=["ads 广告"])

COOKIE = "ajs_anonymous_id"  # analytics.js' own cookie, so a later page on this host keeps the id
COOKIE_SECONDS = 365 * 24 * 3600
# A click is recorded within this long, or the visitor goes on without waiting for it.
RECORD_TIMEOUT_SECONDS = 3.0
Channel = Literal["baidu", "tencent", "ocean_engine", "xiaohongshu", "weibo", "kuaishou", "google", "other"]


class AdLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    source_id: str = Field(
        min_length=1, max_length=40, description="an `ads` source the clicks are recorded under"
    )
    target_url: str = Field(min_length=1, max_length=2048, description="the landing page (http or https)")
    campaign: str = Field(min_length=1, max_length=200, description="the campaign name, as in cost reports")
    channel: Channel
    utm_source: str | None = Field(default=None, max_length=200, description="default: the channel")
    utm_medium: str | None = Field(default=None, max_length=200, description="default: cpc")
    utm_campaign: str | None = Field(default=None, max_length=200, description="default: the campaign")
    utm_term: str | None = Field(default=None, max_length=200)
    utm_content: str | None = Field(default=None, max_length=200)


def _links(platform: Platform) -> AdLinks:
    return AdLinks(platform.engine, platform.sources)


def _with_url(platform: Platform, link: dict[str, Any]) -> dict[str, Any]:
    return {**link, "url": link_url(platform.journeys.public_url, link["id"])}


@router.post("/api/v1/ad-links", operation_id="create_ad_link", status_code=201)
def create_link(body: AdLinkCreate, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Create a redirect link; put its `url` in the ad, with the platform's click-id macro."""
    values = body.model_dump(exclude={"source_id", "name", "target_url", "campaign", "channel"})
    made = _links(platform).create(caller.workspace_id, body.source_id, body.name, body.target_url, body.campaign,
                                   body.channel, f"token:{caller.token_id}", **values)  # fmt: skip
    return _with_url(platform, made)


@router.get("/api/v1/ad-links", operation_id="list_ad_links")
def list_links(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Links with their clicks (processed events), visitors and clicks carrying a click id."""
    items = _links(platform).all(caller.workspace_id)
    counts = clicks(platform.warehouse, caller.workspace_id, [i["id"] for i in items])
    return {"items": [{**_with_url(platform, i), **counts[i["id"]]} for i in items]}


@router.get("/api/v1/ad-links/{link_id}", operation_id="get_ad_link")
def get_link(link_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    link = _links(platform).get(caller.workspace_id, link_id)
    return {
        **_with_url(platform, link),
        **clicks(platform.warehouse, caller.workspace_id, [link_id])[link_id],
    }


@router.get("/a/{link_id}", operation_id="ad_redirect", response_class=RedirectResponse, status_code=302,
            responses={302: {"description": "To the link's landing page, with UTM and click ids"},
                       404: {"description": "No such link"}})  # fmt: skip
async def ad_redirect(link_id: str, request: Request) -> Response:
    """Record an `Ad Clicked` event and redirect to the link's stored landing page (only
    that: nothing on the request can change where it leads)."""
    platform = get_platform(request)
    link = await run_in_threadpool(_links(platform).by_id, link_id)
    if link is None:
        raise NotFound(f"广告链接不存在 / ad link {link_id} not found", code="ad_link_not_found")
    query = request.query_params
    known = anonymous_id(request.cookies.get(COOKIE))
    visitor = known or new_anonymous_id()
    message = click_message(link, query, visitor, ip=request.client.host if request.client else None,
                            user_agent=request.headers.get("user-agent"),
                            referrer=request.headers.get("referer"))  # fmt: skip
    await _record(platform, link, message)
    response = RedirectResponse(landing_url(link, query), status_code=302)
    response.headers["Cache-Control"] = "no-store"  # every click must come back here to be counted
    if known is None:
        response.set_cookie(COOKIE, visitor, max_age=COOKIE_SECONDS, path="/", samesite="lax",
                            secure=request.url.scheme == "https")  # fmt: skip
    return response


async def _record(platform: Platform, link: dict[str, Any], message: dict[str, Any]) -> None:
    """Queue the click. The visitor paid for by the ad always lands: a disabled source, a full
    backlog or a slow commit is logged, never turned into an error page."""
    try:
        source = await run_in_threadpool(platform.sources.by_id, link["source_id"])
        if source is None or source.workspace_id != link["workspace_id"]:
            log.warning(
                "ad link %s: source %s missing or disabled, click not recorded", link["id"], link["source_id"]
            )
            return
        future, receipt = platform.intake.accept(source, [message], None, Envelope())
        if receipt.quarantined:
            log.warning("ad link %s: click quarantined: %s", link["id"], receipt.quarantined)
        await asyncio.wait_for(asyncio.wrap_future(future), RECORD_TIMEOUT_SECONDS)
    except (QuanyuError, TimeoutError) as exc:
        log.warning("ad link %s: click not recorded: %s", link["id"], exc)


# -- costs -----------------------------------------------------------------------------------------

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/api/v1/ad-costs/import", operation_id="import_ad_costs", openapi_extra=_CSV_BODY)
async def import_costs(
    request: Request,
    caller: Caller,
    channel: Annotated[str | None, Query(description="channel of rows without a channel column")] = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Import a cost report (CSV, UTF-8 or GBK): all rows or none; re-importing is idempotent."""
    platform = get_platform(request)
    data = await read_limited(request, costs.MAX_BYTES)

    def run() -> dict[str, Any]:
        parsed = costs.parse_csv(data, channel)
        return costs.import_costs(platform.engine, caller.workspace_id, parsed, dry_run=dry_run)

    return await run_in_threadpool(run)


@router.get("/api/v1/ad-costs", operation_id="list_ad_costs")
def list_costs(
    caller: Caller,
    platform: PlatformDep,
    from_: Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[date | None, Query(description="last day (inclusive)")] = None,
    channel: str | None = None,
    campaign: str | None = None,
) -> dict[str, Any]:
    """Spend, impressions and clicks per day, channel and campaign, with totals."""
    return costs.query_costs(platform.engine, caller.workspace_id, from_=from_, to=to, channel=channel,
                             campaign=campaign)  # fmt: skip


# -- audiences -------------------------------------------------------------------------------------


@router.get("/api/v1/segments/{segment_id}/audience", operation_id="segment_audience", response_class=Response,
            tags=["segments 分群"],
            responses={200: {"content": {"text/plain": {}, "text/csv": {}},
                             "description": "One hash per line (txt) or a one-column CSV"}})  # fmt: skip
def segment_audience(
    segment_id: str,
    caller: Caller,
    platform: PlatformDep,
    id_type: Literal["phone", "device_id"] = "phone",
    hash: Literal["md5", "sha256"] = "sha256",
    format: Literal["txt", "csv"] = "txt",
    device_case: Literal["auto", "upper", "lower"] = "auto",
) -> Response:
    """The members' phones or device ids, normalised and hashed, for ad platform audiences."""
    platform.segments.current(caller.workspace_id, segment_id)  # 404 for unknown and deleted ones
    made = audiences.build(
        platform.warehouse, caller.workspace_id, segment_id, id_type, hash, format, device_case
    )
    media = "text/csv; charset=utf-8" if format == "csv" else "text/plain; charset=utf-8"
    headers = {"Content-Disposition": f'attachment; filename="{segment_id}_{id_type}_{hash}.{format}"',
               "X-Audience-Count": str(made.count), "X-Audience-Members": str(made.members),
               "X-Audience-Matched": str(made.matched)}  # fmt: skip
    return Response(made.body, media_type=media, headers=headers)
