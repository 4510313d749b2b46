"""Hosted H5 forms (活动报名、线下展会、留资): a `form` source is a small mobile-first page at
`/f/{source_id}` whose submissions become an `identify` (traits) and a `Form Submitted` track
event, and, when the consent box is ticked, consent records with the exact wording shown.

Settings of a `form` source:
- `title`, `description` (optional), `success_message` (optional), `event` (default `Form Submitted`)
- `fields`: `[{"name", "label"?, "type"?, "required"?, "options"?}]`; `name`, `phone`, `email`,
  `company`, `city` have Chinese-first labels and the right input types built in; any other name
  (lowercase letters, digits, `_`) is a custom field and needs a `label`.
- `consent_text`: the wording next to the checkbox, recorded verbatim; `consent_channels`
  (`sms` → the phone, `email` → the email; default `["sms"]`), `consent_purpose` (default
  `marketing`), `consent_version` (default: the first 12 hex digits of the wording's SHA-256).

The page carries a signed token (source, issue time, a nonce) in a hidden field: a POST without a
fresh token from this form's page is refused, and the nonce makes the submission's messageIds, so a
double-tapped submit is stored once. A hidden honeypot field catches form-filling bots.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from quanyu.channels.tracking import InvalidToken, sign, verify
from quanyu.errors import Conflict, Forbidden
from quanyu.identity.identifiers import normalise_email, normalise_phone
from quanyu.journeys.effects import external_id
from quanyu.journeys.policy import ConsentInput

TOKEN_TTL_SECONDS = 24 * 3600  # a page left open at an exhibition stand all day still submits
MAX_FIELDS = 20
MAX_VALUE_LENGTH = 500
HONEYPOT = "website"  # a name bots fill in; people never see the field
TOKEN_FIELD = "_token"  # noqa: S105 - the hidden field's name, not a secret
CONSENT_FIELD = "consent"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_CAMPAIGN = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name", "utm_term": "term",
             "utm_content": "content"}  # fmt: skip
_BUILTIN: dict[str, tuple[str, str]] = {
    "name": ("姓名 Name", "text"),
    "phone": ("手机号 Mobile", "tel"),
    "email": ("邮箱 Email", "email"),
    "company": ("公司 Company", "text"),
    "city": ("城市 City", "text"),
}
_TYPES = ("text", "tel", "email", "textarea", "select")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_RESERVED = frozenset({HONEYPOT, TOKEN_FIELD, CONSENT_FIELD, *UTM_KEYS})
_CONSENT_ADDRESS = {"sms": "phone", "email": "email"}
_NORMALISERS: dict[str, tuple[Callable[[str], str | None], str]] = {
    "tel": (normalise_phone, "手机号格式不正确 / not a valid mobile number"),
    "email": (normalise_email, "邮箱格式不正确 / not a valid email address"),
}
_NAMESPACE = uuid.UUID("5d0b7c1e-3f7a-4c43-9a52-666f726d7321")


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    type: str
    required: bool
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormConfig:
    source_id: str
    title: str
    fields: tuple[FormField, ...]
    description: str = ""
    success_message: str = "提交成功，感谢您的参与！/ Thank you, we have received your details."
    event: str = "Form Submitted"
    consent_text: str = ""
    consent_channels: tuple[str, ...] = ("sms",)
    consent_purpose: str = "marketing"
    consent_version: str = ""

    @property
    def consent_hash(self) -> str:
        return hashlib.sha256(self.consent_text.encode("utf-8")).hexdigest()


def _problem(problems: list[str], where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def parse_config(source_id: str, settings: Mapping[str, Any]) -> FormConfig:
    """The form a source's settings describe; Conflict `form_not_configured` listing every problem."""
    problems: list[str] = []
    title = settings.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        _problem(problems, "title", "须为 1–200 字符 / must be 1–200 characters")
    raw_fields = settings.get(
        "fields", [{"name": "name", "required": True}, {"name": "phone", "required": True}]
    )
    fields: list[FormField] = []
    if not isinstance(raw_fields, list) or not 1 <= len(raw_fields) <= MAX_FIELDS:
        _problem(problems, "fields", f"须为 1–{MAX_FIELDS} 个字段的列表 / must list 1–{MAX_FIELDS} fields")
        raw_fields = []
    for i, spec in enumerate(raw_fields):
        parsed = _field(spec, f"fields[{i}]", problems)
        if parsed is not None:
            if any(f.name == parsed.name for f in fields):
                _problem(problems, f"fields[{i}]", f"字段重复 / duplicate field {parsed.name!r}")
            fields.append(parsed)
    texts = {
        k: settings.get(k, "") for k in ("description", "success_message", "consent_text", "consent_version")
    }
    for key, value in texts.items():
        if not isinstance(value, str) or len(value) > 2000:
            _problem(problems, key, "须为不超过 2000 字符的文本 / must be text up to 2000 characters")
    channels = settings.get("consent_channels", ["sms"])
    if not isinstance(channels, list) or not channels or set(channels) - set(_CONSENT_ADDRESS):
        _problem(problems, "consent_channels", f"须为 {sorted(_CONSENT_ADDRESS)} 的子集 / must be a subset of "
                 f"{sorted(_CONSENT_ADDRESS)}")  # fmt: skip
        channels = []
    elif texts["consent_text"]:
        for channel in channels:
            if not any(f.name == _CONSENT_ADDRESS[channel] for f in fields):
                _problem(problems, "consent_channels", f"{channel} 需要 {_CONSENT_ADDRESS[channel]} 字段 / "
                         f"{channel} consent needs a {_CONSENT_ADDRESS[channel]} field")  # fmt: skip
    purpose = settings.get("consent_purpose", "marketing")
    if not isinstance(purpose, str) or not purpose or len(purpose) > 40:
        _problem(problems, "consent_purpose", "须为 1–40 字符 / must be 1–40 characters")
    event = settings.get("event", "Form Submitted")
    if not isinstance(event, str) or not event.strip() or len(event) > 200:
        _problem(problems, "event", "须为 1–200 字符 / must be 1–200 characters")
    if problems:
        raise Conflict("表单配置无效 / the form is not configured correctly: " + "; ".join(problems),
                       code="form_not_configured", details={"problems": problems})  # fmt: skip
    consent_text = str(texts["consent_text"])
    config = FormConfig(source_id, str(title).strip(), tuple(fields), str(texts["description"]),
                        str(texts["success_message"]) or FormConfig.success_message, str(event).strip(),
                        consent_text, tuple(channels), str(purpose), str(texts["consent_version"]))  # fmt: skip
    return config


