"""Message templates: a small sandboxed placeholder language, rendering and per-channel length checks.

A template is text with placeholders, nothing else:

    {{ profile.first_name | default: "朋友" }}，您的优惠券 {{ coupon.code }} 将于 {{ coupon.expires_at }} 到期

- roots: `profile` (traits and a few profile fields), `event` (the triggering event's properties),
  `coupon` (`code`, `value`, `expires_at`), `links` (`unsubscribe_url` and named links),
  `journey` (`name`);
- a path is at most 4 names, each `[A-Za-z][A-Za-z0-9_]*` (no leading `_`: no dunder access);
- the only filter is `default: "text"` (used when the value is missing or empty). Expressions,
  calls, indexing, other filters and `{% %}` statements are refused when the template is parsed.

Why not jinja2: a template is written by a marketer in the console and rendered with data that
customers control (traits, event properties). A language with nothing but plain variables has
no attribute walk to abuse, and rendering is one pass over the parsed parts: a value is inserted
as it is and never read as template text again, so `{{ coupon.code }}`, `{% import os %}`,
`${7*7}` or `<script>` in a trait come out literally (HTML-escaped in HTML).

`values` given to `render` is one mapping per root, e.g. `{"profile": {"first_name": "李雷"},
"coupon": {"code": "A1B2"}}`; lookups only walk mappings, so no attribute or method of any
object is ever reached.

`render_content` renders a channel's content dict (every string in it; an e-mail's html is
HTML-escaped) and `check_lengths` says what the channel would refuse or bill extra for: SMS
parts as Chinese carriers count them, e-mail subjects (line breaks are header injection),
WeChat keyword values (2023 rules) and WeCom's byte limit.
"""

from __future__ import annotations

import html
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from quanyu.errors import InvalidInput

Escape = Literal["none", "html"]
Level = Literal["error", "warning"]

ROOTS = ("profile", "event", "coupon", "links", "journey")
COUPON_FIELDS = frozenset({"code", "value", "expires_at"})
JOURNEY_FIELDS = frozenset({"name"})
MAX_PATH_SEGMENTS = 4  # the root included: profile.address.city.name
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 500  # a substituted value is cut to this many characters; a longer default is refused
MAX_TEMPLATE_CHARS = 500_000  # an HTML e-mail is well under this; Gmail clips at ~100 KB
MAX_PLACEHOLDERS = 1000
MAX_CONTENT_DEPTH = 20  # nesting of a webhook body or any content
LIST_SEPARATOR = "、"

# SMS as the Chinese carriers bill it (the sign 【品牌名】 is part of the text).
SMS_MAX_CHARS = 500  # providers refuse longer (Aliyun, Tencent: 500 characters with the sign)
SMS_UCS2_SINGLE, SMS_UCS2_PART = 70, 67
SMS_GSM_SINGLE, SMS_GSM_PART = 160, 153
EMAIL_SUBJECT_MAX = 200
WECOM_TEXT_MAX_BYTES = 4000
# WeChat template / subscribe message keyword limits (rules of 2023); the keyword type is the
# data key without its trailing digits ("thing1" -> thing). Other types are not length checked.
WECHAT_KEYWORD_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "name": 10,  # 10 Chinese characters, or 20 when the name is only letters and symbols
    "phrase": 5,
}
WECHAT_NAME_ASCII_MAX = 20

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = " \t\r\n"
# Characters some mail code splits a header on: any of them in a subject could start a new header.
_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# GSM 03.38 default alphabet (without ESC) and its extension table (each costs two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")


class TemplateError(InvalidInput, ValueError):
    """A template that cannot be used: `path` is the content field, `position` the character offset."""

    code = "invalid_template"

    def __init__(self, message: str, *, path: str, position: int | None = None) -> None:
        where = path if position is None else f"{path}, 位置 / position {position}"
        super().__init__(
            f"模板无效 / invalid template: {message} ({where})",
            details={"path": path, "position": position},
        )
        self.path = path
        self.position = position


