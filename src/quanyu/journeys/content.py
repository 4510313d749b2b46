"""Message content of a journey's send steps: checked when the journey is saved, rendered when
a step runs.

Content is channel-shaped (docs/journeys.md): email {subject, text, html?}; sms {text,
template_code?/template_id?, params?}; wechat_oa / mini_program {template_id, data, url?,
miniprogram?, kind?}; wecom {text, sender?}; webhook {body}; sink {anything}. Every string in
it may hold template variables (`channels.templates`); the allowed roots are profile, event,
coupon, links and journey.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from quanyu.channels.base import ChannelConfigError
from quanyu.channels.netguard import UnresolvableHostError, check_url
from quanyu.channels.templates import TemplateError, check_lengths, parse, render_content
from quanyu.errors import InvalidInput
from quanyu.journeys.model import Journey, SendNode, WebhookNode

REQUIRED = {
    "email": ("subject",),
    "sms": ("text",),
    "wechat_oa": ("template_id", "data"),
    "mini_program": ("template_id", "data"),
    "wecom": ("text",),
    "webhook": (),
    "sink": (),
}


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _strings(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _strings(inner, f"{path}[{i}]")


def check_journey_content(journey: Journey, allow: Sequence[str] = ()) -> None:
    """Refuse (400 invalid_journey, with the JSON path) missing content fields and bad templates."""
    problems: list[dict[str, str]] = []
    for node_id, node in journey.nodes.items():
        base = f"nodes.{node_id}"
        if isinstance(node, SendNode):
            for key in REQUIRED[node.channel]:
                if key not in node.content:
                    problems.append({"path": f"{base}.content.{key}",
                                     "message": f"{node.channel} content needs {key!r} (缺少字段)"})  # fmt: skip
            if node.channel == "email" and not ({"text", "html"} & set(node.content)):
                problems.append(
                    {"path": f"{base}.content", "message": "email content needs text or html (缺少正文)"}
                )
            fields = _strings(node.content, f"{base}.content")
        elif isinstance(node, WebhookNode):
            fields = _strings(node.body, f"{base}.body")
            try:  # the private-address guard, at save (again at send and after redirects)
                check_url(node.url, allow)
            except UnresolvableHostError:
                pass  # DNS may be down now or the name not published yet: checked again at send
            except ChannelConfigError as exc:
                problems.append({"path": f"{base}.url", "message": str(exc)})
        else:
            continue
        for path, text in fields:
            try:
                parse(text, field=path)
            except TemplateError as exc:
                problems.append({"path": path, "message": str(exc)})
        if isinstance(node, SendNode):
            # Fixed text (no variables) that is already too long can be refused now.
            try:
                rendered = render_content(node.channel, node.content, {})
            except TemplateError:
                continue
            problems += [{"path": f"{base}.content.{p.field}", "message": p.message}
                         for p in check_lengths(node.channel, rendered)
                         if p.level == "error" and _fixed(node.content, p.field)]  # fmt: skip
    if problems:
        raise InvalidInput(
            f"旅程内容无效 / invalid journey content at {problems[0]['path']}: {problems[0]['message']}",
            code="invalid_journey",
            details=problems[:20],
        )


def _fixed(content: Mapping[str, Any], field: str) -> bool:
    value: Any = content
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return isinstance(value, str) and "{{" not in value