def _field(spec: Any, where: str, problems: list[str]) -> FormField | None:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        _problem(problems, where, "须为含 name 的对象 / must be an object with a name")
        return None
    name = spec["name"]
    if not name or len(name) > 40 or set(name) - _NAME_CHARS or name in _RESERVED:
        _problem(problems, where, f"字段名无效 / invalid field name {name!r} (lowercase letters, digits, _)")
        return None
    default_label, default_type = _BUILTIN.get(name, ("", "text"))
    label = spec.get("label", default_label)
    ftype = spec.get("type", default_type)
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        _problem(problems, where, "自定义字段需要 label / a custom field needs a label (≤ 200 characters)")
        return None
    if ftype not in _TYPES:
        _problem(problems, where, f"type 须为 {list(_TYPES)} / type must be one of {list(_TYPES)}")
        return None
    options = spec.get("options", [])
    if ftype == "select" and (not isinstance(options, list) or not options
                              or not all(isinstance(o, str) and o for o in options)):  # fmt: skip
        _problem(problems, where, "select 需要 options 列表 / a select needs a list of options")
        return None
    return FormField(name, label.strip(), ftype, bool(spec.get("required", False)), tuple(options or ()))


# -- tokens ----------------------------------------------------------------------------------------


def issue_token(key: bytes, source_id: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return sign(key, {"v": "form1", "f": source_id, "t": issued, "n": secrets.token_urlsafe(12)})


def check_token(key: bytes, source_id: str, token: str, now: float | None = None) -> str:
    """The token's nonce, or Forbidden (`form_token_invalid`, `form_expired`)."""
    try:
        fields = verify(key, token)
    except InvalidToken:
        fields = {}
    if fields.get("v") != "form1" or fields.get("f") != source_id or not isinstance(fields.get("t"), int):
        raise Forbidden("表单令牌无效，请刷新页面重试 / invalid form token, reload the page",
                        code="form_token_invalid")  # fmt: skip
    age = (time.time() if now is None else now) - fields["t"]
    if not -60 <= age <= TOKEN_TTL_SECONDS:
        raise Forbidden("表单已过期，请重新提交 / the form expired, please submit again", code="form_expired")
    return str(fields["n"])


# -- submissions -----------------------------------------------------------------------------------


@dataclass
class Submission:
    values: dict[str, str]  # what the person typed, normalised (phone, email)
    consent: bool
    utm: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def read_submission(config: FormConfig, form: Mapping[str, str], query: Mapping[str, str]) -> Submission:
    """Check the posted fields; `errors` maps a field name to a bilingual message."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for f in config.fields:
        text = str(form.get(f.name, "")).strip()
        if len(text) > MAX_VALUE_LENGTH:
            errors[f.name] = f"不能超过 {MAX_VALUE_LENGTH} 字 / at most {MAX_VALUE_LENGTH} characters"
            values[f.name] = text[:MAX_VALUE_LENGTH]
            continue
        values[f.name] = text
        if not text:
            if f.required:
                errors[f.name] = f"请填写{f.label.split(' ')[0]} / {f.label} is required"
            continue
        # `phone` and `email` are stored normalised whatever input type the form gave them.
        kind = {"phone": "tel", "email": "email"}.get(f.name, f.type)
        if kind in _NORMALISERS:
            normalise, problem = _NORMALISERS[kind]
            clean = normalise(text)
            if clean is None:
                errors[f.name] = problem
            else:
                values[f.name] = clean
        elif f.type == "select" and text not in f.options:
            errors[f.name] = "请从选项中选择 / choose one of the options"
    consent = str(form.get(CONSENT_FIELD, "")).lower() in ("yes", "on", "true", "1")
    utm = {k: str(query[k])[:200] for k in UTM_KEYS if query.get(k)}
    return Submission(values, consent, utm, errors)


def is_bot(form: Mapping[str, str]) -> bool:
    return bool(str(form.get(HONEYPOT, "")).strip())


def messages(config: FormConfig, sub: Submission, nonce: str, at: datetime) -> list[dict[str, Any]]:
    """The identify and the track event of one submission. Their messageIds derive from the form
    token's nonce: the same rendered form submitted twice is stored once."""
    filled = {k: v for k, v in sub.values.items() if v}
    anonymous = f"form-{uuid.uuid5(_NAMESPACE, f'{config.source_id}/{nonce}')}"
    ids = [external_id(kind, filled[kind]) for kind in ("phone", "email") if kind in filled]
    context: dict[str, Any] = {"library": {"name": "quanyu-forms", "version": "1"}}
    if ids:
        context["externalIds"] = ids
    if sub.utm:
        context["campaign"] = {_CAMPAIGN[k]: v for k, v in sub.utm.items()}
    stamp = at.isoformat()
    identify = {"type": "identify", "anonymousId": anonymous, "traits": filled, "timestamp": stamp,
                "messageId": str(uuid.uuid5(_NAMESPACE, f"{config.source_id}/{nonce}/identify")),
                "context": context}  # fmt: skip
    properties: dict[str, Any] = {"form_id": config.source_id, "form_title": config.title, "fields": filled,
                                  "consent_given": "yes" if sub.consent else "no", **sub.utm}  # fmt: skip
    if sub.consent and config.consent_text:
        properties["consent_version"] = version(config)
    track = {"type": "track", "event": config.event, "anonymousId": anonymous, "properties": properties,
             "timestamp": stamp, "messageId": str(uuid.uuid5(_NAMESPACE, f"{config.source_id}/{nonce}/track")),
             "context": context}  # fmt: skip
    return [identify, track]


def version(config: FormConfig) -> str:
    return config.consent_version or config.consent_hash[:12]


def consent_records(config: FormConfig, sub: Submission, nonce: str, at: datetime,
                    evidence: Mapping[str, Any]) -> list[ConsentInput]:  # fmt: skip
    """One grant per configured channel whose address the person gave, with the exact wording."""
    if not (sub.consent and config.consent_text):
        return []
    proof = {"wording": config.consent_text, "version": version(config), "sha256": config.consent_hash,
             "form_id": config.source_id, "form_title": config.title, **evidence}  # fmt: skip
    out = []
    for channel in config.consent_channels:
        address = sub.values.get(_CONSENT_ADDRESS[channel])
        if address:
            out.append(ConsentInput("address", address, channel, config.consent_purpose, True,
                                    f"form:{config.source_id}", at, dict(proof),
                                    f"form:{config.source_id}:{nonce}:{channel}"))  # fmt: skip
    return out


# -- the page --------------------------------------------------------------------------------------

_STYLE = """*{box-sizing:border-box}body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",
sans-serif;background:#f6f5f2;color:#222}main{max-width:30em;margin:0 auto;padding:1.2em}h1{font-size:1.4em;
margin:.4em 0}label{display:block;margin:1em 0 .3em;font-weight:600}input,select,textarea{width:100%;
font:inherit;padding:.7em;border:1px solid #bbb;border-radius:6px;background:#fff}textarea{min-height:6em}
.req{color:#c0392b}.err{color:#c0392b;font-size:.9em;margin:.3em 0 0}.bad{border-color:#c0392b}
.consent{display:flex;gap:.6em;align-items:flex-start;margin:1.2em 0;font-weight:400}.consent input{width:auto;
margin-top:.3em}button{width:100%;margin-top:1.2em;padding:.9em;font:inherit;font-weight:600;border:0;
border-radius:6px;background:#2e7d32;color:#fff}.hp{position:absolute;left:-9999px;height:0;overflow:hidden}
.alert{background:#fdecea;color:#c0392b;padding:.8em;border-radius:6px}.ok{background:#e8f5e9;padding:1em;
border-radius:6px}"""

# No script, no external resource: the page works in WeChat's browser and leaks nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>")  # fmt: skip


def render_form(config: FormConfig, token: str, action: str, values: Mapping[str, str] | None = None,
                errors: Mapping[str, str] | None = None, alert: str = "", consent: bool = False) -> str:  # fmt: skip
    values, errors = values or {}, errors or {}
    e = html.escape
    parts = [f"<h1>{e(config.title)}</h1>"]
    if config.description:
        parts.append(f"<p>{e(config.description)}</p>")
    if alert or errors:
        parts.append(
            f'<p class="alert" role="alert">{e(alert or "请检查标红的项目 / please check the fields marked")}</p>'
        )
    parts.append(f'<form method="post" action="{e(action)}" novalidate>')
    parts.append(f'<input type="hidden" name="{TOKEN_FIELD}" value="{e(token)}">')
    for f in config.fields:
        fid = f"f_{f.name}"
        star = ' <span class="req">*</span>' if f.required else ""
        bad = ' class="bad" aria-invalid="true"' if f.name in errors else ""
        req = " required" if f.required else ""
        value = e(values.get(f.name, ""))
        parts.append(f'<label for="{fid}">{e(f.label)}{star}</label>')
        if f.type == "textarea":
            parts.append(f'<textarea id="{fid}" name="{f.name}"{bad}{req}>{value}</textarea>')
        elif f.type == "select":
            opts = "".join(f'<option{" selected" if values.get(f.name) == o else ""}>{e(o)}</option>'
                           for o in f.options)  # fmt: skip
            parts.append(f'<select id="{fid}" name="{f.name}"{bad}{req}><option value="">请选择 / choose'
                         f"</option>{opts}</select>")  # fmt: skip
        else:
            mode = {"tel": ' inputmode="tel" autocomplete="tel"', "email": ' autocomplete="email"'}.get(
                f.type, ""
            )
            parts.append(
                f'<input id="{fid}" name="{f.name}" type="{f.type}" value="{value}"{mode}{bad}{req}>'
            )
        if f.name in errors:
            parts.append(f'<p class="err">{e(errors[f.name])}</p>')
    parts.append(f'<div class="hp" aria-hidden="true"><label for="f_hp">请勿填写 / leave empty</label>'
                 f'<input id="f_hp" name="{HONEYPOT}" tabindex="-1" autocomplete="off"></div>')  # fmt: skip
    if config.consent_text:
        checked = " checked" if consent else ""
        parts.append(f'<label class="consent"><input type="checkbox" name="{CONSENT_FIELD}" value="yes"{checked}>'
                     f"<span>{e(config.consent_text)}</span></label>")  # fmt: skip
    parts.append('<button type="submit">提交 / Submit</button></form>')
    return _page(config.title, "".join(parts))


def render_done(config: FormConfig) -> str:
    return _page(config.title, f'<h1>{html.escape(config.title)}</h1><p class="ok">'
                               f"{html.escape(config.success_message)}</p>")  # fmt: skip


def action_url(source_id: str, query: Mapping[str, str]) -> str:
    """The form posts back to itself with the UTM parameters it was opened with."""
    kept = "&".join(f"{k}={quote(str(query[k]), safe='')}" for k in UTM_KEYS if query.get(k))
    return f"/f/{quote(source_id, safe='')}" + (f"?{kept}" if kept else "")
