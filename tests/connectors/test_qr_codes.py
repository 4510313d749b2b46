"""Parametric QR codes against a local server playing WeChat's API: the real request format
(stable token, then qrcode/create with the scene), the PNG rendered here, scenes that are
refused or taken, and scans attributed to the code that brought them."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import png
import pytest

from profiles.profilekit import Brand, day
from quanyu.channels.wechat import tokens
from quanyu.connectors.qr_codes import scans
from quanyu.errors import Conflict, InvalidInput
from quanyu.platform import Platform
from testkit import Tenant


class FakeWeChat:
    """Issues tokens and QR tickets; records each qrcode/create body; can expire a token once."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.expire_next = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                if self.path.startswith("/cgi-bin/stable_token"):
                    assert body["grant_type"] == "client_credential" and body["appid"] == "wxOA"
                    fake.tokens_issued += 1
                    return self._json({"access_token": f"T{fake.tokens_issued}", "expires_in": 7200})
                if self.path.startswith("/cgi-bin/qrcode/create"):
                    if fake.expire_next:
                        fake.expire_next = False
                        return self._json({"errcode": 42001, "errmsg": "access_token expired"})
                    assert f"access_token=T{fake.tokens_issued}" in self.path
                    fake.bodies.append(body)
                    scene = body["action_info"]["scene"]["scene_str"]
                    if scene == "refused":
                        return self._json({"errcode": 40053, "errmsg": "invalid action info"})
                    return self._json({"ticket": f"gQ-{scene}", "expire_seconds": body.get("expire_seconds"),
                                       "url": f"http://weixin.qq.com/q/{scene}"})  # fmt: skip
                self.send_response(404)
                self.end_headers()

            def _json(self, value: dict[str, Any]) -> None:
                data = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def wechat() -> Iterator[FakeWeChat]:
    tokens.clear_shared()
    fake = FakeWeChat()
    yield fake
    fake.server.shutdown()
    tokens.clear_shared()


@pytest.fixture
def oa(platform: Platform, tenant: Tenant, wechat: FakeWeChat) -> str:
    made = platform.sources.create(tenant.workspace_id, "公众号 OA", "wechat_oa",
                                   {"token": "tk", "app_id": "wxOA", "app_secret": "s3cret",
                                    "api_base_url": wechat.url})  # fmt: skip
    return made.source.id


def test_codes_are_created_in_wechats_format_and_rendered_here(
    platform: Platform, tenant: Tenant, wechat: FakeWeChat, oa: str
) -> None:
    codes = platform.qr_codes
    temp = codes.create(tenant.workspace_id, oa, "store_sh001", "test", expire_seconds=7 * 86400,
                        campaign="春茶上新", store_id="SH001", guide_id="g_07", channel="桌贴 table card")  # fmt: skip
    perm = codes.create(tenant.workspace_id, oa, "campaign_tea2026", "test", permanent=True)
    assert wechat.bodies == [
        {
            "expire_seconds": 604800,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "store_sh001"}},
        },
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "campaign_tea2026"}}},
    ]
    assert (
        temp["kind"] == "temporary"
        and temp["expires_at"]
        and temp["url"] == "http://weixin.qq.com/q/store_sh001"
    )
    assert perm["kind"] == "permanent" and perm["expires_at"] is None
    assert wechat.tokens_issued == 1  # one token for both calls
    width, height, _rows, _info = png.Reader(
        file=io.BytesIO(codes.png(tenant.workspace_id, temp["id"]))
    ).read()
    assert width == height and width > 100
    assert codes.attribution(tenant.workspace_id)["store_sh001"]["store_id"] == "SH001"


def test_bad_taken_and_refused_scenes(
    platform: Platform, tenant: Tenant, wechat: FakeWeChat, oa: str
) -> None:
    codes = platform.qr_codes
    with pytest.raises(InvalidInput):
        codes.create(tenant.workspace_id, oa, "has space", "test")
    with pytest.raises(InvalidInput):
        codes.create(tenant.workspace_id, oa, "x" * 65, "test")
    codes.create(tenant.workspace_id, oa, "s1", "test")
    with pytest.raises(Conflict):
        codes.create(tenant.workspace_id, oa, "s1", "test")
    with pytest.raises(InvalidInput) as refused:
        codes.create(tenant.workspace_id, oa, "refused", "test")
    assert refused.value.code == "wechat_refused"
    wechat.expire_next = True  # an expired token is fetched once more and the call repeated
    assert codes.create(tenant.workspace_id, oa, "s2", "test")["scene"] == "s2"
    assert wechat.tokens_issued == 2
    website = platform.sources.create(tenant.workspace_id, "官网", "website").source.id
    with pytest.raises(InvalidInput):
        codes.create(tenant.workspace_id, website, "s3", "test")


def test_scans_and_follows_are_attributed_to_their_code(
    platform: Platform, tenant: Tenant, wechat: FakeWeChat, oa: str
) -> None:
    platform.qr_codes.create(tenant.workspace_id, oa, "store_sh001", "test", store_id="SH001")
    brand = Brand(platform, tenant.workspace_id)

    def scan(user: str, event: str, scene: str, at: float) -> dict[str, Any]:
        return {
            "type": "track",
            "userId": user,
            "event": event,
            "timestamp": day(at),
            "properties": {"scene": scene},
        }

    brand.send("wechat_oa", scan("a", "Official Account Followed", "store_sh001", 0.1),
               scan("a", "QR Scanned", "store_sh001", 0.2), scan("b", "QR Scanned", "store_sh001", 0.3),
               scan("c", "QR Scanned", "other", 0.3))  # fmt: skip
    counts = scans(platform.warehouse, tenant.workspace_id, ["store_sh001", "unused"])
    assert counts == {"store_sh001": {"scans": 2, "follows": 1, "people": 2},
                      "unused": {"scans": 0, "follows": 0, "people": 0}}  # fmt: skip