@dataclass(frozen=True)
class Placeholder:
    path: tuple[str, ...]
    default: str | None
    position: int

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    field: str
    parts: tuple[str | Placeholder, ...]

    @property
    def variables(self) -> set[str]:
        """The dotted paths the template reads, e.g. {"profile.first_name", "coupon.code"}."""
        return {p.name for p in self.parts if isinstance(p, Placeholder)}

    def render(self, values: Mapping[str, Any], *, escape: Escape = "none") -> str:
        """Substitute every placeholder in one pass; never raises for a parsed template."""
        if escape not in ("none", "html"):
            raise ValueError(f"未知的转义方式 / unknown escape {escape!r}")
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)  # the author's own text (the HTML of an e-mail) is kept as written
                continue
            text = format_value(_lookup(values, part.path))
            if not text:
                text = part.default or ""
            out.append(html.escape(text, quote=True) if escape == "html" else text)
        return "".join(out)


# --- parsing -------------------------------------------------------------------------------


def parse(text: str, *, field: str) -> Template:
    """Parse a template; raises TemplateError (with the field and position) for anything else."""
    if not isinstance(text, str):
        raise TemplateError(
            f"模板必须是文本 / a template must be text, got {type(text).__name__}", path=field
        )
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"模板过长（最多 {MAX_TEMPLATE_CHARS} 个字符）/ the template is longer than "
            f"{MAX_TEMPLATE_CHARS} characters",
            path=field,
        )
    parts: list[str | Placeholder] = []
    pos = count = 0
    while True:
        start = text.find("{{", pos)
        literal = text[pos:] if start < 0 else text[pos:start]
        _check_literal(literal, pos, field)
        if literal:
            parts.append(literal)
        if start < 0:
            break
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError("“{{” 没有对应的 “}}” / '{{' is never closed", path=field, position=start)
        parts.append(_placeholder(text[start + 2 : end], start, field))
        if text.startswith("}", end + 2):
            raise TemplateError(
                "占位符后多了 “}” / a stray '}' after the placeholder", path=field, position=end + 2
            )
        count += 1
        if count > MAX_PLACEHOLDERS:
            raise TemplateError(
                f"占位符过多（最多 {MAX_PLACEHOLDERS} 个）/ more than {MAX_PLACEHOLDERS} placeholders",
                path=field,
                position=start,
            )
        pos = end + 2
    return Template(source=text, field=field, parts=tuple(parts))


def _check_literal(literal: str, offset: int, field: str) -> None:
    stray = literal.find("}}")
    if stray >= 0:
        raise TemplateError(
            "“}}” 没有对应的 “{{” / '}}' without a matching '{{'", path=field, position=offset + stray
        )
    # Jinja/Liquid statements would otherwise be sent to customers as they are.
    statement = literal.find("{%")
    if statement >= 0:
        raise TemplateError(
            "不支持 “{% %}” 语句，只能使用 {{ 变量 }} / statements ('{% %}') are not supported, "
            "only {{ variables }}",
            path=field,
            position=offset + statement,
        )


def _placeholder(inner: str, position: int, field: str) -> Placeholder:
    def bad(zh: str, en: str) -> TemplateError:
        return TemplateError(f"{zh} / {en}", path=field, position=position)

    if "{" in inner or "}" in inner:
        raise bad("占位符中不能有花括号（嵌套或未闭合）", "braces inside a placeholder (nested or unclosed)")
    path_text, bar, filter_text = inner.partition("|")
    path_text = path_text.strip(_SPACE)
    if not path_text:
        raise bad("空的占位符", "empty placeholder")
    path = _path(path_text, bad)
    default = _default(filter_text, bad) if bar else None
    return Placeholder(path=path, default=default, position=position)


def _path(text: str, bad: Callable[[str, str], TemplateError]) -> tuple[str, ...]:
    names = tuple(text.split("."))
    for name in names:
        if not _NAME.fullmatch(name):
            raise bad(
                f"只能使用变量（如 profile.first_name），不支持表达式、调用或下标：{text!r}",
                f"only plain variables such as profile.first_name are allowed "
                f"(no expressions, calls or indexing): {text!r}",
            )
        if name.startswith("_"):
            raise bad(f"名称不能以下划线开头：{name!r}", f"names may not start with '_': {name!r}")
        if len(name) > MAX_NAME_CHARS:
            raise bad(
                f"名称过长（最多 {MAX_NAME_CHARS} 个字符）",
                f"a name is longer than {MAX_NAME_CHARS} characters",
            )
    root = names[0]
    if root not in ROOTS:
        raise bad(
            f"未知的根 {root!r}，可用：{'、'.join(ROOTS)}",
            f"unknown root {root!r} (use one of {', '.join(ROOTS)})",
        )
    if len(names) == 1:
        raise bad(f"{root} 后面需要字段名，如 {root}.name", f"{root} needs a field, e.g. {root}.name")
    if len(names) > MAX_PATH_SEGMENTS:
        raise bad(
            f"路径过深（最多 {MAX_PATH_SEGMENTS} 段）：{text}",
            f"the path is deeper than {MAX_PATH_SEGMENTS} names: {text}",
        )
    fixed = {"coupon": COUPON_FIELDS, "journey": JOURNEY_FIELDS}.get(root)
    if fixed is not None and (len(names) != 2 or names[1] not in fixed):
        allowed = ", ".join(f"{root}.{f}" for f in sorted(fixed))
        raise bad(f"{text} 不存在，可用：{allowed}", f"{text} does not exist (use {allowed})")
    if root == "links" and len(names) != 2:
        raise bad(f"链接只有一层：{text}", f"links are one level deep (links.name): {text}")
    return names


