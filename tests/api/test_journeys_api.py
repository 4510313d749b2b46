"""The journey APIs as a console or a script uses them: save a journey (versions kept), publish,
pause, archive; bad journeys are 400 `invalid_journey` with the JSON path of each problem; enroll
people by hand, run a round (`POST /api/v1/journeys/run`, optionally `advance_seconds` ahead)
and read the statistics. Sends on the sink and on a `sink_sms` stand-in go through every rule:
consent (SMS is opt-in), quiet hours, the kill switch and suppressions; no send ever twice.

The journeys' worker thread is off here (see `settings`): rounds run when a test asks, on a
`ManualClock` at 12:00 in Shanghai (04:00 UTC), outside the default quiet hours 21:00–09:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from quanyu.collect.messages import Envelope
from quanyu.journeys.clock import ManualClock
from quanyu.platform import Platform
from quanyu.settings import Settings
from quanyu.store.engine import reading
from quanyu.store.models import Enrollment, OutboxMessage
from testkit import Tenant, make_settings

NEVER = {"type": "event", "event": "Never Happens"}  # journeys these tests enroll into by hand
PHONE = "13800138000"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shared fixture's settings without the journeys' worker thread: rounds run on demand."""
    return make_settings(tmp_path / "data", pipeline_enabled=False, journeys_enabled=False)


@pytest.fixture
def clock(platform: Platform) -> Iterator[ManualClock]:
    noon = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)  # 12:00 Asia/Shanghai
    manual = ManualClock(noon)
    platform.journeys.clock = manual
    yield manual


# -- helpers (test_messaging_api imports them) -----------------------------------------------------


