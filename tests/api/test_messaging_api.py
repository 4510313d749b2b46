"""The messaging APIs: the send policy (errors in the one shape), channel types and channel
configurations (no webhook into private networks unless the deployment allows them), consent
with its history, and what people and providers send back: unsubscribe links (a page, then a
POST that withdraws consent; tampered tokens refused), the open pixel, signed click redirects,
SMS replies ("ＴＤ" withdraws SMS consent for the phone) and delivery reports, behind a signed
callback URL.

Journeys run on demand on a `ManualClock` at 12:00 in Shanghai (see test_journeys_api).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from test_journeys_api import (
    PHONE,
    call,
    enroll,
    error,
    journey,
    lines,
    outbox,
    people,
    run,
    send,
    sms_channel,
    stats,
    steps_at,
)

from quanyu.api import create_app
from quanyu.channels.sms import CHINA
from quanyu.channels.tracking import sign
from quanyu.journeys.clock import ManualClock
from quanyu.journeys.policy import DEFAULT_CAPS
from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import Tenant, make_settings, new_tenant

EMAIL = "lei@example.com"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", pipeline_enabled=False, journeys_enabled=False)


@pytest.fixture
def clock(platform: Platform) -> Iterator[ManualClock]:
    manual = ManualClock(datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0))
    platform.journeys.clock = manual
    yield manual


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


# -- policy ----------------------------------------------------------------------------------------


def test_policy_defaults_changes_and_validation(client: TestClient, tenant: Tenant) -> None:
    policy = call(client, tenant, "GET", "/api/v1/messaging/policy")
    assert policy == {"timezone": "Asia/Shanghai", "quiet_hours": "21:00-09:00", "caps": DEFAULT_CAPS,
                      "opt_in_channels": ["sms"], "holdout_percent": 0.0, "kill_switch": False,
                      "kill_switch_at": None, "kill_switch_by": None}  # fmt: skip
    for body, code in (
        ({"quiet_hours": "25:00-09:00"}, "invalid_policy"),
        ({"quiet_hours": "soon"}, "invalid_policy"),
        ({"caps": {"sms": -1}}, "invalid_policy"),
        ({"holdout_percent": 80}, "invalid_policy"),
        ({"caps": {"sms": "many"}}, "invalid_request"),
        ({"holdout_percent": "half"}, "invalid_request"),
        ({"opt_in_channels": "sms"}, "invalid_request"),
    ):
        refused = error(client, tenant, "PATCH", "/api/v1/messaging/policy", 400, json=body)
        assert refused["code"] == code, (body, refused)
    assert call(client, tenant, "GET", "/api/v1/messaging/policy") == policy

    changed = call(client, tenant, "PATCH", "/api/v1/messaging/policy",
                   json={"quiet_hours": "22:00-08:00", "caps": {"sms": 2}, "holdout_percent": 5})  # fmt: skip
    assert (changed["quiet_hours"], changed["caps"], changed["holdout_percent"]) == (
        "22:00-08:00",
        {"sms": 2},
        5,
    )
    assert call(client, tenant, "GET", "/api/v1/messaging/policy") == changed
    assert (
        call(client, tenant, "PATCH", "/api/v1/messaging/policy", json={"quiet_hours": ""})["quiet_hours"]
        == ""
    )


# -- channels --------------------------------------------------------------------------------------


def test_channel_types_and_configurations(client: TestClient, tenant: Tenant, tmp_path: Path) -> None:
    types = {k["type"]: k for k in call(client, tenant, "GET", "/api/v1/channels/types")["items"]}
    assert {"sink", "sink_sms", "sink_email", "webhook"} <= set(types)
    assert (types["sink_sms"]["channel"], types["webhook"]["secrets"]) == ("sms", ["secret"])
    assert all(k["label"] for k in types.values())

    assert error(client, tenant, "POST", "/api/v1/channels", 400,
                 json={"type": "fax", "name": "传真"})["code"] == "unknown_channel_type"  # fmt: skip
    assert error(client, tenant, "POST", "/api/v1/channels", 400,
                 json={"type": "sink", "name": "无路径 no path"})["code"] == "invalid_channel"  # fmt: skip
    made = call(client, tenant, "POST", "/api/v1/channels", 201,
                json={"type": "sink_email", "name": "邮件替身", "settings": {"path": str(tmp_path / "m.jsonl")},
                      "default": True})  # fmt: skip
    assert (made["channel"], made["default"], made["secrets"]) == ("email", True, [])
    assert [c["id"] for c in call(client, tenant, "GET", "/api/v1/channels")["items"]] == [made["id"]]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://169.254.169.254/x"]
)
def test_webhook_channels_to_private_addresses_are_refused(
    client: TestClient, tenant: Tenant, url: str
) -> None:
    refused = error(client, tenant, "POST", "/api/v1/channels", 400,
                    json={"type": "webhook", "name": "内网 internal", "settings": {"url": url}})  # fmt: skip
    assert refused["code"] == "invalid_channel"


def test_webhook_allow_networks_opens_a_private_network(tmp_path: Path) -> None:
    allowed = make_settings(tmp_path / "allowed", pipeline_enabled=False, journeys_enabled=False,
                            webhook_allow_networks=["127.0.0.0/8"])  # fmt: skip
    platform = Platform(allowed)
    tenant = new_tenant(platform)
    with TestClient(create_app(allowed, platform)) as client:
        made = call(client, tenant, "POST", "/api/v1/channels", 201,
                    json={"type": "webhook", "name": "本机 local", "settings": {"url": "http://127.0.0.1:9/hook"}})  # fmt: skip
        assert made["channel"] == "webhook" and made["settings"]["allow"] == ["127.0.0.0/8"]
        assert error(client, tenant, "POST", "/api/v1/channels", 400,
                     json={"type": "webhook", "name": "内网", "settings": {"url": "http://10.0.0.5/hook"}},
                     )["code"] == "invalid_channel"  # fmt: skip


def test_a_caller_cannot_allow_private_networks_itself(client: TestClient, tenant: Tenant) -> None:
    settings = {"url": "http://169.254.169.254/latest/meta-data", "allow": ["0.0.0.0/0"]}
    refused = error(client, tenant, "POST", "/api/v1/channels", 400,
                    json={"type": "webhook", "name": "越权 sneaky", "settings": settings})  # fmt: skip
    assert refused["code"] == "invalid_channel"


# -- consent ---------------------------------------------------------------------------------------


def test_consent_current_and_history_newest_first(client: TestClient, tenant: Tenant) -> None:
    t0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
    for at, granted in ((t0, True), (t0 + timedelta(days=2), False), (t0 + timedelta(days=1), True)):
        call(client, tenant, "POST", "/api/v1/consent", 201, json={
            "profile_id": "prof_c", "channel": "sms", "granted": granted, "at": at.isoformat(),
            "source": "store", "evidence": {"form": "门店登记"}})  # fmt: skip
    shown = call(client, tenant, "GET", "/api/v1/consent", params={"subject": "prof_c"})
    assert [(c["channel"], c["purpose"], c["granted"]) for c in shown["current"]] == [
        ("sms", "marketing", False)
    ]
    history = shown["history"]
    assert [(h["at"][:10], h["granted"]) for h in history] == [("2026-05-03", False), ("2026-05-02", True),
                                                               ("2026-05-01", True)]  # fmt: skip
    assert history[0]["source"] == "store" and history[0]["evidence"]["form"] == "门店登记"
    assert history[0]["evidence"]["actor"].startswith("token:")

    for body in ({"channel": "sms", "granted": True}, {"profile_id": "p", "address": PHONE, "granted": True}):
        assert error(client, tenant, "POST", "/api/v1/consent", 400, json=body)["code"] == "invalid_request"
    assert call(client, tenant, "GET", "/api/v1/consent", params={"subject": "nobody"}) == {
        "subject": "nobody", "current": [], "history": []
    }  # fmt: skip


# -- unsubscribe links, the open pixel, click redirects -----------------------------------------------


def test_unsubscribe_link_open_pixel_and_click(
    client: TestClient, tenant: Tenant, platform: Platform, clock: ManualClock, tmp_path: Path
) -> None:
    pid = people(platform, tenant, lei={"email": EMAIL, "first_name": "雷"})["lei"]
    mails = tmp_path / "mail.jsonl"
    call(client, tenant, "POST", "/api/v1/channels", 201,
         json={"type": "sink_email", "name": "邮件替身", "settings": {"path": str(mails)}})  # fmt: skip
    content = {"subject": "新品 New in", "text": "退订 / unsubscribe: {{ links.unsubscribe_url }}",
               "html": '<p><a href="https://shop.example.com/new">看看 See</a></p>'}  # fmt: skip
    jid = journey(
        client, tenant, {"mail": send("email", content)}, settings={"reentry": {"mode": "after_exit"}}
    )["id"]
    enroll(client, tenant, jid, pid)
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 1}
    [row] = outbox(platform, jid)
    url = row.meta["unsubscribe_url"]
    assert url.startswith(platform.journeys.public_url + "/r/u/")
    [line] = lines(mails)
    assert line["to"] == EMAIL and url in line["content"]["text"]

    # The open pixel: always a GIF; a valid token marks the message opened.
    for token in (tampered(row.meta["open_token"]), row.meta["open_token"]):
        pixel = client.get(f"/r/o/{token}")
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    [row] = outbox(platform, jid)
    assert row.opened_at is not None

    # Click redirects: only for links the message carried, signed.
    [link] = re.findall(r'href="([^"]+)"', line["content"]["html"])
    assert "/r/c/" in link
    clicked = client.get(path_of(link), follow_redirects=False)
    assert clicked.status_code == 302 and clicked.headers["location"] == "https://shop.example.com/new"
    assert outbox(platform, jid)[0].clicked_at is not None
    secret = platform.journeys.link_secret
    fields = {"k": row.key, "w": tenant.workspace_id, "p": pid, "c": "email"}
    for token in (tampered(link.rsplit("/", 1)[1]), sign(b"another secret", {**fields, "u": "https://evil.example"}),
                  sign(secret, {**fields, "u": "javascript:alert(1)"}), sign(secret, fields)):  # fmt: skip
        refused = client.get(f"/r/c/{token}", follow_redirects=False)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_link_token", token
    email = stats(client, tenant, jid)["channels"]["email"]
    assert (email["sent"], email["opened"], email["clicked"]) == (1, 1, 1)

    # Unsubscribe: the link shows a page (a mail scanner's GET changes nothing), the POST withdraws.
    page = client.get(path_of(url))
    assert page.status_code == 200 and "退订" in page.text and "<form" in page.text
    assert call(client, tenant, "GET", "/api/v1/consent", params={"subject": pid})["current"] == []
    for method in ("GET", "POST"):
        bad = client.request(method, path_of(tampered(url)))
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_link_token"
    done = client.post(path_of(url))
    assert done.status_code == 200 and "已退订" in done.text
    for subject in (pid, EMAIL):
        current = call(client, tenant, "GET", "/api/v1/consent", params={"subject": subject})["current"]
        assert [(c["channel"], c["granted"], c["source"]) for c in current] == [
            ("email", False, "unsubscribe_link")
        ], subject
    assert client.post(path_of(url)).status_code == 200  # a second click is harmless

    enroll(client, tenant, jid, pid)
    run(client, tenant)
    assert steps_at(client, tenant, jid, "mail")["skipped:consent_withdrawn"] == 1
    assert len(lines(mails)) == 1


# -- SMS provider callbacks ----------------------------------------------------------------------------


def test_sms_replies_and_delivery_reports(
    client: TestClient, tenant: Tenant, platform: Platform, clock: ManualClock, tmp_path: Path
) -> None:
    hooks = call(client, tenant, "GET", "/api/v1/channels/hooks")
    assert set(hooks) == {"aliyun", "tencent"}
    replies, reports = path_of(hooks["aliyun"]["replies"]), path_of(hooks["aliyun"]["reports"])
    assert replies.startswith(f"/hooks/sms/aliyun/{tenant.workspace_id}/replies?sig=")

    pid = people(platform, tenant, lei={"phone": PHONE})["lei"]
    sms = tmp_path / "sms.jsonl"
    sms_channel(client, tenant, sms)
    call(
        client,
        tenant,
        "POST",
        "/api/v1/consent",
        201,
        json={"profile_id": pid, "channel": "sms", "granted": True},
    )
    jid = journey(client, tenant, {"offer": send("sms", {"text": "新品上市。回T退订"})},
                  settings={"reentry": {"mode": "after_exit"}})["id"]  # fmt: skip
    enroll(client, tenant, jid, pid)
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 1}
    [row] = outbox(platform, jid)
    china_now = datetime.now(CHINA).replace(microsecond=0)

    # A delivery report naming our key (out_id) marks the message delivered.
    report = [{"phone_number": PHONE, "send_time": f"{china_now:%Y-%m-%d %H:%M:%S}",
               "report_time": f"{china_now + timedelta(seconds=5):%Y-%m-%d %H:%M:%S}", "success": True,
               "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "biz-1",
               "out_id": row.key}]  # fmt: skip
    answer = client.post(reports, json=report)
    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功", "recorded": 1}
    assert outbox(platform, jid)[0].delivered_at is not None
    assert stats(client, tenant, jid)["channels"]["sms"]["delivered"] == 1

    # A signature that is wrong or missing: refused before the body is read.
    base = replies.split("?")[0]
    for wrong in (f"{base}?sig=0000", base, reports.replace(tenant.workspace_id, "ws_other")):
        refused = client.post(wrong, json=report)
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_signature", wrong

    # "ＴＤ" (full width) withdraws SMS marketing consent for that phone; a repeat changes nothing.
    reply = [{"phone_number": PHONE, "content": "ＴＤ", "send_time": f"{china_now + timedelta(minutes=1):%Y-%m-%d %H:%M:%S}",
              "dest_code": "1069", "sequence_id": 1234}]  # fmt: skip
    answer = client.post(replies, json=reply)
    assert answer.status_code == 200 and answer.json()["recorded"] == 1
    assert client.post(replies, json=reply).json()["recorded"] == 0
    current = call(client, tenant, "GET", "/api/v1/consent", params={"subject": PHONE})["current"]
    assert [(c["channel"], c["granted"], c["source"]) for c in current] == [("sms", False, "sms_reply")]
    chat = [{**reply[0], "content": "好的谢谢", "sequence_id": 1235}]
    assert client.post(replies, json=chat).json()["recorded"] == 0
    bad = client.post(replies, content=b"{not json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_callback"

    enroll(client, tenant, jid, pid)
    run(client, tenant)
    assert steps_at(client, tenant, jid, "offer")["skipped:consent_withdrawn"] == 1
    assert len(lines(sms)) == 1
