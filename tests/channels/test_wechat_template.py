"""WeChat official-account / Mini Program adapters against a local server playing the WeChat API.

The fake answers with the documented payloads (token, errcode/errmsg/msgid) and checks every request's
token and shape; `problems` collects what a real WeChat would have refused as malformed.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Message
from quanyu.channels.wechat import tokens
from quanyu.channels.wechat.template import (
    MiniProgramSubscribeAdapter,
    WeChatSubscribeAdapter,
    WeChatTemplateAdapter,
    client_msg_id,
)

APP_ID = "wx0123456789abcdef"
SECRET = "s3cr3t-app-secret"

# touser -> the documented refusal WeChat answers for it.
ERRORS = {
    "o_unfollowed": (43004, "require subscribe rid: 1"),
    "o_bad": (40003, "invalid openid rid: 2"),
    "o_quota": (45009, "reach max api daily quota limit rid: 3"),
    "o_busy": (-1, "system error rid: 4"),
    "o_argument": (47003, "argument invalid! data.thing1.value is empty rid: 5"),
    "o_refused": (43101, "user refuse to accept the msg rid: 6"),
    "o_unauthorized": (48001, "api unauthorized rid: 7"),
}


class FakeWeChat:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.valid: set[str] = set()
        self.current: str | None = None
        self.counter = itertools.count(1)
        self.token_requests: list[tuple[str, dict[str, Any]]] = []
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.problems: list[str] = []
        self.token_delay = 0.0
        self.token_answer: dict[str, Any] | None = None  # a forced token endpoint answer
        self.sticky = False
        self.base_url = ""  # stable_token in normal mode returns the current token even if refused

    # -- token endpoints ---------------------------------------------------------------------
    def issue(self, force: bool) -> dict[str, Any]:
        with self.lock:
            if self.token_answer is not None:
                return self.token_answer
            if force or (self.current not in self.valid and not self.sticky):
                self.current = f"TOKEN-{next(self.counter)}"
                self.valid = {self.current}
            return {"access_token": self.current, "expires_in": 7200}

    def expire_all(self) -> None:
        with self.lock:
            self.valid.clear()

    # -- send endpoints ----------------------------------------------------------------------
    def send(self, path: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if token not in self.valid:
                return 200, {
                    "errcode": 40001,
                    "errmsg": "invalid credential, access_token is invalid or not latest",
                }
            self.sends.append((path, body))
        self.check_shape(path, body)
        touser = body.get("touser")
        if touser == "o_slow":
            time.sleep(0.6)
        if touser == "o_500":
            return 500, {}
        if body.get("template_id") == "bad_template":
            return 200, {"errcode": 40037, "errmsg": "invalid template_id rid: 8"}
        if touser in ERRORS:
            code, msg = ERRORS[touser]
            return 200, {"errcode": code, "errmsg": msg}
        reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if path.endswith("/template/send"):
            reply["msgid"] = 200228332 + next(self.counter)
        return 200, reply

    def check_shape(self, path: str, body: dict[str, Any]) -> None:
        def problem(text: str) -> None:
            with self.lock:
                self.problems.append(f"{path}: {text}")

        for field in ("touser", "template_id", "data"):
            if not body.get(field) and field != "data":
                problem(f"missing {field}")
        data = body.get("data")
        if not isinstance(data, dict):
            problem("data is not an object")
        else:
            for name, item in data.items():
                if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                    problem(f"data.{name} is not {{'value': str}}")
        if path.endswith("/template/send"):
            cid = body.get("client_msg_id")
            if not isinstance(cid, str) or not cid or len(cid.encode()) > 64:
                problem(f"bad client_msg_id {cid!r}")
        elif "client_msg_id" in body:
            problem("client_msg_id on an API that does not document it")
        if path.endswith("/subscribe/send"):
            if body.get("miniprogram_state") not in ("developer", "trial", "formal"):
                problem("bad miniprogram_state")
            if body.get("lang") not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
                problem("bad lang")
        mp = body.get("miniprogram")
        if mp is not None and (not isinstance(mp, dict) or not mp.get("appid")):
            problem("miniprogram without appid")


def _serve(fake: FakeWeChat) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def answer(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != "/cgi-bin/token":
                return self.answer(404, {"errcode": 404, "errmsg": "not found"})
            fake.token_requests.append(("classic", query))
            time.sleep(fake.token_delay)
            if query.get("grant_type") != "client_credential" or query.get("appid") != APP_ID:
                return self.answer(200, {"errcode": 40013, "errmsg": "invalid appid"})
            if query.get("secret") != SECRET:
                return self.answer(200, {"errcode": 40125, "errmsg": "invalid appsecret"})
            self.answer(200, fake.issue(force=True))  # the classic endpoint always mints a new token

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if url.path == "/cgi-bin/stable_token":
                fake.token_requests.append(("stable", body))
                time.sleep(fake.token_delay)
                if body.get("grant_type") != "client_credential" or body.get("appid") != APP_ID:
                    return self.answer(200, {"errcode": 40013, "errmsg": "invalid appid"})
                if body.get("secret") != SECRET:
                    return self.answer(200, {"errcode": 40125, "errmsg": "invalid appsecret"})
                return self.answer(200, fake.issue(force=bool(body.get("force_refresh"))))
            token = parse_qs(url.query).get("access_token", [""])[0]
            if url.path in (
                "/cgi-bin/message/template/send",
                "/cgi-bin/message/subscribe/bizsend",
                "/cgi-bin/message/subscribe/send",
            ):
                status, payload = fake.send(url.path, token, body)
                return self.answer(status, payload)
            self.answer(404, {"errcode": 404, "errmsg": "not found"})

    class Server(ThreadingHTTPServer):
        request_queue_size = 64  # the default 5 drops connections when the concurrency test bursts

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    tokens.clear_shared()
    fake = FakeWeChat()
    server = _serve(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    tokens.clear_shared()
    assert fake.problems == []


def settings(fake: FakeWeChat, **extra: Any) -> dict[str, Any]:
    return {"app_id": APP_ID, "base_url": fake.base_url, "timeout": 0.4, **extra}


def template(fake: FakeWeChat, **extra: Any) -> WeChatTemplateAdapter:
    return WeChatTemplateAdapter(settings(fake, **extra), {"app_secret": SECRET})


def message(to: str, key: str | None = None, **content: Any) -> Message:
    body: dict[str, Any] = {"template_id": "TPL_order_paid", "data": {"thing1": "巧克力", "amount2": 39.8}}
    body.update(content)
    return Message(
        key=key or f"enr-{to}:node-1:1",
        workspace_id="ws",
        profile_id="p",
        channel="wechat_oa",
        to=to,
        content=body,
    )


def by_key(results: list[Any]) -> dict[str, Any]:
    return {r.key: r for r in results}


# -- template messages ------------------------------------------------------------------------


def test_template_send_wraps_data_and_reuses_one_token(fake: FakeWeChat) -> None:
    adapter = template(fake)
    messages = [
        message(
            f"o_user{i}",
            url="https://shop.example.cn/o/1",
            miniprogram={"appid": "wxmini", "pagepath": "p?x=1"},
        )
        for i in range(5)
    ]
    results = adapter.send(messages)
    assert [r.outcome for r in results] == ["sent"] * 5
    assert all(r.provider_id and r.provider_id.isdigit() for r in results)
    assert len(fake.token_requests) == 1  # one token for all five sends
    path, body = fake.sends[0]
    assert path == "/cgi-bin/message/template/send"
    assert body["data"] == {"thing1": {"value": "巧克力"}, "amount2": {"value": "39.8"}}
    assert body["url"] == "https://shop.example.cn/o/1"
    assert body["miniprogram"] == {"appid": "wxmini", "pagepath": "p?x=1"}
    assert body["client_msg_id"] == "enr-o_user0:node-1:1"
    assert adapter.idempotent is True and adapter.idempotency_window == 600
    adapter.close()


def test_client_msg_id_is_stable_across_resends_and_hashed_when_long(fake: FakeWeChat) -> None:
    adapter = template(fake)
    long_key = "enrollment-" + "x" * 80 + ":node:1"
    adapter.send([message("o_a", key=long_key)])
    adapter.send([message("o_a", key=long_key)])  # the outbox resending an `unknown`
    adapter.send([message("o_a", key="短键:1")])  # non-ASCII keys are hashed too
    first, second, third = (body["client_msg_id"] for _, body in fake.sends)
    assert first == second == client_msg_id(long_key)
    assert len(first) == 64 and first != long_key
    assert len(third) == 64
    assert client_msg_id("enr:node:1") == "enr:node:1"
    adapter.close()


def test_data_values_already_wrapped_keep_their_extra_fields(fake: FakeWeChat) -> None:
    adapter = template(fake)
    adapter.send([message("o_a", data={"first": {"value": 1, "color": "#173177"}, "remark": None})])
    assert fake.sends[0][1]["data"] == {"first": {"value": "1", "color": "#173177"}, "remark": {"value": ""}}
    adapter.close()


def test_outcome_mapping(fake: FakeWeChat) -> None:
    adapter = template(fake)
    results = by_key(
        adapter.send(
            [
                message("o_ok", key="ok"),
                message("o_unfollowed", key="unfollowed"),
                message("o_bad", key="bad"),
                message("o_argument", key="argument"),
                message("o_ok2", key="bad_template", template_id="bad_template"),
                message("o_busy", key="busy"),
                message("", key="no_openid"),
                message("o_ok3", key="no_template", template_id=""),
            ]
        )
    )
    assert results["ok"].outcome == "sent"
    for key, code in [
        ("unfollowed", "43004"),
        ("bad", "40003"),
        ("argument", "47003"),
        ("bad_template", "40037"),
    ]:
        assert (results[key].outcome, results[key].error_code) == ("failed", code), key
    assert "未关注" in results["unfollowed"].error and "rid: 1" in results["unfollowed"].error
    assert (results["busy"].outcome, results["busy"].error_code) == ("unknown", "-1")
    assert results["no_openid"].outcome == "failed" and results["no_openid"].error_code == "invalid_content"
    assert "template_id" in results["no_template"].error
    assert len(fake.sends) == 6  # the two invalid messages never left
    adapter.close()


def test_daily_quota_is_retry_and_stops_the_batch(fake: FakeWeChat) -> None:
    adapter = template(fake)
    results = adapter.send([message("o_a", key="a"), message("o_quota", key="q"), message("o_b", key="b")])
    assert [r.outcome for r in results] == ["sent", "retry", "retry"]
    assert results[1].error_code == results[2].error_code == "45009"
    assert 0 < (results[1].retry_after or 0) <= 86400  # until midnight in Beijing
    assert len(fake.sends) == 2  # "b" was not tried: it would get the same answer
    adapter.close()


def test_account_problem_is_retry_for_the_whole_batch(fake: FakeWeChat) -> None:
    adapter = template(fake)
    results = adapter.send([message("o_unauthorized", key="u"), message("o_b", key="b")])
    assert [(r.outcome, r.error_code) for r in results] == [("retry", "48001"), ("retry", "48001")]
    adapter.close()


def test_server_error_and_timeout_are_unknown_and_halt_the_rest(fake: FakeWeChat) -> None:
    adapter = template(fake)
    results = adapter.send([message("o_500", key="e"), message("o_b", key="b")])
    assert (results[0].outcome, results[0].error_code) == ("unknown", "http_500")
    assert (results[1].outcome, results[1].error_code) == ("retry", "halted")
    results = adapter.send([message("o_slow", key="slow")])
    assert (results[0].outcome, results[0].error_code) == ("unknown", "timeout")
    adapter.close()


def test_connection_refused_is_retry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    adapter = WeChatTemplateAdapter(
        {"app_id": APP_ID, "base_url": f"http://127.0.0.1:{port}", "timeout": 0.5}, {"app_secret": SECRET}
    )
    results = adapter.send([message("o_a", key="a"), message("o_b", key="b")])
    assert [(r.outcome, r.error_code) for r in results] == [("retry", "token_unreachable")] * 2
    assert SECRET not in (results[0].error or "")
    adapter.close()
    tokens.clear_shared()


def test_expired_token_is_refreshed_once_and_the_send_retried(fake: FakeWeChat) -> None:
    adapter = template(fake)
    assert adapter.send([message("o_a", key="a")])[0].outcome == "sent"
    fake.expire_all()  # WeChat now answers 40001 for the cached token
    result = adapter.send([message("o_b", key="b")])[0]
    assert result.outcome == "sent"
    assert len(fake.token_requests) == 2
    assert [body["touser"] for _, body in fake.sends] == ["o_a", "o_b"]  # the refused call is not recorded
    adapter.close()


def test_stable_token_handing_back_the_refused_token_forces_a_refresh(fake: FakeWeChat) -> None:
    adapter = template(fake)
    adapter.send([message("o_a", key="a")])
    fake.expire_all()
    fake.sticky = True  # the stable endpoint (normal mode) keeps handing out the refused token
    result = adapter.send([message("o_b", key="b")])[0]
    assert result.outcome == "sent"
    assert [body.get("force_refresh", False) for _, body in fake.token_requests] == [False, False, True]
    adapter.close()


def test_classic_token_endpoint(fake: FakeWeChat) -> None:
    adapter = template(fake, token_mode="classic")
    assert adapter.send([message("o_a"), message("o_b")])[0].outcome == "sent"
    assert [kind for kind, _ in fake.token_requests] == ["classic"]
    adapter.close()


def test_token_refusal_is_a_clear_retry_and_is_remembered(fake: FakeWeChat) -> None:
    adapter = WeChatTemplateAdapter(settings(fake), {"app_secret": "wrong"})
    first = adapter.send([message("o_a", key="a"), message("o_b", key="b")])
    assert [(r.outcome, r.error_code) for r in first] == [("retry", "40125")] * 2
    assert "AppSecret" in (first[0].error or "") and "wrong" not in (first[0].error or "")
    assert first[0].retry_after == tokens.CONFIG_RETRY_AFTER
    adapter.send([message("o_c", key="c")])
    assert len(fake.token_requests) == 1  # the refusal is held, not asked again per message
    assert fake.sends == []
    adapter.close()


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"errcode": 40164, "errmsg": "invalid ip 1.2.3.4, not in whitelist"}, "40164"),
        ({"errcode": 40013, "errmsg": "invalid appid"}, "40013"),
        ({"errcode": -1, "errmsg": "system error"}, "-1"),
    ],
)
def test_token_endpoint_errors(fake: FakeWeChat, answer: dict[str, Any], code: str) -> None:
    fake.token_answer = answer
    result = template(fake).send([message("o_a")])[0]
    assert (result.outcome, result.error_code) == ("retry", code)
    assert result.retry_after == (tokens.TRANSIENT_RETRY_AFTER if code == "-1" else tokens.CONFIG_RETRY_AFTER)


def test_token_cache_is_shared_by_adapters_of_the_same_app(fake: FakeWeChat) -> None:
    one, two = template(fake), WeChatSubscribeAdapter(settings(fake), {"app_secret": SECRET})
    one.send([message("o_a")])
    two.send([message("o_b")])
    assert len(fake.token_requests) == 1
    one.close()
    two.close()


def test_concurrent_senders_share_one_token_fetch(fake: FakeWeChat) -> None:
    fake.token_delay = 0.2  # long enough for every thread to arrive while the fetch is in flight
    adapters = [template(fake) for _ in range(8)]
    barrier = threading.Barrier(len(adapters))
    outcomes: list[str] = []

    def run(adapter: WeChatTemplateAdapter, i: int) -> None:
        barrier.wait()
        outcomes.extend(r.outcome for r in adapter.send([message(f"o_{i}", key=f"k{i}")]))

    threads = [threading.Thread(target=run, args=(a, i)) for i, a in enumerate(adapters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["sent"] * 8
    assert len(fake.token_requests) == 1
    for adapter in adapters:
        adapter.close()


# -- the token cache on its own ----------------------------------------------------------------


def test_token_cache_reuses_until_the_margin_then_refetches() -> None:
    now = [1000.0]
    cache = tokens.TokenCache(clock=lambda: now[0])
    issued = itertools.count(1)

    def fetch(force: bool) -> tuple[str, float]:
        return f"T{next(issued)}", 7200.0

    assert cache.get(fetch) == "T1"
    now[0] += 6899
    assert cache.get(fetch) == "T1"
    now[0] += 2  # within the 300 s safety margin of expiry
    assert cache.get(fetch) == "T2"
    assert cache.fetches == 2


def test_token_cache_invalidate_only_drops_the_current_token() -> None:
    cache = tokens.TokenCache()
    issued = itertools.count(1)
    cache.get(lambda force: (f"T{next(issued)}", 7200.0))
    cache.invalidate("T1")
    assert cache.get(lambda force: (f"T{next(issued)}", 7200.0)) == "T2"
    cache.invalidate("T1")  # a late report about the old token does not drop the new one
    assert cache.get(lambda force: ("never", 7200.0)) == "T2"


def test_token_cache_many_threads_one_fetch() -> None:
    cache = tokens.TokenCache()
    calls = []

    def fetch(force: bool) -> tuple[str, float]:
        calls.append(force)
        time.sleep(0.1)
        return "T", 7200.0

    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(fetch))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["T"] * 16 and calls == [False]


# -- subscription notifications and Mini Program subscribe messages ---------------------------


def test_oa_subscribe_bizsend(fake: FakeWeChat) -> None:
    adapter = WeChatSubscribeAdapter(settings(fake), {"app_secret": SECRET})
    assert adapter.idempotent is False and adapter.channel == "wechat_oa"
    results = by_key(
        adapter.send(
            [
                message("o_a", key="a", page="https://shop.example.cn/", miniprogram={"appid": "wxmini"}),
                message("o_refused", key="r"),
            ]
        )
    )
    assert results["a"].outcome == "sent" and results["a"].provider_id is None  # bizsend returns no msgid
    assert (results["r"].outcome, results["r"].error_code) == ("failed", "43101")
    path, body = fake.sends[0]
    assert path == "/cgi-bin/message/subscribe/bizsend"
    assert body["page"] == "https://shop.example.cn/" and body["miniprogram"] == {"appid": "wxmini"}
    assert "client_msg_id" not in body
    adapter.close()


def test_miniprogram_subscribe_send(fake: FakeWeChat) -> None:
    adapter = MiniProgramSubscribeAdapter(settings(fake, miniprogram_state="trial"), {"app_secret": SECRET})
    assert adapter.channel == "mini_program" and adapter.idempotent is False
    results = adapter.send(
        [message("o_a", page="pages/order/detail?id=1"), message("o_b", lang="en_US"), message("o_busy")]
    )
    assert [r.outcome for r in results] == ["sent", "sent", "unknown"]
    bodies = [body for _, body in fake.sends]
    assert fake.sends[0][0] == "/cgi-bin/message/subscribe/send"
    assert bodies[0]["page"] == "pages/order/detail?id=1"
    assert (bodies[0]["miniprogram_state"], bodies[0]["lang"]) == ("trial", "zh_CN")
    assert bodies[1]["lang"] == "en_US"
    adapter.close()


# -- configuration -----------------------------------------------------------------------------


def test_registry_builds_the_types_and_names_the_secret(fake: FakeWeChat) -> None:
    kinds = registry.adapter_types()
    assert {k: (kinds[k].channel, kinds[k].secrets) for k in ("wechat_template", "wechat_subscribe")} == {
        "wechat_template": ("wechat_oa", ("app_secret",)),
        "wechat_subscribe": ("wechat_oa", ("app_secret",)),
    }
    assert kinds["miniprogram_subscribe"].channel == "mini_program"
    adapter = registry.build("wechat_template", settings(fake), {"app_secret": SECRET})
    assert isinstance(adapter, ChannelAdapter) and adapter.type == "wechat_template"
    adapter.close()


@pytest.mark.parametrize(
    ("config", "secrets", "needle"),
    [
        ({}, {"app_secret": SECRET}, "app_id"),
        ({"app_id": APP_ID}, {}, "app_secret"),
        ({"app_id": APP_ID, "base_url": "ftp://x"}, {"app_secret": SECRET}, "base_url"),
        ({"app_id": APP_ID, "timeout": "soon"}, {"app_secret": SECRET}, "timeout"),
        ({"app_id": APP_ID, "token_mode": "magic"}, {"app_secret": SECRET}, "token_mode"),
    ],
)
def test_bad_settings_raise_config_errors(
    config: dict[str, Any], secrets: dict[str, str], needle: str
) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        WeChatTemplateAdapter(config, secrets)
