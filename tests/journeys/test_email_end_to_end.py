"""A marketing e-mail journey end to end over real SMTP (a local aiosmtpd server): the mail
arrives with tracked links and List-Unsubscribe; the open pixel and the click count; the
unsubscribe link withdraws consent, and the next marketing mail to that person is not sent."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from journeys.journeykit import NOON_SHANGHAI
from quanyu.api import create_app
from quanyu.journeys.clock import ManualClock
from quanyu.journeys.engine import Candidate
from quanyu.journeys.people import Person
from quanyu.journeys.stats import journey_stats
from quanyu.platform import Platform
from testkit import make_settings, new_tenant


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_marketing_mail_over_smtp_with_receipts_and_unsubscribe(
    tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    settings = make_settings(tmp_path, pipeline_enabled=False, journeys_enabled=False,
                             smtp_url=f"smtp://127.0.0.1:{port}?security=none&from=shop@example.com&from_name=山茶记",
                             public_url="https://quanyu.example.com")  # fmt: skip
    platform = Platform(settings)
    try:
        tenant = new_tenant(platform)
        platform.journeys.clock = ManualClock(NOON_SHANGHAI)
        definition = {"name": "新茶上市 New tea", "trigger": {"type": "event", "event": "Signed Up"}, "start": "mail",
                      "settings": {"reentry": {"mode": "always"}},
                      "nodes": {"mail": {"type": "send", "channel": "email", "content": {
                          "subject": "{{ profile.name | default: '茶友' }}，新茶上市",
                          "html": "<p>您好！<a href=\"https://shop.example.com/new\">查看新茶</a></p>",
                          "text": "新茶上市 https://shop.example.com/new"}}}}  # fmt: skip
        made = platform.journeys.saved.create(tenant.workspace_id, definition, "test", publish=True)
        live = next(j for j in platform.journeys.saved.live(tenant.workspace_id) if j.id == made["id"])
        person = Person("prof_mail", {"email": "lin@example.com"}, None, {"name": "林"})

        def enroll(key: str) -> None:
            runner = platform.journeys.runner(platform.warehouse)
            runner.enroll(live, [Candidate(tenant.workspace_id, "prof_mail", key, NOON_SHANGHAI, {}, person)])
            platform.journeys.run_once(platform.warehouse)

        enroll("first")
        (mail,) = box.messages
        assert mail["To"] == "lin@example.com"
        assert str(make_header(decode_header(mail["Subject"]))) == "林，新茶上市"
        unsubscribe = re.search(r"<(https://quanyu\.example\.com/r/u/[^>]+)>", mail["List-Unsubscribe"])
        assert unsubscribe is not None and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = (
            next(p for p in mail.walk() if p.get_content_type() == "text/html")
            .get_payload(decode=True)
            .decode()
        )
        click = re.search(r'href="https://quanyu\.example\.com(/r/c/[^"]+)"', html)
        pixel = re.search(r'src="https://quanyu\.example\.com(/r/o/[^"]+)"', html)
        assert click and pixel and "shop.example.com/new" not in html.split("/r/c/")[0][-30:]

        with TestClient(create_app(settings, platform)) as client:
            assert client.get(pixel.group(1)).headers["content-type"] == "image/gif"
            went = client.get(click.group(1), follow_redirects=False)
            assert went.status_code == 302 and went.headers["location"] == "https://shop.example.com/new"
            path = unsubscribe.group(1).removeprefix("https://quanyu.example.com")
            assert "退订" in client.get(path).text  # a page with one button: a GET changes nothing
            assert client.post(path).status_code == 200
            consent = client.get(
                "/api/v1/consent", params={"subject": "lin@example.com"}, headers=tenant.bearer
            )
            assert consent.json()["current"][0]["granted"] is False

        channels = journey_stats(platform.engine, live.id)["channels"]["email"]
        assert channels["sent"] == 1 and channels["opened"] == 1 and channels["clicked"] == 1
        enroll("second")
        assert len(box.messages) == 1  # withdrawn: the next marketing mail is not sent
        nodes = journey_stats(platform.engine, live.id)["nodes"]["mail"]["steps"]
        assert nodes["skipped:consent_withdrawn"] == 1
    finally:
        platform.close()