def _default(text: str, bad: Callable[[str, str], TemplateError]) -> str:
    rest = text.lstrip(_SPACE)
    match = _NAME.match(rest)
    name = match.group() if match else rest[:20]
    if name != "default":
        raise bad(
            f"只支持 default 过滤器，不支持 {name!r}", f"only the default filter is supported, not {name!r}"
        )
    rest = rest[len("default") :].lstrip(_SPACE)
    if not rest.startswith(":"):
        raise bad('default 的写法是 default: "文字"', 'write the default as default: "text"')
    rest = rest[1:].lstrip(_SPACE)
    if not rest or rest[0] not in "\"'":
        raise bad(
            '默认值必须是带引号的文字，如 default: "朋友"',
            'the default must be quoted text, e.g. default: "friend"',
        )
    quote, i = rest[0], 1
    chars: list[str] = []
    while i < len(rest):
        char = rest[i]
        if char == "\\":
            following = rest[i + 1 : i + 2]
            if following not in ("\\", '"', "'"):
                raise bad("默认值中只能转义引号和反斜杠", r"only \", \' and \\ may be escaped in a default")
            chars.append(following)
            i += 2
            continue
        if char == quote:
            break
        chars.append(char)
        i += 1
    else:
        raise bad("默认值缺少结束引号", "the default's closing quote is missing")
    if rest[i + 1 :].strip(_SPACE):
        raise bad(
            "默认值之后不能再有内容（只支持一个 default 过滤器）",
            "nothing may follow the default (only one default filter is supported)",
        )
    value = "".join(chars)
    if len(value) > MAX_VALUE_CHARS:
        raise bad(
            f"默认值过长（最多 {MAX_VALUE_CHARS} 个字符）",
            f"the default is longer than {MAX_VALUE_CHARS} characters",
        )
    return value


# --- values --------------------------------------------------------------------------------


def _lookup(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = values
    for name in path:
        # Mappings only: never getattr, so no object's attributes or methods can be reached.
        if not isinstance(current, Mapping):
            return None
        try:
            current = current.get(name)
        except Exception:  # a misbehaving mapping renders as missing rather than failing the send
            return None
    return current


def format_value(value: Any) -> str:
    """The text a value renders as ("" when missing or not plain data), cut to MAX_VALUE_CHARS."""
    text = _format(value, 0)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _format(value: Any, depth: int) -> str:
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass's own __str__ is not called
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value) if abs(value) < 10**100 else ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        # 12.0 -> "12" (prices and counts read as they are written); repr keeps 0.1 as "0.1".
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Decimal):
        # Finite and of a sane size only: 1E-1000000 would otherwise print a million zeros.
        if not value.is_finite() or abs(value.adjusted()) > 100:
            return ""
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset) and depth < 3:
        items = (_format(item, depth + 1) for item in value)
        texts: Iterable[str] = sorted(items) if isinstance(value, set | frozenset) else items
        out: list[str] = []
        size = 0
        for text in texts:
            if text:
                out.append(text)
                size += len(text) + 1
                if size > MAX_VALUE_CHARS:  # enough to fill the cap: the rest would be cut anyway
                    break
        return LIST_SEPARATOR.join(out)
    # Mappings, bytes and other objects are not rendered: no str() of an unknown object.
    return ""


# --- channel content -----------------------------------------------------------------------

