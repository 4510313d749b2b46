"""Public endpoints people and providers reach without a token: unsubscribe links (with the
RFC 8058 one-click POST), the open pixel, click redirects, and SMS provider callbacks (replies
such as "TD" and delivery reports), whose URLs carry a per-workspace signature."""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyu.api.deps import Caller, PlatformDep
from quanyu.channels.sms.inbound import ALIYUN_ACK, TENCENT_ACK, is_unsubscribe, parse_replies, parse_reports
from quanyu.channels.tracking import verify
from quanyu.errors import InvalidInput, NotFound, Unauthorized
from quanyu.platform import Platform

log = logging.getLogger(__name__)
router = APIRouter(tags=["tracking 回执"])

# A 1×1 transparent GIF.
_PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">{body}</body></html>"""


def _token(platform: Platform, token: str) -> dict[str, Any]:
    return verify(platform.journeys.link_secret, token)


@router.get("/r/u/{token}", operation_id="unsubscribe_page", response_class=HTMLResponse)
def unsubscribe_page(token: str, platform: PlatformDep) -> HTMLResponse:
    """The page an unsubscribe link opens: one button, so a mail scanner's GET changes nothing."""
    _token(platform, token)
    body = (f'<h1>退订 / Unsubscribe</h1><p>不再接收此类营销消息？/ Stop receiving these marketing messages?</p>'
            f'<form method="post" action="/r/u/{html.escape(token)}"><button type="submit">确认退订 / Unsubscribe'
            f"</button></form>")  # fmt: skip
    return HTMLResponse(_PAGE.format(title="退订 Unsubscribe", body=body))


@router.post("/r/u/{token}", operation_id="unsubscribe", response_class=HTMLResponse)
def unsubscribe(token: str, platform: PlatformDep) -> HTMLResponse:
    """Withdraw marketing consent on this channel (the page's button and RFC 8058 one-click)."""
    fields = _token(platform, token)
    address = _address_of(platform, fields)
    platform.journeys.receipts.unsubscribe(
        fields["w"], fields["c"], address or fields["p"], source="unsubscribe_link", profile_id=fields["p"],
        evidence={"key": fields.get("k")}, dedupe_key=f"unsub:{fields.get('k')}",
    )  # fmt: skip
    body = "<h1>已退订 / Unsubscribed</h1><p>您将不再收到此类营销消息。/ You will not receive these messages again.</p>"
    return HTMLResponse(_PAGE.format(title="已退订 Unsubscribed", body=body))


@router.get("/r/o/{token}", operation_id="open_pixel")
def open_pixel(token: str, platform: PlatformDep) -> Response:
    try:
        fields = _token(platform, token)
        platform.journeys.receipts.record("opened", key=fields.get("k"), workspace_id=fields.get("w"))
    except InvalidInput:
        pass  # a broken pixel still answers with a pixel
    return Response(_PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/r/c/{token}", operation_id="click_redirect")
def click(token: str, platform: PlatformDep) -> RedirectResponse:
    """Count the click and go on to the link the message carried (signed: no open redirect)."""
    fields = _token(platform, token)
    url = fields.get("u")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInput("链接无效 / invalid link", code="invalid_link_token")
    platform.journeys.receipts.record(
        "clicked", key=fields.get("k"), detail={"url": url}, workspace_id=fields.get("w")
    )
    return RedirectResponse(url, status_code=302)


def _address_of(platform: Platform, fields: dict[str, Any]) -> str | None:
    from sqlalchemy import select

    from quanyu.store.engine import reading
    from quanyu.store.models import OutboxMessage

    o = OutboxMessage.__table__
    with reading(platform.engine) as conn:
        return conn.execute(select(o.c.address).where(o.c.key == fields.get("k"))).scalar_one_or_none()


# -- SMS provider callbacks ------------------------------------------------------------------------


def hook_signature(platform: Platform, workspace_id: str) -> str:
    return hmac.new(
        platform.journeys.link_secret, f"sms-hook:{workspace_id}".encode(), hashlib.sha256
    ).hexdigest()[:32]


@router.get("/api/v1/channels/hooks", operation_id="channel_hooks", tags=["messaging 触达"])
def hooks(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """The callback URLs to give SMS providers (replies and delivery reports)."""
    base = platform.journeys.public_url
    sig = hook_signature(platform, caller.workspace_id)
    return {provider: {kind: f"{base}/hooks/sms/{provider}/{caller.workspace_id}/{kind}?sig={sig}"
                       for kind in ("replies", "reports")} for provider in ("aliyun", "tencent")}  # fmt: skip


@router.post("/hooks/sms/{provider}/{workspace_id}/{kind}", operation_id="sms_callback")
async def sms_callback(provider: str, workspace_id: str, kind: str, request: Request,
                       platform: PlatformDep) -> dict[str, Any]:  # fmt: skip
    """Aliyun / Tencent Cloud push: replies (unsubscribe words withdraw SMS marketing consent)
    and delivery reports (become `Message Delivered` / `Message Failed` on the person)."""
    if not hmac.compare_digest(request.query_params.get("sig", ""), hook_signature(platform, workspace_id)):
        raise Unauthorized("回调签名无效 / invalid callback signature", code="invalid_signature")
    if kind not in ("replies", "reports") or provider not in ("aliyun", "tencent"):
        raise NotFound("未知回调 / unknown callback", code="not_found")
    receipts = platform.journeys.receipts
    done = 0
    try:
        payload = orjson.loads(await request.body())
        replies = parse_replies(provider, payload) if kind == "replies" else []
        reports = parse_reports(provider, payload) if kind == "reports" else []
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise InvalidInput(f"回调内容无效 / invalid callback body: {exc}", code="invalid_callback") from None
    for reply in replies:
        if is_unsubscribe(reply.text):
            key = f"sms-reply:{provider}:{reply.phone}:{reply.at.isoformat()}"
            done += receipts.unsubscribe(workspace_id, "sms", reply.phone, source="sms_reply", at=reply.at,
                                         evidence={"text": reply.text}, dedupe_key=key)  # fmt: skip
    for report in reports:
        detail = {"code": report.error_code} if report.error_code else None
        outcome = "delivered" if report.status == "delivered" else "failed"
        if report.key:
            done += receipts.record(
                outcome, key=report.key, at=report.at, detail=detail, workspace_id=workspace_id
            )
        else:
            done += receipts.record(
                outcome,
                provider_id=report.provider_id,
                at=report.at,
                detail=detail,
                workspace_id=workspace_id,
            )
    # Each provider pushes again unless it gets its own success answer.
    ack = ALIYUN_ACK if provider == "aliyun" else TENCENT_ACK
    return {**ack, "recorded": done}
