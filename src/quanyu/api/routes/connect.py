"""Connector push endpoints: platforms calling Quanyu in their own protocol (no write key; each
push is checked with the platform's own signature against the source's stored secrets)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from quanyu.api.bodies import read_limited
from quanyu.api.deps import get_platform
from quanyu.collect.messages import Envelope
from quanyu.collect.sources import SourceInfo
from quanyu.connectors import wechat_oa, wecom, youzan
from quanyu.connectors.imports.importer import message_id as import_message_id
from quanyu.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge
from quanyu.platform import Platform

router = APIRouter(tags=["connect 连接器"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a WeChat XML message (invalid XML, DTD or entity declarations)"},
    403: {"description": "Bad signature, ciphertext or app id"},
    404: {"description": "No enabled wechat_oa source with this id"},
    413: {"description": "Body too large"},
    429: {"description": "Backlog full"},
}


# A push names its source in the URL; WeChat pushes arrive by the thousand, so the source and its
# decrypted secrets are kept for a few seconds instead of being read (and decrypted) per push.
# A changed secret or a disabled source takes effect within that time.
_CONFIG_SECONDS = 5.0
_configs: dict[tuple[int, str], tuple[float, SourceInfo, dict[str, str]]] = {}


def _connector_source(
    platform: Platform, source_id: str, type_: str, required: tuple[str, ...], label: str
) -> tuple[SourceInfo, dict[str, str]]:
    key, now = (id(platform), source_id), time.monotonic()
    hit = _configs.get(key)
    if hit is not None and hit[0] > now and hit[1].type == type_:
        source, config = hit[1], hit[2]
    else:
        found = platform.sources.by_id(source_id)
        if found is None or found.type != type_:
            raise NotFound(
                f"{label}来源不存在 / {type_} source {source_id} not found", code="source_not_found"
            )
        source = found
        secrets = platform.sources.secret_settings(source.workspace_id, source.id)
        config = {**{k: str(v) for k, v in source.settings.items()}, **secrets}
        _configs[key] = (now + _CONFIG_SECONDS, source, config)
    missing = [name for name in required if not config.get(name)]
    if missing:
        raise Forbidden(f"来源未配置 {' / '.join(missing)} / the source is not configured ({', '.join(missing)})",
                        code=f"{type_.split('_')[0]}_not_configured")  # fmt: skip
    return source, config


def _wechat_source(platform: Platform, source_id: str) -> tuple[SourceInfo, dict[str, str]]:
    return _connector_source(platform, source_id, "wechat_oa", ("token",), "公众号")


def _wecom_source(platform: Platform, source_id: str) -> tuple[SourceInfo, dict[str, str]]:
    return _connector_source(platform, source_id, "wecom", ("token", "aes_key", "corp_id"), "企业微信")


def _youzan_source(platform: Platform, source_id: str) -> tuple[SourceInfo, dict[str, str]]:
    return _connector_source(platform, source_id, "youzan", ("client_id", "client_secret"), "有赞")


def _forbidden(code: str = "invalid_signature") -> Forbidden:
    return Forbidden("微信签名无效 / invalid WeChat signature", code=code)


@router.get("/connect/wechat/{source_id}", operation_id="wechat_oa_verify", response_class=PlainTextResponse,
            responses=_RESPONSES)  # fmt: skip
def wechat_verify(source_id: str, request: Request) -> PlainTextResponse:
    """URL verification (服务器配置): answers `echostr` when the signature matches the token."""
    _, config = _wechat_source(get_platform(request), source_id)
    q = request.query_params
    if not wechat_oa.check_signature(
        q.get("signature"), config["token"], q.get("timestamp", ""), q.get("nonce", "")
    ):
        raise _forbidden()
    return PlainTextResponse(q.get("echostr", ""))


@router.post("/connect/wechat/{source_id}", operation_id="wechat_oa_push", response_class=PlainTextResponse,
             responses=_RESPONSES)  # fmt: skip
async def wechat_push(source_id: str, request: Request) -> PlainTextResponse:
    """Message push (消息推送), plain or safe mode (`encrypt_type=aes`); answers `success`."""
    platform = get_platform(request)
    source, config = await run_in_threadpool(_wechat_source, platform, source_id)
    body = await read_limited(request, wechat_oa.MAX_BODY_BYTES)
    q = request.query_params
    token, timestamp, nonce = config["token"], q.get("timestamp", ""), q.get("nonce", "")
    app_id = config.get("app_id", "")
    try:
        if q.get("encrypt_type", "raw").lower() == "aes":
            outer = wechat_oa.parse_xml(body)
            encrypted = outer.get("Encrypt", "")
            if not encrypted or not wechat_oa.check_signature(q.get("msg_signature"), token, timestamp, nonce,
                                                              encrypted):  # fmt: skip
                raise _forbidden()
            if not config.get("aes_key"):
                raise _forbidden("wechat_not_configured")
            fields = wechat_oa.parse_xml(wechat_oa.decrypt(config["aes_key"], app_id, encrypted))
        else:
            if not wechat_oa.check_signature(q.get("signature"), token, timestamp, nonce):
                raise _forbidden()
            fields = wechat_oa.parse_xml(body)
        message = wechat_oa.normalise(fields, app_id)
    except wechat_oa.WeChatError as err:
        if err.code in ("wechat_bad_ciphertext", "wechat_wrong_app_id"):
            raise Forbidden(err.message, code=err.code) from None
        if err.code == "wechat_too_large":
            raise PayloadTooLarge(err.message, code=err.code) from None
        raise InvalidInput(err.message, code=err.code) from None
    await run_in_threadpool(_attribute, platform, source, message)
    future, _ = platform.intake.accept(source, [message], None, Envelope())
    await asyncio.wrap_future(future)
    receipt = wechat_oa.receipt(fields)
    if receipt is not None:
        await run_in_threadpool(platform.journeys.receipts.record, receipt.kind, provider_id=receipt.provider_id,
                                detail=receipt.detail, workspace_id=source.workspace_id)  # fmt: skip
    # WeChat retries (three times, 5 s apart) unless it reads `success` (or an empty body).
    return PlainTextResponse("success")


_WECOM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_RESPONSES,
    403: {"description": "Bad signature, ciphertext or corp id"},
    404: {"description": "No wecom source with this id"},
}


def _wecom_error(err: wechat_oa.WeChatError) -> Exception:
    if err.code == "invalid_signature":
        return Forbidden("企业微信签名无效 / invalid WeCom signature", code="invalid_signature")
    if err.code in ("wechat_bad_ciphertext", "wecom_wrong_corp_id"):
        return Forbidden(err.message, code=err.code)
    if err.code == "wechat_too_large":
        return PayloadTooLarge(err.message, code=err.code)
    return InvalidInput(err.message, code=err.code)


@router.get("/connect/wecom/{source_id}", operation_id="wecom_verify", response_class=PlainTextResponse,
            responses=_WECOM_RESPONSES)  # fmt: skip
def wecom_verify(source_id: str, request: Request) -> PlainTextResponse:
    """URL verification (接收事件服务器): answers the decrypted `echostr` when msg_signature matches."""
    _, config = _wecom_source(get_platform(request), source_id)
    q = request.query_params
    echostr = q.get("echostr", "")
    if not echostr or not wecom.check_signature(
        q.get("msg_signature"), config["token"], q.get("timestamp", ""), q.get("nonce", ""), echostr
    ):
        raise Forbidden("企业微信签名无效 / invalid WeCom signature", code="invalid_signature")
    try:
        return PlainTextResponse(wecom.decrypt_echostr(config["aes_key"], config["corp_id"], echostr))
    except wechat_oa.WeChatError as err:
        raise _wecom_error(err) from None


@router.post("/connect/wecom/{source_id}", operation_id="wecom_callback", response_class=PlainTextResponse,
             responses=_WECOM_RESPONSES)  # fmt: skip
async def wecom_callback(source_id: str, request: Request) -> PlainTextResponse:
    """External-contact callbacks (客户联系 变更事件), always encrypted; answers `success`."""
    platform = get_platform(request)
    source, config = await run_in_threadpool(_wecom_source, platform, source_id)
    body = await read_limited(request, wecom.MAX_BODY_BYTES)
    corp_id = config["corp_id"]
    try:
        fields = wecom.decrypt_message(body, config["token"], config["aes_key"], corp_id,
                                       dict(request.query_params))  # fmt: skip
        message = wecom.normalise(fields, corp_id)
    except wechat_oa.WeChatError as err:
        raise _wecom_error(err) from None
    # 渠道活码 State is a scene: a parametric QR scene with that value attributes it the same way.
    await run_in_threadpool(_attribute, platform, source, message)
    future, _ = platform.intake.accept(source, [message], None, Envelope())
    await asyncio.wrap_future(future)
    return PlainTextResponse("success")


def _attribute(platform: Any, source: Any, message: dict[str, Any]) -> None:
    """A scan or follow through a parametric QR code carries what the code stands for: its
    campaign (as the event's campaign), store and guide (the event's store and guide)."""
    props = message.get("properties") or {}
    scene = props.get("scene")
    if not scene:
        return
    found = platform.qr_codes.attribution(source.workspace_id, source.id).get(scene)
    if found is None:
        return
    props["qr_id"] = found["qr_id"]
    for key in ("store_id", "guide_id"):
        if found[key] and not props.get(key):
            props[key] = found[key]
    if found["channel"]:
        props.setdefault("qr_channel", found["channel"])
    if found["campaign"]:
        props.setdefault("campaign", found["campaign"])
        message.setdefault("context", {}).setdefault("campaign", {}).setdefault("name", found["campaign"])


_YOUZAN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a Youzan push (invalid JSON or msg)"},
    403: {"description": "Bad Event-Sign / sign"},
    404: {"description": "No youzan source with this id"},
    413: {"description": "Body too large"},
}


@router.post("/connect/youzan/{source_id}", operation_id="youzan_push", responses=_YOUZAN_RESPONSES)
async def youzan_push(source_id: str, request: Request) -> dict[str, Any]:
    """Youzan Cloud message push (消息推送): trades and refunds; answers `{"code": 0, "msg": "success"}`."""
    platform = get_platform(request)
    source, config = await run_in_threadpool(_youzan_source, platform, source_id)
    body = await read_limited(request, youzan.MAX_BODY_BYTES)
    try:
        push = youzan.parse(body)
        if not youzan.check_signature(body, push, request.headers.get("event-sign"), config["client_id"],
                                      config["client_secret"]):  # fmt: skip
            raise Forbidden("有赞签名无效 / invalid Youzan signature", code="invalid_signature")
        if push.get("test"):  # the console's connectivity check
            return youzan.SUCCESS
        normalised = youzan.normalise(push)
    except youzan.YouzanError as err:
        raise InvalidInput(err.message, code=err.code) from None
    if normalised is None:
        return youzan.SUCCESS
    message = normalised.message
    if message["event"] != "Order Completed":
        # Close and refund messages name the order only: they belong to whoever bought it.
        await run_in_threadpool(_order_buyer, platform, source, message)
    message["messageId"] = import_message_id(source, normalised.key)
    future, _ = platform.intake.accept(source, [message], None, Envelope())
    await asyncio.wrap_future(future)
    return youzan.SUCCESS


def _order_buyer(platform: Platform, source: SourceInfo, message: dict[str, Any]) -> None:
    events = platform.warehouse.table("events")
    found = platform.warehouse.execute(
        events.filter(
            (events.workspace_id == source.workspace_id)
            & (events.source_id == source.id)
            & (events.order_id == message["properties"]["order_id"])
            & events.anonymous_id.notnull()
        )
        .select("anonymous_id")
        .limit(1)
    )
    if found.num_rows:
        message["anonymousId"] = found.column("anonymous_id")[0].as_py()