def call(client: TestClient, tenant: Tenant, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    resp = client.request(method, path, headers=tenant.bearer, **kw)
    assert resp.status_code == status, resp.text
    return resp.json()


def error(
    client: TestClient, tenant: Tenant, method: str, path: str, status: int, **kw: Any
) -> dict[str, Any]:
    body = call(client, tenant, method, path, status, **kw)
    assert isinstance(body["code"], str) and isinstance(body["message"], str), body
    return body


def people(platform: Platform, tenant: Tenant, **traits_of: dict[str, Any]) -> dict[str, str]:
    """People sent through the collector and the pipeline (`identify` with their traits, so a
    phone or an e-mail becomes an address); user id -> profile id."""
    source = next(s for s in platform.sources.list(tenant.workspace_id) if s.id == tenant.source_id)
    messages = [{"type": "identify", "userId": uid, "traits": traits} for uid, traits in traits_of.items()]
    future, receipt = platform.intake.accept(source, messages, None, Envelope())
    future.result()
    assert not receipt.quarantined, receipt.quarantined
    platform.pipeline.drain()
    nodes = platform.warehouse.table("identity_nodes")
    rows = platform.warehouse.execute(
        nodes.filter(nodes.workspace_id == tenant.workspace_id, nodes.id_type == "user_id")
    ).to_pylist()
    found = {r["value"]: r["profile_id"] for r in rows}
    return {uid: found[uid] for uid in traits_of}


def journey(client: TestClient, tenant: Tenant, nodes: dict[str, Any], *, start: str | None = None,
            publish: bool = True, **extra: Any) -> dict[str, Any]:  # fmt: skip
    definition = {"name": extra.pop("name", "测试 Test"), "trigger": extra.pop("trigger", NEVER),
                  "start": start or next(iter(nodes)), "nodes": nodes, **extra}  # fmt: skip
    return call(client, tenant, "POST", "/api/v1/journeys", 201, json=definition, params={"publish": publish})


def send(channel: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "send", "channel": channel, "content": content, **extra}


def enroll(client: TestClient, tenant: Tenant, journey_id: str, *profile_ids: str) -> dict[str, Any]:
    return call(client, tenant, "POST", f"/api/v1/journeys/{journey_id}/enroll",
                json={"profile_ids": list(profile_ids)})  # fmt: skip


def run(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    return call(client, tenant, "POST", "/api/v1/journeys/run", params=params)


def stats(client: TestClient, tenant: Tenant, journey_id: str) -> dict[str, Any]:
    body = call(client, tenant, "GET", f"/api/v1/journeys/{journey_id}/stats")
    assert body["duplicate_sends"] == 0, body
    return body


def steps_at(client: TestClient, tenant: Tenant, journey_id: str, node: str) -> dict[str, int]:
    return stats(client, tenant, journey_id)["nodes"].get(node, {}).get("steps", {})


def outbox(platform: Platform, journey_id: str) -> list[Any]:
    o = OutboxMessage.__table__
    with reading(platform.engine) as conn:
        return list(conn.execute(select(o).where(o.c.journey_id == journey_id).order_by(o.c.id)).all())


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def sink_file(settings: Settings, tenant: Tenant) -> Path:
    """Where the unconfigured sink channel writes: data_dir/sink/<workspace>.jsonl."""
    return settings.data_dir / "sink" / f"{tenant.workspace_id}.jsonl"


def sms_channel(client: TestClient, tenant: Tenant, path: Path) -> dict[str, Any]:
    return call(client, tenant, "POST", "/api/v1/channels", 201,
                json={"type": "sink_sms", "name": "短信替身 SMS stand-in", "settings": {"path": str(path)},
                      "default": True})  # fmt: skip


# -- saving, versions, publishing --------------------------------------------------------------------


HELLO = {"hello": send("sink", {"text": "你好 Hello"})}


def test_versions_publish_pause_archive(client: TestClient, tenant: Tenant) -> None:
    schema = call(client, tenant, "GET", "/api/v1/journeys/schema")
    assert {"trigger", "nodes", "start"} <= set(schema["properties"])

    made = journey(client, tenant, HELLO, publish=False)
    jid = made["id"]
    assert (made["status"], made["current_version"], made["live_version"]) == ("draft", 1, None)
    assert (
        made["created_by"].startswith("token:") and made["definition"]["nodes"]["hello"]["channel"] == "sink"
    )
    assert error(client, tenant, "POST", f"/api/v1/journeys/{jid}/enroll", 409,
                 json={"profile_ids": ["p"]})["code"] == "journey_not_live"  # fmt: skip

    changed = {"name": "改名 Renamed", "trigger": NEVER, "start": "hello",
               "nodes": {"hello": send("sink", {"text": "v2"})}}  # fmt: skip
    v2 = call(client, tenant, "PUT", f"/api/v1/journeys/{jid}", json=changed)
    assert (v2["name"], v2["current_version"], v2["status"]) == ("改名 Renamed", 2, "draft")
    assert [v["version"] for v in v2["versions"]] == [2, 1]
    live = call(client, tenant, "POST", f"/api/v1/journeys/{jid}/publish")
    assert (live["status"], live["live_version"]) == ("live", 2) and live["published_at"]

    changed["nodes"]["hello"]["content"]["text"] = "v3"
    v3 = call(client, tenant, "PUT", f"/api/v1/journeys/{jid}", json=changed)
    assert (v3["status"], v3["current_version"], v3["live_version"]) == ("live", 3, 2)
    assert v3["definition"]["nodes"]["hello"]["content"]["text"] == "v3"

    paused = call(client, tenant, "POST", f"/api/v1/journeys/{jid}/pause")
    assert paused["status"] == "paused"
    assert error(client, tenant, "POST", f"/api/v1/journeys/{jid}/pause", 409)["code"] == "journey_not_live"
    assert error(client, tenant, "POST", f"/api/v1/journeys/{jid}/enroll", 409,
                 json={"profile_ids": ["p"]})["code"] == "journey_not_live"  # fmt: skip
    again = call(client, tenant, "POST", f"/api/v1/journeys/{jid}/publish")
    assert (again["status"], again["live_version"]) == ("live", 3)
    listed = call(client, tenant, "GET", "/api/v1/journeys")["items"]
    assert [(j["id"], j["status"], j["current_version"]) for j in listed] == [(jid, "live", 3)]

    archived = call(client, tenant, "POST", f"/api/v1/journeys/{jid}/archive")
    assert archived["status"] == "archived"
    for method, path, kw in (("PUT", f"/api/v1/journeys/{jid}", {"json": changed}),
                             ("POST", f"/api/v1/journeys/{jid}/publish", {})):  # fmt: skip
        assert error(client, tenant, method, path, 409, **kw)["code"] == "journey_archived"
    for path in ("/api/v1/journeys/jrn_nope", "/api/v1/journeys/jrn_nope/stats"):
        assert error(client, tenant, "GET", path, 404)["code"] == "journey_not_found"


def _journey(nodes: dict[str, Any], start: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": "坏 Bad", "trigger": extra.pop("trigger", NEVER), "start": start, "nodes": nodes, **extra}


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        (_journey({"a": {"type": "exit"}}, start="nope"), "start"),
        (_journey({"a": {"type": "tag", "add": ["x"], "next": "b"}, "b": {"type": "tag", "add": ["y"], "next": "a"}}),
         "nodes.a"),
        ({"trigger": NEVER, "start": "a", "nodes": {"a": {"type": "exit"}}}, "name"),
        (_journey({"a": {"type": "exit"}}, trigger={"type": "fax"}), "trigger"),
        (_journey({"a": send("sms", {})}), "nodes.a.content.text"),
        (_journey({"a": send("email", {"subject": "{{ profile.name ", "text": "x"})}), "nodes.a.content.subject"),
        (_journey({"a": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}), "nodes.a.url"),
        (_journey({"a": send("fax", {})}), "nodes.a.channel"),
        (_journey({"a": {"type": "wait", "duration": {"days": 0}}}), "nodes.a.duration"),
        (_journey({"a": {"type": "exit"}}, trigger={"type": "event"}), "trigger.event"),
    ],
)  # fmt: skip
def test_invalid_journeys_are_400_with_the_path(
    client: TestClient, tenant: Tenant, definition: dict[str, Any], path: str
) -> None:
    made = journey(client, tenant, HELLO, publish=False)
    for method, url in (("POST", "/api/v1/journeys"), ("PUT", f"/api/v1/journeys/{made['id']}")):
        refused = error(client, tenant, method, url, 400, json=definition)
        assert refused["code"] == "invalid_journey", refused
        assert refused["details"][0]["path"] == path, refused
        assert refused["details"][0]["message"] and path in refused["message"], refused
    assert call(client, tenant, "GET", f"/api/v1/journeys/{made['id']}")["current_version"] == 1


# -- running -----------------------------------------------------------------------------------------


def test_enroll_run_stats_and_advance_on_the_sink(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    nodes = {"hello": send("sink", {"text": "你好 Hello"}, next="later"),
             "later": {"type": "wait", "duration": {"days": 1}, "next": "bye"},
             "bye": send("sink", {"text": "再见 Bye"})}  # fmt: skip
    jid = journey(client, tenant, nodes)["id"]
    assert enroll(client, tenant, jid, "prof_a", "prof_b") == {
        "considered": 2, "enrolled": 2, "held_out": 0, "refused": {}
    }  # fmt: skip
    assert enroll(client, tenant, jid, "prof_a")["refused"] == {"already_entered": 1}

    done = run(client, tenant)
    assert (done["steps"]["queued"], done["sends"]["outcomes"]) == (2, {"sent": 2})
    assert run(client, tenant)["steps"]["claimed"] == 0  # nothing due until tomorrow
    body = stats(client, tenant, jid)
    assert (body["entered"], body["active"], body["waiting"]) == (2, 2, 2)
    assert body["nodes"]["hello"]["steps"] == {"entered": 2, "queued": 2}
    assert body["nodes"]["later"]["waiting"] == 2
    assert body["channels"]["sink"]["sent"] == 2
    written = lines(sink_file(settings, tenant))
    assert sorted((w["to"], w["content"]["text"]) for w in written) == [("prof_a", "你好 Hello"),
                                                                        ("prof_b", "你好 Hello")]  # fmt: skip

    # A day ahead for this call only: the waits end, the second message goes out.
    before = clock.now()
    done = run(client, tenant, advance_seconds=86400 + 60)
    assert done["sends"]["outcomes"] == {"sent": 2}
    assert platform.journeys.clock is clock and clock.now() == before
    body = stats(client, tenant, jid)
    assert (body["active"], body["exited"]) == (0, {"completed": 2})
    assert body["channels"]["sink"]["sent"] == 4
    assert len(lines(sink_file(settings, tenant))) == 4
    items = call(client, tenant, "GET", f"/api/v1/journeys/{jid}/enrollments")["items"]
    assert [(e["profile_id"], e["status"], e["exit_reason"]) for e in items] == [
        ("prof_a", "done", "completed"), ("prof_b", "done", "completed")
    ]  # fmt: skip
    assert error(client, tenant, "POST", "/api/v1/journeys/run", 400,
                 params={"advance_seconds": -5})["code"] == "invalid_request"  # fmt: skip


def test_sms_needs_consent(
    client: TestClient, tenant: Tenant, platform: Platform, clock: ManualClock, tmp_path: Path
) -> None:
    pid = people(platform, tenant, lei={"phone": PHONE, "first_name": "雷"})["lei"]
    sms = tmp_path / "sms.jsonl"
    assert sms_channel(client, tenant, sms)["channel"] == "sms"
    jid = journey(client, tenant, {"offer": send("sms", {"text": "{{ profile.first_name }}，新品上市。回T退订"})},
                  settings={"reentry": {"mode": "after_exit"}})["id"]  # fmt: skip

    enroll(client, tenant, jid, pid)
    run(client, tenant)
    assert steps_at(client, tenant, jid, "offer") == {
        "entered": 1,
        "skipped:no_consent": 1,
        "exited:completed": 1,
    }
    assert lines(sms) == [] and outbox(platform, jid) == []

    shown = call(client, tenant, "POST", "/api/v1/consent", 201,
                 json={"profile_id": pid, "channel": "sms", "granted": True})  # fmt: skip
    assert [(c["channel"], c["granted"]) for c in shown["current"]] == [("sms", True)]
    assert enroll(client, tenant, jid, pid)["enrolled"] == 1
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 1}
    assert steps_at(client, tenant, jid, "offer")["queued"] == 1
    assert stats(client, tenant, jid)["channels"]["sms"]["sent"] == 1
    [line] = lines(sms)
    assert (line["channel"], line["to"], line["content"]["text"]) == ("sms", PHONE, "雷，新品上市。回T退订")


def test_quiet_hours_hold_then_send(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    policy = call(client, tenant, "PATCH", "/api/v1/messaging/policy", json={"quiet_hours": "11:00-13:00"})
    assert policy["quiet_hours"] == "11:00-13:00"  # it is 12:00 in Shanghai
    held = journey(client, tenant, HELLO)["id"]
    cancelled = journey(client, tenant, HELLO, name="取消 Cancel", settings={"quiet_hours": "cancel"})["id"]
    enroll(client, tenant, held, "prof_q")
    enroll(client, tenant, cancelled, "prof_q")
    assert run(client, tenant)["sends"]["claimed"] == 0
    assert steps_at(client, tenant, held, "hello") == {"entered": 1, "held:quiet_hours": 1}
    assert steps_at(client, tenant, cancelled, "hello") == {"entered": 1, "skipped:quiet_hours": 1,
                                                             "exited:completed": 1}  # fmt: skip
    e = Enrollment.__table__
    with reading(platform.engine) as conn:
        due = conn.execute(select(e.c.due_at).where(e.c.journey_id == held)).scalar_one()
    assert due.replace(tzinfo=UTC) == clock.now().replace(hour=5)  # 13:00 in Shanghai

    clock.advance(timedelta(minutes=61))
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 1}
    assert stats(client, tenant, held)["channels"]["sink"]["sent"] == 1
    assert [w["to"] for w in lines(sink_file(settings, tenant))] == ["prof_q"]


def test_kill_switch_holds_sends_and_resuming_sends_them(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    jid = journey(client, tenant, HELLO)["id"]
    on = call(client, tenant, "POST", "/api/v1/messaging/kill-switch", json={"on": True})
    assert on["kill_switch"] is True and on["kill_switch_by"].startswith("token:")
    enroll(client, tenant, jid, "prof_k1")
    assert run(client, tenant)["sends"]["claimed"] == 0
    assert steps_at(client, tenant, jid, "hello") == {"entered": 1, "held:kill_switch": 1}

    # A message queued before the switch went on stays in the outbox.
    call(client, tenant, "POST", "/api/v1/messaging/kill-switch", json={"on": False})
    enroll(client, tenant, jid, "prof_k2")
    assert platform.journeys.runner(platform.warehouse).run_due().queued == 1
    call(client, tenant, "POST", "/api/v1/messaging/kill-switch", json={"on": True})
    done = run(client, tenant)
    assert (done["sends"]["held"], done["sends"]["claimed"]) == (1, 0)
    assert [r.status for r in outbox(platform, jid)] == ["pending"]
    assert lines(sink_file(settings, tenant)) == []

    off = call(client, tenant, "POST", "/api/v1/messaging/kill-switch", json={"on": False})
    assert off["kill_switch"] is False
    clock.advance(timedelta(seconds=61))  # the held step is looked at again after a minute
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 2}
    assert sorted(w["to"] for w in lines(sink_file(settings, tenant))) == ["prof_k1", "prof_k2"]
    body = stats(client, tenant, jid)
    assert body["channels"]["sink"]["sent"] == 2 and body["exited"] == {"completed": 2}


def test_suppressed_people_are_skipped(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    call(client, tenant, "POST", "/api/v1/suppressions", 201,
         json={"channel": "*", "address": "prof_s", "reason": "投诉 complaint"})  # fmt: skip
    assert [s["address"] for s in call(client, tenant, "GET", "/api/v1/suppressions")["items"]] == ["prof_s"]
    jid = journey(client, tenant, {"hello": send("sink", {"text": "通知 Notice"}, purpose="transactional")})[
        "id"
    ]
    enroll(client, tenant, jid, "prof_s", "prof_ok")
    assert run(client, tenant)["sends"]["outcomes"] == {"sent": 1}
    assert steps_at(client, tenant, jid, "hello") == {"entered": 2, "skipped:suppressed": 1, "queued": 1,
                                                       "exited:completed": 2}  # fmt: skip
    assert [w["to"] for w in lines(sink_file(settings, tenant))] == ["prof_ok"]
