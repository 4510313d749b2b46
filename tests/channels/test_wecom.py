"""WeCom guide messages (add_msg_template) against a local server playing the WeCom API."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelConfigError, Message
from quanyu.channels.wechat import tokens
from quanyu.channels.wechat.wecom import WeComGuideAdapter

CORP_ID = "ww0123456789abcdef"
SECRET = "customer-contact-secret"
LINK = {"msgtype": "link", "link": {"title": "新品上市", "url": "https://shop.example.cn/new"}}


class FakeWeCom:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.valid: set[str] = set()
        self.counter = itertools.count(1)
        self.token_requests = 0
        self.calls: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.base_url = ""

    def gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.token_requests += 1
            if query.get("corpid") != CORP_ID:
                return {"errcode": 40013, "errmsg": "invalid corpid"}
            if query.get("corpsecret") != SECRET:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            if not self.valid:  # WeCom returns the same token while it is valid
                self.valid = {f"WT-{next(self.counter)}"}
            return {"errcode": 0, "errmsg": "ok", "access_token": next(iter(self.valid)), "expires_in": 7200}

    def expire_all(self) -> None:
        with self.lock:
            self.valid.clear()

    def add_msg_template(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if token not in self.valid:
                return {"errcode": 42001, "errmsg": "access_token expired"}
            self.calls.append(body)
        self.check_shape(body)
        users = body.get("external_userid") or []
        if body.get("sender") == "ghost":
            return {"errcode": 60111, "errmsg": "invalid string value `ghost`. userid not found"}
        if any(u.startswith("wm_invalid") for u in users):
            return {"errcode": 40096, "errmsg": "invalid external userid", "fail_list": []}
        if "wm_busy" in users:
            return {"errcode": -1, "errmsg": "system busy"}
        if "wm_limit" in users:
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        fail_list = [u for u in users if u.startswith("wm_fail")]
        return {
            "errcode": 0,
            "errmsg": "ok",
            "fail_list": fail_list,
            "msgid": f"msgGCAAAXtWyujaWJHDDG{next(self.counter)}",
        }

    def check_shape(self, body: dict[str, Any]) -> None:
        problems = []
        if body.get("chat_type") != "single":
            problems.append("chat_type must be single")
        users = body.get("external_userid")
        if not isinstance(users, list) or not users or len(users) > 10000 or len(set(users)) != len(users):
            problems.append("external_userid must be a list of 1..10000 distinct ids")
        if not isinstance(body.get("sender"), str) or not body["sender"]:
            problems.append("sender missing")
        text = body.get("text")
        attachments = body.get("attachments", [])
        if text is not None and (not isinstance(text, dict) or not text.get("content")):
            problems.append("text must be {content}")
        if not text and not attachments:
            problems.append("text and attachments both empty")
        if len(attachments) > 9 or any(not isinstance(a.get(a.get("msgtype")), dict) for a in attachments):
            problems.append("bad attachments")
        with self.lock:
            self.problems.extend(problems)


def _serve(fake: FakeWeCom) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/cgi-bin/gettoken":
                return self.answer(fake.gettoken({k: v[0] for k, v in parse_qs(url.query).items()}))
            self.answer({"errcode": 404, "errmsg": "not found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if url.path == "/cgi-bin/externalcontact/add_msg_template":
                token = parse_qs(url.query).get("access_token", [""])[0]
                return self.answer(fake.add_msg_template(token, body))
            self.answer({"errcode": 404, "errmsg": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    tokens.clear_shared()
    fake = FakeWeCom()
    server = _serve(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    tokens.clear_shared()
    assert fake.problems == []


def adapter_for(fake: FakeWeCom, secret: str = SECRET) -> WeComGuideAdapter:
    return WeComGuideAdapter(
        {"corp_id": CORP_ID, "base_url": fake.base_url, "timeout": 2}, {"corp_secret": secret}
    )


def message(to: str, key: str | None = None, **content: Any) -> Message:
    body: dict[str, Any] = {"sender": "guide_zhang", "text": "双十一会员专享价,点击查看"}
    body.update(content)
    return Message(
        key=key or f"k-{to}", workspace_id="ws", profile_id="p", channel="wecom", to=to, content=body
    )


def test_same_content_is_one_task_and_fail_list_maps_back(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    results = adapter.send(
        [
            message("wm_a", attachments=[LINK]),
            message("wm_fail_b", attachments=[LINK]),
            message("wm_c", attachments=[LINK]),
            message("wm_d", text="另一段话术", attachments=[LINK]),
            message("wm_e", sender="guide_li", attachments=[LINK]),
        ]
    )
    assert [r.outcome for r in results] == ["sent", "failed", "sent", "sent", "sent"]
    assert results[1].error_code == "fail_list" and "fail_list" in (results[1].error or "")
    assert results[0].provider_id == results[2].provider_id  # one task, one msgid
    assert len({results[0].provider_id, results[3].provider_id, results[4].provider_id}) == 3
    assert len(fake.calls) == 3 and fake.token_requests == 1
    first = fake.calls[0]
    assert first["external_userid"] == ["wm_a", "wm_fail_b", "wm_c"]
    assert first["sender"] == "guide_zhang"
    assert first["text"] == {"content": "双十一会员专享价,点击查看"}
    assert first["attachments"] == [LINK]
    assert adapter.idempotent is False
    adapter.close()


def test_missing_sender_and_bad_content_fail_without_a_call(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    results = adapter.send(
        [
            message("wm_a", sender=""),
            message("wm_b", text="", attachments=[]),
            message("wm_c", attachments=[{"msgtype": "voice", "voice": {}}]),
            message("wm_d", text="长" * 1400),  # 4200 bytes
            message("", key="no-recipient"),
        ]
    )
    assert [(r.outcome, r.error_code) for r in results] == [("failed", "invalid_content")] * 5
    assert "sender" in (results[0].error or "") and "导购" in (results[0].error or "")
    assert fake.calls == [] and fake.token_requests == 0
    adapter.close()


def test_duplicate_customer_is_sent_once(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    results = adapter.send([message("wm_a", key="k1"), message("wm_a", key="k2")])
    assert [r.outcome for r in results] == ["sent", "sent"] and [r.key for r in results] == ["k1", "k2"]
    assert fake.calls[0]["external_userid"] == ["wm_a"]
    adapter.close()


def test_invalid_external_userid_is_isolated_by_splitting(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    results = {r.key: r for r in adapter.send([message(u) for u in ("wm_a", "wm_b", "wm_invalid_x", "wm_c")])}
    assert (results["k-wm_invalid_x"].outcome, results["k-wm_invalid_x"].error_code) == ("failed", "40096")
    assert all(results[f"k-{u}"].outcome == "sent" for u in ("wm_a", "wm_b", "wm_c"))
    assert [c["external_userid"] for c in fake.calls] == [
        ["wm_a", "wm_b", "wm_invalid_x", "wm_c"],
        ["wm_a", "wm_b"],
        ["wm_invalid_x", "wm_c"],
        ["wm_invalid_x"],
        ["wm_c"],
    ]
    adapter.close()


def test_outcome_mapping(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    ghost, busy = adapter.send([message("wm_a", sender="ghost"), message("wm_busy", text="b")])
    assert (ghost.outcome, ghost.error_code) == ("failed", "60111")
    assert (busy.outcome, busy.error_code) == ("unknown", "-1")
    limited, later = adapter.send([message("wm_limit", text="x"), message("wm_z", text="y")])
    assert (limited.outcome, limited.error_code) == ("retry", "45009")
    assert (later.outcome, later.error_code) == ("retry", "45009")  # the batch stops at the throttle
    assert fake.calls[-1]["external_userid"] == ["wm_limit"]
    adapter.close()


def test_expired_token_is_refreshed_once(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    assert adapter.send([message("wm_a")])[0].outcome == "sent"
    assert adapter.send([message("wm_b")])[0].outcome == "sent"
    assert fake.token_requests == 1
    fake.expire_all()  # WeCom now answers 42001
    assert adapter.send([message("wm_c")])[0].outcome == "sent"
    assert fake.token_requests == 2
    adapter.close()


def test_wrong_secret_is_a_clear_retry(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake, secret="nope")
    results = adapter.send([message("wm_a"), message("wm_b", text="other")])
    assert [(r.outcome, r.error_code) for r in results] == [("retry", "40001")] * 2
    assert "corp_secret" in (results[0].error or "") and "nope" not in (results[0].error or "")
    assert fake.token_requests == 1
    adapter.close()


def test_more_than_10000_customers_are_split(fake: FakeWeCom) -> None:
    adapter = adapter_for(fake)
    results = adapter.send([message(f"wm_{i}") for i in range(10_001)])
    assert all(r.outcome == "sent" for r in results)
    assert [len(c["external_userid"]) for c in fake.calls] == [10_000, 1]
    adapter.close()


def test_registry_and_settings(fake: FakeWeCom) -> None:
    kind = registry.adapter_types()["wecom_guide"]
    assert (kind.channel, kind.secrets) == ("wecom", ("corp_secret",))
    adapter = registry.build(
        "wecom_guide", {"corp_id": CORP_ID, "base_url": fake.base_url}, {"corp_secret": SECRET}
    )
    assert adapter.channel == "wecom"
    adapter.close()
    with pytest.raises(ChannelConfigError, match="corp_secret"):
        WeComGuideAdapter({"corp_id": CORP_ID}, {})
    with pytest.raises(ChannelConfigError, match="corp_id"):
        WeComGuideAdapter({}, {"corp_secret": SECRET})
