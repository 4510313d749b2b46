"""WeCom external-contact callbacks, checked against wechatpy's enterprise crypto (an independent
implementation of WeCom's msg_signature and AES encryption)."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

from quanyu.platform import Platform
from quanyu.store.models import QrScene
from testkit import Tenant

TOKEN = "qy-wecom-token"
CORP_ID = "ww1a2b3c4d5e6f7a8b"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")
EXTERNAL = "wmXkSQBwAAAbCdEfGhIjKlMnOpQrStUvWx"
GUIDE = "guide_zhangsan"
TS, NONCE = "1764480000", "nonce456"


@pytest.fixture
def source_id(platform: Platform, tenant: Tenant) -> str:
    created = platform.sources.create(
        tenant.workspace_id,
        "企业微信 WeCom",
        "wecom",
        {"token": TOKEN, "corp_id": CORP_ID, "aes_key": AES_KEY},
    )
    return created.source.id


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _change(change: str, create_time: str = "1764480000", extra: str = "") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{GUIDE}]]></UserID><ExternalUserID><![CDATA[{EXTERNAL}]]></ExternalUserID>"
        f"{extra}</xml>"
    )


def _post(client: TestClient, source_id: str, xml: str, corp_id: str = CORP_ID) -> Any:
    out = WeChatCrypto(TOKEN, AES_KEY, corp_id).encrypt_message(xml, NONCE, TS)
    encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", out)
    signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", out)
    assert encrypt and signature
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt.group(1)}]]></Encrypt></xml>"
    )
    params = {"msg_signature": signature.group(1), "timestamp": TS, "nonce": NONCE}
    return client.post(f"/connect/wecom/{source_id}", params=params, content=body.encode())


def _events(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    platform.pipeline.drain()
    t = platform.warehouse.table("events")
    rows = platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id)).to_pylist()
    return rows  # type: ignore[no-any-return]


def _json(value: Any) -> dict[str, Any]:
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[no-any-return]


# -- URL verification ------------------------------------------------------------------------------


def test_url_verification_answers_the_decrypted_echostr(client: TestClient, source_id: str) -> None:
    key = base64.b64decode(AES_KEY + "=")
    echostr = PrpCrypto(key).encrypt("5927782489442352469", CORP_ID).decode()
    signature = _sign(TOKEN, TS, NONCE, echostr)
    # wechatpy agrees the request is valid and decrypts it to the same answer.
    assert WeChatCrypto(TOKEN, AES_KEY, CORP_ID).check_signature(signature, TS, NONCE, echostr) == (
        "5927782489442352469"
    )
    params = {"msg_signature": signature, "timestamp": TS, "nonce": NONCE, "echostr": echostr}
    resp = client.get(f"/connect/wecom/{source_id}", params=params)
    assert resp.status_code == 200 and resp.text == "5927782489442352469"

    bad = {**params, "msg_signature": _sign("other-token", TS, NONCE, echostr)}
    resp = client.get(f"/connect/wecom/{source_id}", params=bad)
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"

    other = PrpCrypto(key).encrypt("1", "ww0000000000000000").decode()
    params = {
        "msg_signature": _sign(TOKEN, TS, NONCE, other),
        "timestamp": TS,
        "nonce": NONCE,
        "echostr": other,
    }
    resp = client.get(f"/connect/wecom/{source_id}", params=params)
    assert resp.status_code == 403 and resp.json()["code"] == "wecom_wrong_corp_id"
    assert client.get("/connect/wecom/src_nope", params=params).status_code == 404


# -- Callbacks -------------------------------------------------------------------------------------


def test_add_external_contact_lands_with_guide_state_and_identifier(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    with platform.engine.begin() as conn:  # a 渠道活码 State that is also a recorded scene
        conn.execute(QrScene.__table__.insert().values(
            id="qr_wecom", workspace_id=tenant.workspace_id, source_id=source_id, scene="store_SH001_card",
            kind="permanent", ticket="T", url="https://work.weixin.qq.com/ca/x", campaign="春茶上新",
            store_id="SH001", guide_id="g_other", channel="桌贴", note="", created_at=datetime.now(UTC),
            created_by="test"))  # fmt: skip
    xml = _change(
        "add_external_contact",
        extra="<State><![CDATA[store_SH001_card]]></State><WelcomeCode><![CDATA[WELCOME-1]]></WelcomeCode>",
    )
    resp = _post(client, source_id, xml)
    assert resp.status_code == 200 and resp.text == "success"
    [row] = _events(platform, tenant)
    assert row["event"] == "WeCom Contact Added"
    assert row["guide_id"] == GUIDE  # the UserID, not the code's guide
    assert (row["store_id"], row["utm_campaign"], row["channel"]) == ("SH001", "春茶上新", "wecom")
    assert row["anonymous_id"] == EXTERNAL
    props = _json(row["properties"])
    assert props["external_userid"] == EXTERNAL and props["corp_id"] == CORP_ID
    assert props["state"] == props["scene"] == "store_SH001_card"
    assert props["welcome_code"] == "WELCOME-1" and props["qr_id"] == "qr_wecom"
    assert "half" not in props
    context = _json(row["context"])
    assert {"id": EXTERNAL, "type": "wecom_external_userid", "collection": "users"}.items() <= context[
        "externalIds"
    ][0].items()


def test_changes_map_to_the_event_vocabulary(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    pushes = [
        _change("add_half_external_contact", "1764480001"),
        _change("edit_external_contact", "1764480002"),
        _change("del_external_contact", "1764480003"),
        _change("del_follow_user", "1764480004"),
        _change("transfer_fail", "1764480005"),
    ]
    for xml in pushes:
        assert _post(client, source_id, xml).text == "success"
    rows = sorted(_events(platform, tenant), key=lambda r: r["timestamp"])
    assert [r["event"] for r in rows] == [
        "WeCom Contact Added",
        "WeCom Contact Edited",
        "WeCom Contact Removed",
        "WeCom Contact Removed",
        "WeCom Event",
    ]
    props = [_json(r["properties"]) for r in rows]
    assert props[0]["half"] is True
    assert props[2]["by"] == "guide" and props[3]["by"] == "customer"
    assert props[4]["event"] == "change_external_contact" and props[4]["change_type"] == "transfer_fail"
    assert all(r["guide_id"] == GUIDE for r in rows)


def test_a_wecom_retry_is_stored_once(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    for _ in range(3):
        assert _post(client, source_id, _change("del_follow_user")).text == "success"
    [row] = _events(platform, tenant)
    assert row["event"] == "WeCom Contact Removed" and _json(row["properties"])["by"] == "customer"


def test_wrong_corp_id_or_bad_signature_is_refused(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    resp = _post(client, source_id, _change("add_external_contact"), corp_id="ww0000000000000000")
    assert resp.status_code == 403 and resp.json()["code"] == "wecom_wrong_corp_id"
    out = WeChatCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(_change("add_external_contact"), NONCE, TS)
    encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", out)
    assert encrypt
    body = f"<xml><Encrypt><![CDATA[{encrypt.group(1)}]]></Encrypt></xml>".encode()
    params = {"msg_signature": _sign("wrong", TS, NONCE, encrypt.group(1)), "timestamp": TS, "nonce": NONCE}
    resp = client.post(f"/connect/wecom/{source_id}", params=params, content=body)
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"
    assert _events(platform, tenant) == []