CHANNELS = ("email", "sms", "wechat_oa", "mini_program", "wecom", "webhook", "sink")
Slot = tuple[tuple[str | int, ...], str, str, Escape]  # key path, field name, template text, escape


def _slots(channel: str, content: Mapping[str, Any]) -> Iterator[Slot]:
    """The template fields of a channel's content: every string in it, at any depth.

    The message text is where variables matter (email subject / text / html, sms text and
    params, the WeChat data values, wecom text, a webhook body), but a string elsewhere (a
    WeChat `url`, a mini program page) may hold one too and must not go out as "{{ ... }}".
    Only an e-mail's `html` is HTML-escaped.
    """
    if channel not in CHANNELS:
        raise ValueError(f"未知渠道 / unknown channel {channel!r}")
    for key, value in content.items():
        escape: Escape = "html" if channel == "email" and key == "html" else "none"
        yield from _walk(value, (key,), str(key), escape, 0)


def _walk(value: Any, keys: tuple[str | int, ...], name: str, escape: Escape, depth: int) -> Iterator[Slot]:
    if depth > MAX_CONTENT_DEPTH:
        raise TemplateError(
            f"内容嵌套过深（最多 {MAX_CONTENT_DEPTH} 层）/ the content is nested deeper than {MAX_CONTENT_DEPTH}",
            path=name,
        )
    if isinstance(value, str):
        yield keys, name, value, escape
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*keys, key), f"{name}.{key}", escape, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*keys, index), f"{name}[{index}]", escape, depth + 1)


@lru_cache(maxsize=256)
def _parse_cached(text: str, field: str) -> Template:
    # A journey renders the same few templates for every person: parse each once.
    return parse(text, field=field)


def parse_content(channel: str, content: Mapping[str, Any]) -> dict[str, Template]:
    """Parse every template field of a channel's content (to check a journey step when it is saved).

    Returns field name -> Template; `set().union(*(t.variables for t in ...))` is what it reads.
    """
    return {name: _parse_cached(text, name) for _, name, text, _ in _slots(channel, content)}


