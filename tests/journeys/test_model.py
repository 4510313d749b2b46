"""The journey language: what is refused (with the JSON path), and a property: any valid
journey graph carries every person to an end, sending each step at most once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.journeykit import Rig, journey, make_rig, send_to
from quanyu.errors import InvalidInput
from quanyu.journeys.content import check_journey_content
from quanyu.journeys.model import parse_journey
from quanyu.platform import Platform
from testkit import Tenant

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples" / "journeys"


def _refused(definition: dict[str, Any], rig: Rig | None = None) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as err:
        if rig is not None:
            rig.journeys.create(rig.workspace_id, definition, "test")
        else:
            parse_journey(definition)
    assert err.value.code == "invalid_journey"
    return {"message": err.value.message, "paths": [d["path"] for d in err.value.details]}


def test_graph_problems_are_refused_with_their_path() -> None:
    loop = journey(
        {"a": send_to("sink", nxt="b"), "b": {"type": "wait", "duration": {"hours": 1}, "next": "a"}}
    )
    assert "loops: a → b → a" in _refused(loop)["message"]
    missing = journey({"a": send_to("sink", nxt="nowhere")})
    assert "no node 'nowhere'" in _refused(missing)["message"]
    orphan = journey({"a": send_to("sink"), "b": send_to("sink")})
    assert _refused(orphan)["paths"] == ["nodes.b"]
    bad_start = journey({"a": send_to("sink")}, start="zzz")
    assert "start 'zzz'" in _refused(bad_start)["message"]


@pytest.mark.parametrize(
    ("node", "path_part"),
    [
        ({"type": "wait"}, "nodes.a"),
        ({"type": "wait", "duration": {"hours": 0}}, "nodes.a"),
        ({"type": "split", "arms": [{"name": "A", "percent": 50}], "control": 10}, "nodes.a"),
        ({"type": "send", "channel": "fax", "content": {}}, "nodes.a"),
        ({"type": "condition", "if": {"conditions": [{"trait": "x", "op": "sounds_like"}]}}, "nodes.a"),
        ({"type": "teleport"}, "nodes.a"),
    ],
)
def test_bad_nodes_are_refused(node: dict[str, Any], path_part: str) -> None:
    found = _refused(journey({"a": node}))
    assert any(p.startswith(path_part) for p in found["paths"]), found


def test_content_is_checked_at_save(lite: Rig) -> None:
    no_subject = journey({"a": {"type": "send", "channel": "email", "content": {"text": "x"}}})
    assert _refused(no_subject, lite)["paths"] == ["nodes.a.content.subject"]
    injection = journey({"a": send_to("sms", "{{ profile.__class__.__mro__ }}")})
    assert _refused(injection, lite)["paths"] == ["nodes.a.content.text"]
    unknown_root = journey({"a": send_to("sms", "{{ os.environ }}")})
    assert _refused(unknown_root, lite)["paths"] == ["nodes.a.content.text"]
    too_long = journey({"a": send_to("sms", "优惠" * 300)})
    assert _refused(too_long, lite)["paths"] == ["nodes.a.content.text"]
    newline_subject = journey({"a": {"type": "send", "channel": "email", "content": {"subject": "Hi\nBcc: x@y",
                                                                                      "text": "x"}}})  # fmt: skip
    assert _refused(newline_subject, lite)["paths"] == ["nodes.a.content.subject"]


def test_conditions_are_compiled_at_save(platform: Platform, tenant: Tenant) -> None:
    between_one = {"conditions": [{"trait": "order_count", "op": "between", "value": 3}]}
    bad = journey({"a": {"type": "condition", "if": between_one, "yes": "b"}, "b": send_to("sink")})
    with pytest.raises(InvalidInput) as err:
        platform.journeys.saved.create(tenant.workspace_id, bad, "test")
    assert err.value.code == "invalid_journey" and err.value.details[0]["path"] == "nodes.a.if"


def test_webhooks_to_private_addresses_are_refused_at_save(lite: Rig) -> None:
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.8/hook", "file:///etc/passwd"):
        hook = journey({"a": {"type": "webhook", "url": url, "body": {"id": "{{ profile.profile_id }}"}}})
        assert _refused(hook, lite)["paths"] == ["nodes.a.url"]
    # The rig allows 127.0.0.1 (QUANYU_WEBHOOK_ALLOW_NETWORKS in a deployment).
    ok = journey({"a": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "body": {}}})
    assert lite.journeys.create(lite.workspace_id, ok, "test")["status"] == "draft"


def test_injected_values_render_literally(lite: Rig) -> None:
    live = lite.save(
        journey({"a": send_to("sink", "Hi {{ profile.name }}, {{ event.note }}", purpose="transactional")})
    )
    payload = "{{ coupon.code }} {% import os %} ${7*7} <script>alert(1)</script>"
    lite.person("p", traits={"name": payload})
    lite.enroll(live, "p", event={"note": "{{7*7}}"})
    lite.run()
    assert lite.sink()[0]["content"]["text"] == f"Hi {payload}, {{{{7*7}}}}"


def test_every_documented_example_is_valid() -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert any(f.name == "welcome_email.json" for f in files)
    for path in files:
        check_journey_content(parse_journey(json.loads(path.read_text())))


# ---------------------------------------------------------------------------------------------
# Any valid graph ends, and sends each step at most once per enrollment.


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 7))
    names = [f"n{i}" for i in range(size)]
    nodes: dict[str, Any] = {}
    for i, name in enumerate(names):
        later = names[i + 1 :]
        target = st.none() | st.sampled_from(later) if later else st.none()
        kind = draw(st.sampled_from(["send", "wait", "split", "tag"] if later else ["send", "wait", "tag"]))
        if kind == "send":
            nodes[name] = send_to("sink", name, nxt=draw(target), purpose="transactional")
        elif kind == "wait":
            nodes[name] = {"type": "wait", "duration": {"hours": draw(st.integers(1, 48))}}
            if (t := draw(target)) is not None:
                nodes[name]["next"] = t
        elif kind == "tag":
            nodes[name] = {"type": "tag", "add": ["t"]}
            if (t := draw(target)) is not None:
                nodes[name]["next"] = t
        else:
            a, b = draw(target), draw(target)
            control = draw(st.sampled_from([0, 10]))
            nodes[name] = {"type": "split", "control": control,
                           "arms": [{"name": "A", "percent": 50, "next": a}, {"name": "B", "percent": 50 - control,
                                                                                "next": b}]}  # fmt: skip
    # Keep only nodes reachable from the start (the language refuses orphans).
    reach, todo = set(), [names[0]]
    while todo:
        n = todo.pop()
        if n in reach:
            continue
        reach.add(n)
        node = nodes[n]
        todo += [t for t in [node.get("next"), *[arm.get("next") for arm in node.get("arms", [])]] if t]
    return journey({n: nodes[n] for n in names if n in reach}, start=names[0],
                   goal={"event": "Order Completed", "within_days": 2})  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=graphs())
def test_any_journey_ends_and_sends_each_step_once(tmp_path_factory: pytest.TempPathFactory,
                                                   definition: dict[str, Any]) -> None:  # fmt: skip
    directory = tmp_path_factory.mktemp("graph")
    rig = make_rig(f"sqlite:///{directory / 'ops.db'}", directory)
    try:
        live = rig.save(definition)
        rig.enroll(live, *[f"p{i}" for i in range(20)])
        rig.run()
        for _ in range(8):
            rig.advance(days=1)
        rows = rig.enrollments(live.id)
        assert all(r.status == "done" for r in rows)
        assert {r.exit_reason for r in rows} <= {"completed", "control"}
        keys = [line["key"] for line in rig.sink()]
        assert len(keys) == len(set(keys))
        per = {(line["profile_id"], line["content"]["text"]) for line in rig.sink()}
        assert len(per) == len(keys)  # one send per person per send step
    finally:
        rig.channels.close()
        rig.engine.dispose()
