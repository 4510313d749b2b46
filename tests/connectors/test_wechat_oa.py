"""WeChat official account message push, checked against wechatpy (an independent implementation
of WeChat's signatures and safe-mode encryption)."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner, check_signature

from quanyu.platform import Platform
from quanyu.store.models import OutboxMessage
from testkit import Tenant

TOKEN = "qy-token-2026"
APP_ID = "wx5823bf96d3bd56c7"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")
OPENID = "oF3PcsnsrMiJzEwalZZbAfWQpxCI"
TS, NONCE = "1764480000", "nonce123"


@pytest.fixture
def source_id(platform: Platform, tenant: Tenant) -> str:
    created = platform.sources.create(
        tenant.workspace_id, "公众号 OA", "wechat_oa", {"token": TOKEN, "app_id": APP_ID, "aes_key": AES_KEY}
    )
    return created.source.id


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _subscribe(create_time: str = "1764480000", scene: str = "qrscene_campaign_618_poster") -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_123456]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[{scene}]]></EventKey>"
        f"<Ticket><![CDATA[TICKET-1]]></Ticket></xml>"
    )


def _post_plain(client: TestClient, source_id: str, xml: str, token: str = TOKEN) -> Any:
    signature = _sign(token, TS, NONCE)
    check_signature(token, signature, TS, NONCE)  # wechatpy agrees it is a valid push
    params = {"signature": signature, "timestamp": TS, "nonce": NONCE, "openid": OPENID}
    return client.post(f"/connect/wechat/{source_id}", params=params, content=xml.encode())


def _encrypted(xml: str, app_id: str = APP_ID) -> tuple[str, str]:
    """(Encrypt, msg_signature) as WeChat sends them in safe mode, made by wechatpy."""
    out = WeChatCrypto(TOKEN, AES_KEY, app_id).encrypt_message(xml, NONCE, TS)
    encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", out)
    signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", out)
    assert encrypt and signature
    return encrypt.group(1), signature.group(1)


def _post_safe(client: TestClient, source_id: str, encrypt: str, msg_signature: str) -> Any:
    body = (
        f"<xml><ToUserName><![CDATA[gh_123456]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    )
    params = {
        "signature": _sign(TOKEN, TS, NONCE),
        "timestamp": TS,
        "nonce": NONCE,
        "openid": OPENID,
        "encrypt_type": "aes",
        "msg_signature": msg_signature,
    }
    return client.post(f"/connect/wechat/{source_id}", params=params, content=body.encode())


def _events(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    platform.pipeline.drain()
    t = platform.warehouse.table("events")
    rows = platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id)).to_pylist()
    return rows  # type: ignore[no-any-return]


def _props(row: dict[str, Any]) -> dict[str, Any]:
    value = row["properties"]
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[no-any-return]


# -- URL verification ------------------------------------------------------------------------------


def test_url_verification_answers_echostr(client: TestClient, source_id: str) -> None:
    params = {"signature": _sign(TOKEN, TS, NONCE), "timestamp": TS, "nonce": NONCE, "echostr": "8675309"}
    resp = client.get(f"/connect/wechat/{source_id}", params=params)
    assert resp.status_code == 200 and resp.text == "8675309"
    assert resp.headers["content-type"].startswith("text/plain")


def test_url_verification_with_a_bad_signature_is_403(client: TestClient, source_id: str) -> None:
    params = {"signature": _sign("other-token", TS, NONCE), "timestamp": TS, "nonce": NONCE, "echostr": "1"}
    resp = client.get(f"/connect/wechat/{source_id}", params=params)
    assert resp.status_code == 403
    assert resp.json()["code"] == "invalid_signature"


def test_unknown_source_is_404(client: TestClient) -> None:
    params = {"signature": _sign(TOKEN, TS, NONCE), "timestamp": TS, "nonce": NONCE, "echostr": "1"}
    assert client.get("/connect/wechat/src_nope", params=params).status_code == 404


# -- Message push ----------------------------------------------------------------------------------


def test_plain_subscribe_lands_as_official_account_followed(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    resp = _post_plain(client, source_id, _subscribe())
    assert resp.status_code == 200 and resp.text == "success"
    [row] = _events(platform, tenant)
    assert row["event"] == "Official Account Followed"
    assert row["anonymous_id"] == OPENID
    props = _props(row)
    assert props["scene"] == "campaign_618_poster" and props["ticket"] == "TICKET-1"
    assert props["app_id"] == APP_ID and props["scene_type"] == "qr_code"
    context = row["context"] if isinstance(row["context"], dict) else orjson.loads(row["context"])
    # The generator's shape (oa_who): the openid scoped to the app id, so identity treats them alike.
    assert {"id": OPENID, "type": "wechat_openid", "app_id": APP_ID}.items() <= context["externalIds"][
        0
    ].items()
    assert row["channel"] == "wechat_oa" and row["timestamp"].year == 2025


def test_safe_mode_subscribe_lands_as_official_account_followed(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    encrypt, msg_signature = _encrypted(_subscribe())
    resp = _post_safe(client, source_id, encrypt, msg_signature)
    assert resp.status_code == 200 and resp.text == "success"
    [row] = _events(platform, tenant)
    assert row["event"] == "Official Account Followed"
    assert _props(row)["scene"] == "campaign_618_poster"


def test_a_wechat_retry_is_stored_once(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    for _ in range(2):
        assert _post_plain(client, source_id, _subscribe()).text == "success"
    text = (
        f"<xml><ToUserName>gh_123456</ToUserName><FromUserName>{OPENID}</FromUserName>"
        "<CreateTime>1764480100</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>24601</MsgId></xml>"
    )
    for _ in range(2):
        assert _post_plain(client, source_id, text).text == "success"
    rows = _events(platform, tenant)
    assert sorted(r["event"] for r in rows) == ["Message Received", "Official Account Followed"]
    received = next(r for r in rows if r["event"] == "Message Received")
    assert _props(received)["content"] == "你好" and _props(received)["msg_id"] == "24601"


def test_tampered_ciphertext_or_wrong_app_id_is_refused(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    encrypt, msg_signature = _encrypted(_subscribe())
    tampered = encrypt[:10] + ("A" if encrypt[10] != "A" else "B") + encrypt[11:]
    assert _post_safe(client, source_id, tampered, msg_signature).status_code == 403
    # Signed correctly but the ciphertext is garbage: the decryption (or app id) check refuses it.
    assert _post_safe(client, source_id, tampered, _sign(TOKEN, TS, NONCE, tampered)).status_code in (
        400,
        403,
    )
    other_encrypt, other_signature = _encrypted(_subscribe(), app_id="wx0000000000000000")
    resp = _post_safe(client, source_id, other_encrypt, other_signature)
    assert resp.status_code == 403 and resp.json()["code"] == "wechat_wrong_app_id"
    assert _post_plain(client, source_id, _subscribe(), token="wrong").status_code == 403
    assert _events(platform, tenant) == []


def test_oversized_or_doctype_bodies_are_refused(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType><Content>&lol2;</Content></xml>"
    )
    resp = _post_plain(client, source_id, bomb)
    assert resp.status_code == 400 and resp.json()["code"] == "wechat_dtd_refused"
    huge = _subscribe().replace("TICKET-1", "x" * (70 * 1024))
    assert _post_plain(client, source_id, huge).status_code == 413
    assert _events(platform, tenant) == []


def test_menu_location_and_unknown_events(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    def event(name: str, extra: str, at: str) -> str:
        return (
            f"<xml><ToUserName>gh_123456</ToUserName><FromUserName>{OPENID}</FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType>event</MsgType><Event>{name}</Event>{extra}</xml>"
        )

    pushes = [
        event("CLICK", "<EventKey>MEMBER_CENTER</EventKey>", "1764480001"),
        event("VIEW", "<EventKey>https://shop.example.cn/</EventKey>", "1764480002"),
        event(
            "LOCATION",
            "<Latitude>30.2741</Latitude><Longitude>120.1551</Longitude><Precision>65.0</Precision>",
            "1764480003",
        ),
        event("unsubscribe", "", "1764480004"),
        event("SCAN", "<EventKey>store_0571</EventKey><Ticket>T2</Ticket>", "1764480005"),
        event("user_get_card", "", "1764480006"),
    ]
    for xml in pushes:
        assert _post_plain(client, source_id, xml).text == "success"
    by_event = {r["event"]: _props(r) for r in _events(platform, tenant)}
    assert by_event["Menu Clicked"]["key"] == "MEMBER_CENTER"
    assert by_event["Menu Link Opened"]["url"] == "https://shop.example.cn/"
    assert by_event["Location Reported"]["latitude"] == pytest.approx(30.2741)
    assert "Official Account Unfollowed" in by_event
    assert by_event["QR Scanned"] == {"app_id": APP_ID, "scene": "store_0571", "ticket": "T2"}
    assert by_event["WeChat Event"]["event"] == "user_get_card"


def test_template_job_finished_marks_the_outbox_row_delivered(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    now = datetime.now(UTC)
    o = OutboxMessage.__table__
    with platform.engine.begin() as conn:
        conn.execute(
            o.insert().values(
                key="wx-tmpl-1", workspace_id=tenant.workspace_id, profile_id="p1", channel="wechat",
                config_id="cfg", address=OPENID, purpose="marketing", content={}, meta={}, status="sent",
                attempts=1, next_at=now, created_at=now, sent_at=now, provider_id="200163836",
            )
        )  # fmt: skip
    xml = (
        f"<xml><ToUserName>gh_123456</ToUserName><FromUserName>{OPENID}</FromUserName>"
        "<CreateTime>1764480200</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event>"
        "<MsgID>200163836</MsgID><Status>success</Status></xml>"
    )
    assert _post_plain(client, source_id, xml).text == "success"
    with platform.engine.connect() as conn:
        delivered = conn.execute(select(o.c.delivered_at).where(o.c.key == "wx-tmpl-1")).scalar_one()
    assert delivered is not None
    rows = [r for r in _events(platform, tenant) if r["event"] == "Template Message Finished"]
    assert len(rows) == 1 and _props(rows[0])["status"] == "success"


def test_a_follow_through_a_parametric_qr_code_carries_its_store_guide_and_campaign(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    from datetime import UTC, datetime

    from quanyu.store.models import QrScene

    with (
        platform.engine.begin() as conn
    ):  # a code made earlier (creating one at WeChat is tested in test_qr_codes)
        conn.execute(QrScene.__table__.insert().values(
            id="qr_poster", workspace_id=tenant.workspace_id, source_id=source_id, scene="campaign_618_poster",
            kind="permanent", ticket="T", url="http://weixin.qq.com/q/x", campaign="618 海报", store_id="SH001",
            guide_id="g_07", channel="poster", note="", created_at=datetime.now(UTC), created_by="test"))  # fmt: skip
    assert _post_plain(client, source_id, _subscribe()).status_code == 200
    [row] = _events(platform, tenant)
    assert (row["store_id"], row["guide_id"], row["utm_campaign"]) == ("SH001", "g_07", "618 海报")
    assert _props(row)["qr_id"] == "qr_poster" and _props(row)["qr_channel"] == "poster"