def render_content(channel: str, content: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `content` with every string rendered (an e-mail's html HTML-escaped).

    email: subject, text, html; sms: text and the params' values (a mapping, or a list for
    Tencent Cloud); wechat_oa / mini_program: the data values, plain or the API's own
    {"thing1": {"value": ...}}; wecom: text; webhook: body, at any depth. Strings anywhere else
    (url, page) are rendered too; a string without "{{" comes out as it was.
    """
    out = _copy(content)
    for keys, name, text, escape in list(_slots(channel, content)):
        rendered = _parse_cached(text, name).render(values, escape=escape)
        target: Any = out
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = rendered
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


# --- length checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthProblem:
    field: str
    length: int
    limit: int
    message: str
    level: Level = "error"  # "error": do not send; "warning": sendable, tell the author


def sms_encoding(text: str) -> Literal["GSM-7", "UCS-2"]:
    """GSM-7 when every character is in the GSM alphabet, else UCS-2 (any Chinese character)."""
    return "GSM-7" if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text) else "UCS-2"


def _sms_units(text: str) -> tuple[list[int], int, int]:
    """The cost of each character, and the single / per-part capacity of the encoding."""
    if sms_encoding(text) == "GSM-7":
        return [2 if c in _GSM_EXTENDED else 1 for c in text], SMS_GSM_SINGLE, SMS_GSM_PART
    # UCS-2 as carriers count it: one unit per UTF-16 code unit (an emoji costs two).
    return [2 if ord(c) > 0xFFFF else 1 for c in text], SMS_UCS2_SINGLE, SMS_UCS2_PART


def sms_length(text: str) -> int:
    """The length carriers count: septets for GSM-7, UTF-16 code units for UCS-2."""
    return sum(_sms_units(text)[0])


def sms_parts(text: str) -> int:
    """How many SMS a text is billed as (0 for no text)."""
    costs, single, part = _sms_units(text)
    if sum(costs) <= single:
        return 1 if costs else 0
    # A long message's parts carry a header; an escape pair or a surrogate pair is never split.
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def sms_full_text(text: str, sign: str | None) -> str:
    """The text as the phone shows it: with 【sign】 in front unless the text already carries one."""
    if not sign or text.startswith("【") or text.rstrip().endswith("】"):
        return text
    return f"【{sign.strip().strip('【】')}】{text}"


def check_lengths(channel: str, rendered: Mapping[str, Any]) -> list[LengthProblem]:
    """What is too long (or unsafe) in a rendered message; empty when it can be sent as it is."""
    if channel == "sms":
        return _check_sms(rendered)
    if channel == "email":
        return _check_email(rendered)
    if channel in ("wechat_oa", "mini_program"):
        return _check_wechat(rendered)
    if channel == "wecom":
        return _check_wecom(rendered)
    return []


def _check_sms(rendered: Mapping[str, Any]) -> list[LengthProblem]:
    text = rendered.get("text")
    if not isinstance(text, str):
        return []
    sign = rendered.get("sign") or rendered.get("sign_name")
    full = sms_full_text(text, sign if isinstance(sign, str) else None)
    length = sms_length(full)
    if length > SMS_MAX_CHARS:
        return [
            LengthProblem(
                "text",
                length,
                SMS_MAX_CHARS,
                f"短信过长：{length} 字（含签名），最多 {SMS_MAX_CHARS} 字 / "
                f"the SMS is {length} characters with the sign, over the limit of {SMS_MAX_CHARS}",
            )
        ]
    parts = sms_parts(full)
    if parts > 1:
        single = SMS_GSM_SINGLE if sms_encoding(full) == "GSM-7" else SMS_UCS2_SINGLE
        return [
            LengthProblem(
                "text",
                length,
                single,
                f"长短信：{length} 字（含签名），按 {parts} 条计费 / "
                f"long SMS: {length} characters with the sign, billed as {parts} messages",
                level="warning",
            )
        ]
    return []


def _check_email(rendered: Mapping[str, Any]) -> list[LengthProblem]:
    subject = rendered.get("subject")
    if not isinstance(subject, str):
        return []
    problems = []
    breaks = sum(1 for c in subject if c in _LINE_BREAKS)
    if breaks:
        # A line break in a header could start a header of the sender's choosing (Bcc: ...).
        problems.append(
            LengthProblem(
                "subject",
                breaks,
                0,
                "邮件主题不能包含换行符 / the e-mail subject must not contain line breaks",
            )
        )
    if len(subject) > EMAIL_SUBJECT_MAX:
        problems.append(
            LengthProblem(
                "subject",
                len(subject),
                EMAIL_SUBJECT_MAX,
                f"邮件主题超过 {EMAIL_SUBJECT_MAX} 个字符，可能被截断 / "
                f"the subject is longer than {EMAIL_SUBJECT_MAX} characters and may be cut off",
                level="warning",
            )
        )
    return problems


def wechat_keyword_type(key: str) -> str:
    """The keyword type of a WeChat data key: "thing1" -> "thing", "character_string2" -> ..."""
    return key.rstrip("0123456789")


def _check_wechat(rendered: Mapping[str, Any]) -> list[LengthProblem]:
    data = rendered.get("data")
    if not isinstance(data, Mapping):
        return []
    problems = []
    for key, item in data.items():
        nested = isinstance(item, Mapping)  # the API's own shape: {"thing1": {"value": "..."}}
        value = item.get("value") if nested else item
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        kind = wechat_keyword_type(key)
        limit = WECHAT_KEYWORD_LIMITS.get(kind)
        if limit is None:
            continue
        if kind == "name" and value.isascii():
            limit = WECHAT_NAME_ASCII_MAX
        if len(value) > limit:
            problems.append(
                LengthProblem(
                    f"data.{key}.value" if nested else f"data.{key}",
                    len(value),
                    limit,
                    f"{key}（{kind}）最多 {limit} 个字符，实际 {len(value)} 个，微信会拒收 / "
                    f"{key} ({kind}) is limited to {limit} characters, got {len(value)}; WeChat refuses it",
                )
            )
    return problems


def _check_wecom(rendered: Mapping[str, Any]) -> list[LengthProblem]:
    text = rendered.get("text")
    if not isinstance(text, str):
        return []
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= WECOM_TEXT_MAX_BYTES:
        return []
    return [
        LengthProblem(
            "text",
            size,
            WECOM_TEXT_MAX_BYTES,
            f"企业微信文本最多 {WECOM_TEXT_MAX_BYTES} 字节（UTF-8），实际 {size} 字节 / "
            f"WeCom text is limited to {WECOM_TEXT_MAX_BYTES} bytes of UTF-8, got {size}",
        )
    ]
