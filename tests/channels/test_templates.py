"""The message template language (`quanyu.channels.templates`): parsing, rendering, channel
content and the per-channel length rules, with property tests that a value is only ever data."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.channels.templates import (
    _GSM_BASIC,
    MAX_VALUE_CHARS,
    ROOTS,
    SMS_MAX_CHARS,
    LengthProblem,
    Template,
    TemplateError,
    check_lengths,
    format_value,
    parse,
    parse_content,
    render_content,
    sms_encoding,
    sms_length,
    sms_parts,
    wechat_keyword_type,
)
from quanyu.errors import InvalidInput

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALUES = {
    "profile": {"first_name": "李雷", "city": "上海", "points": 1200.0, "tags": ["VIP", "咖啡"]},
    "event": {"order": {"id": "O-1", "total": Decimal("88.50")}, "store": "静安店"},
    "coupon": {"code": "A1B2", "value": 20, "expires_at": date(2026, 3, 1)},
    "links": {"unsubscribe_url": "https://q.example/u/1?a=1&b=2", "shop": "https://q.example/s"},
    "journey": {"name": "新客欢迎"},
}


def render(text: str, values: dict[str, Any] | None = None, **kw: Any) -> str:
    return parse(text, field="text").render(VALUES if values is None else values, **kw)


# --- parsing -------------------------------------------------------------------------------


def test_placeholders_and_variables() -> None:
    t = parse(
        '{{ profile.first_name | default: "朋友" }}，您的券 {{coupon.code}} 于 {{ coupon.expires_at }} 到期',
        field="sms.text",
    )
    assert isinstance(t, Template)
    assert t.variables == {"profile.first_name", "coupon.code", "coupon.expires_at"}
    assert t.render(VALUES) == "李雷，您的券 A1B2 于 2026-03-01 到期"
    assert t.render({}) == "朋友，您的券  于  到期"


def test_every_root() -> None:
    text = "{{ profile.city }}|{{ event.order.id }}|{{ coupon.value }}|{{ links.shop }}|{{ journey.name }}"
    assert render(text) == "上海|O-1|20|https://q.example/s|新客欢迎"
    assert set(ROOTS) == {"profile", "event", "coupon", "links", "journey"}


def test_text_without_placeholders_and_single_braces() -> None:
    assert render("") == ""
    assert render("no variables here") == "no variables here"
    # Single braces are text (CSS in an HTML e-mail, JSON in a webhook body).
    css = "<style>p { color: red } a{b:c}</style>{ profile.x }"
    assert render(css) == css


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{{ profile.first_name|default:"朋友" }}', None),
        ("{{ profile.first_name | default: '朋友' }}", None),
        ('{{ profile.first_name | default: "say \\"hi\\" \\\\" }}', None),
        ("{{\n  profile.first_name\n}}", None),
    ],
)
def test_accepted_spellings(text: str, fragment: None) -> None:
    parse(text, field="f")


def test_default_escapes() -> None:
    assert render('{{ profile.nick | default: "say \\"hi\\" \\\\" }}') == 'say "hi" \\'
    assert render("{{ profile.nick | default: 'it\\'s' }}") == "it's"
    assert render('{{ profile.nick | default: "" }}') == ""


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("Hi {{ profile.first_name", 3, "never closed"),
        ("Hi profile.first_name }}", 22, "without a matching"),
        ("{{ profile.a }}}", 15, "stray"),
        ("{{{ profile.a }}}", 0, "braces inside"),
        ("{{ profile.a {{ profile.b }}", 0, "braces inside"),
        ("{{ }}", 0, "empty placeholder"),
        ("{{ user.name }}", 0, "unknown root"),
        ("{{ Profile.name }}", 0, "unknown root"),
        ("{{ profile }}", 0, "needs a field"),
        ("{{ profile.a.b.c.d }}", 0, "deeper than 4"),
        ("ab{{ profile._secret }}", 2, "may not start with '_'"),
        ("{{ profile.__class__ }}", 0, "may not start with '_'"),
        ("{{ _profile.x }}", 0, "may not start with '_'"),
        ("{{ profile.first-name }}", 0, "only plain variables"),
        ("{{ profile.名字 }}", 0, "only plain variables"),
        ("{{ profile.1st }}", 0, "only plain variables"),
        ("{{ 7*7 }}", 0, "only plain variables"),
        ("{{ profile.x + 1 }}", 0, "only plain variables"),
        ("{{ profile.x() }}", 0, "only plain variables"),
        ("{{ profile.items[0] }}", 0, "only plain variables"),
        ("{{ profile['x'] }}", 0, "only plain variables"),
        ("{{ profile..x }}", 0, "only plain variables"),
        ("{{ profile.x | upper }}", 0, "only the default filter"),
        ("{{ profile.x | }}", 0, "only the default filter"),
        ('{{ profile.x | default("a") }}', 0, "default: "),
        ("{{ profile.x | default: a }}", 0, "quoted text"),
        ('{{ profile.x | default: "a }}', 0, "closing quote"),
        ('{{ profile.x | default: "a\\n" }}', 0, "escaped"),
        ('{{ profile.x | default: "a" | default: "b" }}', 0, "nothing may follow"),
        ('{{ profile.x | default: "a" "b" }}', 0, "nothing may follow"),
        ("{% if profile.vip %}VIP{% endif %}", 0, "statements"),
        ("x {%- import os %}", 2, "statements"),
        ("{{ coupon.cod }}", 0, "does not exist"),
        ("{{ coupon.code.x }}", 0, "does not exist"),
        ("{{ journey.id }}", 0, "does not exist"),
        ("{{ links.shop.home }}", 0, "one level deep"),
        ("{{ profile." + "a" * 65 + " }}", 0, "longer than 64"),
    ],
)
def test_refused(text: str, position: int, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(text, field="content.text")
    exc = caught.value
    assert exc.path == "content.text"
    assert exc.position == position
    assert words in str(exc)
    assert str(exc).startswith("模板无效 / invalid template: ")
    # A ValueError for callers of the module, and an InvalidInput (400) for the API.
    assert isinstance(exc, ValueError)
    assert isinstance(exc, InvalidInput)
    assert exc.code == "invalid_template"
    assert exc.details == {"path": "content.text", "position": position}


def test_refused_sizes() -> None:
    with pytest.raises(TemplateError, match="longer than 500"):
        parse('{{ profile.x | default: "' + "a" * 501 + '" }}', field="f")
    with pytest.raises(TemplateError, match="longer than 500000"):
        parse("a" * 500_001, field="f")
    with pytest.raises(TemplateError, match="more than 1000 placeholders"):
        parse("{{ profile.x }}" * 1001, field="f")
    with pytest.raises(TemplateError, match="must be text"):
        parse(42, field="f")  # type: ignore[arg-type]


# --- rendering ------------------------------------------------------------------------------


def test_values_are_never_parsed_again() -> None:
    values = {
        "profile": {
            "a": "{{ coupon.code }}",
            "b": "{% import os %}",
            "c": "${7*7}",
            "d": "<script>x</script>",
        },
        "coupon": {"code": "SECRET"},
    }
    out = render("{{ profile.a }} {{ profile.b }} {{ profile.c }} {{ profile.d }}", values)
    assert out == "{{ coupon.code }} {% import os %} ${7*7} <script>x</script>"
    out = render("<p>{{ profile.d }}</p><a href='{{ profile.a }}'>", values, escape="html")
    assert out == "<p>&lt;script&gt;x&lt;/script&gt;</p><a href='{{ coupon.code }}'>"
    assert render("{{ profile.q }}", {"profile": {"q": "\"'&"}}, escape="html") == "&quot;&#x27;&amp;"


def test_html_escapes_defaults_but_not_the_authors_html() -> None:
    out = render('<b>{{ profile.x | default: "<i>朋友</i>" }}</b>', {}, escape="html")
    assert out == "<b>&lt;i&gt;朋友&lt;/i&gt;</b>"
    with pytest.raises(ValueError, match="unknown escape"):
        render("x", escape="js")


def test_missing_values() -> None:
    t = parse('[{{ profile.x }}][{{ profile.x | default: "d" }}]', field="f")
    missing_x: list[Any] = [None, "", [], {"nested": 1}, object(), b"bytes", float("nan")]
    cases: list[dict[str, Any]] = [{}, {"profile": {}}, {"profile": "not a mapping"}]
    cases += [{"profile": {"x": x}} for x in missing_x]
    for missing in cases:
        assert t.render(missing) == "[][d]", missing
    # A path through something that is not a mapping is missing, never an attribute.
    assert render("{{ profile.x.real }}", {"profile": {"x": 3}}) == ""
    assert render("{{ event.upper }}", {"event": "abc"}) == ""


def test_formatting() -> None:
    cases: list[tuple[Any, str]] = [
        ("文字", "文字"),
        (12, "12"),
        (12.0, "12"),
        (12.5, "12.5"),
        (0.1, "0.1"),
        (-3.0, "-3"),
        (1e21, "1e+21"),
        (Decimal("88.50"), "88.5"),
        (Decimal("100.00"), "100"),
        (Decimal("1E-1000000"), ""),
        (True, "true"),
        (False, "false"),
        (date(2026, 3, 1), "2026-03-01"),
        (datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "2026-03-01T09:30:00+00:00"),
        (["VIP", "咖啡", 3, None, ""], "VIP、咖啡、3"),
        ((1.0, 2.5), "1、2.5"),
        ({"b", "a"}, "a、b"),
        ([["a", "b"], "c"], "a、b、c"),
        (float("inf"), ""),
        (10**200, ""),
    ]
    for value, text in cases:
        assert format_value(value) == text, value
    assert render("{{ profile.points }} {{ profile.tags }}") == "1200 VIP、咖啡"


def test_values_are_capped() -> None:
    long = "长" * 2000
    out = render("{{ profile.bio }}", {"profile": {"bio": long}})
    assert len(out) == MAX_VALUE_CHARS
    assert out.endswith("…")
    assert len(format_value(["x" * 100] * 1000)) == MAX_VALUE_CHARS
    assert len(render("{{ profile.bio }}", {"profile": {"bio": "<" * 1000}}, escape="html")) == 4 * 499 + 1


def test_str_subclass_is_not_asked_for_its_text() -> None:
    class Sneaky(str):
        def __str__(self) -> str:
            raise RuntimeError("called")

    assert render("{{ profile.x }}", {"profile": {"x": Sneaky("plain")}}) == "plain"


# --- channel content -------------------------------------------------------------------------


def test_render_email() -> None:
    content = {
        "subject": "{{ profile.first_name }}，送您 {{ coupon.value }} 元券",
        "text": "退订 {{ links.unsubscribe_url }}",
        "html": '<a href="{{ links.unsubscribe_url }}">退订</a><p>{{ profile.bio }}</p>',
        "from_name": "全域咖啡",
    }
    values = {**VALUES, "profile": {"first_name": "<李雷>", "bio": "<script>alert(1)</script>"}}
    out = render_content("email", content, values)
    assert out == {
        "subject": "<李雷>，送您 20 元券",
        "text": "退订 https://q.example/u/1?a=1&b=2",
        "html": '<a href="https://q.example/u/1?a=1&amp;b=2">退订</a><p>&lt;script&gt;alert(1)&lt;/script&gt;</p>',
        "from_name": "全域咖啡",
    }
    assert content["subject"].startswith("{{")  # the input is not changed


def test_render_sms_params_mapping_and_list() -> None:
    content = {"text": "【全域】{{ coupon.code }}", "sign": "全域", "template_code": "SMS_1",
               "params": {"code": "{{ coupon.code }}", "n": 3}}  # fmt: skip
    assert render_content("sms", content, VALUES) == {
        "text": "【全域】A1B2",
        "sign": "全域",
        "template_code": "SMS_1",
        "params": {"code": "A1B2", "n": 3},
    }
    out = render_content("sms", {"params": ["{{ coupon.code }}", "{{ journey.name }}"]}, VALUES)
    assert out == {"params": ["A1B2", "新客欢迎"]}


def test_render_wechat_both_data_shapes() -> None:
    content = {
        "template_id": "tpl",
        "url": "https://q.example/o/{{ event.order.id }}",
        "data": {
            "thing1": {"value": "{{ event.store }}", "color": "#173177"},
            "amount2": "{{ event.order.total }}",
        },
    }
    out = render_content("wechat_oa", content, VALUES)
    assert out["data"] == {"thing1": {"value": "静安店", "color": "#173177"}, "amount2": "88.5"}
    assert out["url"] == "https://q.example/o/O-1"
    assert render_content("mini_program", content, VALUES)["data"] == out["data"]


def test_render_wecom_webhook_sink() -> None:
    assert render_content("wecom", {"text": "{{ profile.city }}"}, VALUES) == {"text": "上海"}
    body = {"who": "{{ profile.first_name }}", "items": [{"id": "{{ event.order.id }}"}, 1, None], "n": 2.5}
    assert render_content("webhook", {"body": body}, VALUES) == {
        "body": {"who": "李雷", "items": [{"id": "O-1"}, 1, None], "n": 2.5}
    }
    assert render_content("sink", {"note": "{{ journey.name }}"}, VALUES) == {"note": "新客欢迎"}
    with pytest.raises(ValueError, match="unknown channel"):
        render_content("fax", {}, VALUES)


def test_content_errors_name_the_field() -> None:
    with pytest.raises(TemplateError) as caught:
        render_content("webhook", {"body": {"items": [{"x": "{{ profile.__dict__ }}"}]}}, VALUES)
    assert caught.value.path == "body.items[0].x"
    with pytest.raises(TemplateError) as caught:
        parse_content("wechat_oa", {"data": {"thing1": {"value": "{{ oops }}"}}})
    assert caught.value.path == "data.thing1.value"
    deep: Any = "x"
    for _ in range(30):
        deep = {"k": deep}
    with pytest.raises(TemplateError, match="nested deeper"):
        parse_content("webhook", {"body": deep})


def test_parse_content_lists_the_variables() -> None:
    templates = parse_content(
        "email", {"subject": "{{ profile.first_name }}", "html": "{{ links.unsubscribe_url }}"}
    )
    assert set(templates) == {"subject", "html"}
    assert set().union(*(t.variables for t in templates.values())) == {
        "profile.first_name",
        "links.unsubscribe_url",
    }


# --- length checks ----------------------------------------------------------------------------


def test_gsm_alphabet() -> None:
    assert len(_GSM_BASIC) == 127  # 128 codes less ESC
    assert sms_encoding("Hello {world} €5") == "GSM-7"
    assert sms_encoding("Hello 世界") == "UCS-2"
    assert sms_encoding("naïve") == "UCS-2"  # ï is not in GSM-7 (é is)
    assert sms_encoding("été") == "GSM-7"
    assert sms_length("a{b}") == 6  # braces are extension characters: two septets each


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" + "€" * 76, 1),  # 153 septets
        ("a" + "€" * 80, 2),  # 161: the first part holds 1 + 76 * 2 = 153
        ("a" * 152 + "€" * 77, 3),  # 306 septets, but the first € does not fit beside 152 a's
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 69 + "中", 1),  # one Chinese character makes the whole message UCS-2
        ("a" * 70 + "中", 2),
        ("😀" * 35, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, 2),
        ("中" + "😀" * 33 + "中", 1),  # 68 units
        ("中" * 66 + "😀" + "中" * 66, 3),  # 134 units, but the pair is not split across 67
    ],
)
def test_sms_parts(text: str, parts: int) -> None:
    assert sms_parts(text) == parts


def test_sms_sign_counts() -> None:
    text = "中" * 66
    assert check_lengths("sms", {"text": text}) == []
    [problem] = check_lengths("sms", {"text": text, "sign": "全域咖啡"})
    assert problem == LengthProblem("text", 72, 70, problem.message, "warning")
    assert "按 2 条计费" in problem.message and "billed as 2" in problem.message
    # A sign already in the text (or given with its brackets) is counted once.
    assert check_lengths("sms", {"text": "【全域咖啡】" + "中" * 64, "sign": "全域咖啡"}) == []
    assert check_lengths("sms", {"text": "中" * 64, "sign": "【全域咖啡】"}) == []
    assert check_lengths("sms", {"text": "中" * 64, "sign_name": "全域咖啡"}) == []
    assert check_lengths("sms", {"params": {"code": "1234"}}) == []  # provider template: nothing to count


def test_sms_total_limit() -> None:
    assert all(
        p.level == "warning"
        for p in check_lengths("sms", {"text": "中" * (SMS_MAX_CHARS - 4), "sign": "全域"})
    )
    [problem] = check_lengths("sms", {"text": "中" * (SMS_MAX_CHARS - 3), "sign": "全域"})
    assert (problem.field, problem.length, problem.limit, problem.level) == ("text", 501, 500, "error")
    assert problem.message.startswith("短信过长")


def test_email_subject() -> None:
    assert check_lengths("email", {"subject": "你好" * 100, "text": "x" * 100_000}) == []
    [long] = check_lengths("email", {"subject": "x" * 201})
    assert (long.field, long.length, long.limit, long.level) == ("subject", 201, 200, "warning")
    for subject in ["Hi\r\nBcc: a@b.c", "Hi\nX", "Hi\rX", "Hi\u2028X", "Hi\x85X", "Hi\vX"]:
        [problem] = check_lengths("email", {"subject": subject})
        assert (problem.field, problem.level, problem.limit) == ("subject", "error", 0), subject
        assert problem.message.startswith("邮件主题不能包含换行符")
    both = check_lengths("email", {"subject": "x" * 300 + "\n"})
    assert [p.level for p in both] == ["error", "warning"]


def test_subject_injection_from_a_trait_is_caught() -> None:
    rendered = render_content(
        "email", {"subject": "Hi {{ profile.name }}"}, {"profile": {"name": "x\r\nBcc: all@x"}}
    )
    assert [p.level for p in check_lengths("email", rendered)] == ["error"]


@pytest.mark.parametrize(
    ("key", "ok", "too_long"),
    [
        ("thing1", "字" * 20, "字" * 21),
        ("thing12", "a" * 20, "a" * 21),
        ("number2", "1" * 32, "1" * 33),
        ("letter3", "a" * 32, "a" * 33),
        ("symbol4", "%" * 5, "%" * 6),
        ("character_string5", "A1-" * 10 + "xy", "x" * 33),
        ("phone_number6", "+86-138-0000-0000", "+86-138-0000-00000"),
        ("car_number7", "沪A123456", "沪A1234567"),
        ("name8", "欧阳" * 5, "欧阳" * 5 + "子"),
        ("name9", "a" * 20, "a" * 21),  # letters only: 20
        ("phrase10", "已发货啦啦", "已发货啦啦啦"),
    ],
)
def test_wechat_keyword_limits(key: str, ok: str, too_long: str) -> None:
    for channel in ("wechat_oa", "mini_program"):
        assert check_lengths(channel, {"data": {key: ok}}) == []
        assert check_lengths(channel, {"data": {key: {"value": ok}}}) == []
        [problem] = check_lengths(channel, {"data": {key: {"value": too_long}}})
        assert (problem.field, problem.length, problem.level) == (f"data.{key}.value", len(too_long), "error")
        [problem] = check_lengths(channel, {"data": {key: too_long}})
        assert problem.field == f"data.{key}"


def test_wechat_other_keywords_are_not_length_checked() -> None:
    data = {
        "time1": "x" * 100,
        "amount2": "x" * 100,
        "first": "x" * 100,
        "keyword1": "x" * 100,
        "date3": "x" * 100,
    }
    assert check_lengths("wechat_oa", {"data": data}) == []
    assert wechat_keyword_type("thing1") == "thing"
    assert wechat_keyword_type("character_string12") == "character_string"
    assert wechat_keyword_type("phrase") == "phrase"


def test_wecom_bytes() -> None:
    assert check_lengths("wecom", {"text": "a" * 4000}) == []
    assert check_lengths("wecom", {"text": "中" * 1333}) == []  # 3999 bytes
    [problem] = check_lengths("wecom", {"text": "中" * 1334})
    assert (problem.field, problem.length, problem.limit) == ("text", 4002, 4000)
    assert check_lengths("webhook", {"body": {"x": "y" * 10_000}}) == []
    assert check_lengths("sink", {}) == []


# --- properties ------------------------------------------------------------------------------

PAYLOADS = [
    "{{7*7}}", "{{ profile.x }}", "{% for x in y %}", "${{}}", "#{}", "<%= 7*7 %>", "<script>alert(1)</script>",
    "}}{{", "{{", "}}", "${7*7}", "{{ coupon.code }}", "{#", "\\", '"', "'", "&amp;", "\r\n", "\x00", "|", ":",
    "{{ profile.__class__.__mro__ }}", "{{ ''.__class__ }}", "{%", "%}",
]  # fmt: skip
payloads = st.lists(st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=20)), max_size=8).map("".join)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
literal = st.text(max_size=30).filter(lambda s: "{{" not in s and "}}" not in s and "{%" not in s)
defaults = st.text(max_size=20).filter(lambda s: "}" not in s and "{" not in s)


@st.composite
def paths(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(ROOTS))
    if root == "coupon":
        return "coupon." + draw(st.sampled_from(["code", "value", "expires_at"]))
    if root == "journey":
        return "journey.name"
    if root == "links":
        return "links." + draw(names)
    return ".".join([root, *draw(st.lists(names, min_size=1, max_size=3))])


@st.composite
def placeholders(draw: st.DrawFn) -> str:
    path = draw(paths())
    space = draw(st.sampled_from(["", " ", "  ", "\n"]))
    if draw(st.booleans()):
        default = draw(defaults).replace("\\", "\\\\").replace('"', '\\"')
        return f'{{{{{space}{path}{space}|{space}default:{space}"{default}"{space}}}}}'
    return f"{{{{{space}{path}{space}}}}}"


@st.composite
def templates(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(literal, placeholders()), max_size=8))
    text = ""
    for piece in pieces:
        # Keep the pieces apart: "{" + "{{ x }}" or "}}" + "}" would be a different (bad) template.
        if text and (text[-1] in "{}%" or piece[:1] in "{}%"):
            text += " "
        text += piece
    return text


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    payloads,
    st.dates(),
    st.datetimes(),
    st.binary(max_size=5),
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(names, st.text(max_size=5)), inner, max_size=4),
    ),
    max_leaves=20,
)
value_maps = st.dictionaries(st.sampled_from([*ROOTS, "other"]), data, max_size=5)


@FAST
@given(value=payloads, escape=st.sampled_from(["none", "html"]))
def test_a_value_is_inserted_verbatim(value: str, escape: Any) -> None:
    for root, path in [("profile", "x"), ("event", "x"), ("links", "x")]:
        out = parse(f"<<{{{{ {root}.{path} }}}}>>", field="f").render({root: {path: value}}, escape=escape)
        expected = html.escape(value, quote=True) if escape == "html" else value
        assert out == f"<<{expected}>>"


@FAST
@given(value=payloads, fallback=defaults)
def test_a_value_is_inserted_verbatim_in_every_channel(value: str, fallback: str) -> None:
    values = {"profile": {"x": value}}
    quoted = fallback.replace("\\", "\\\\").replace('"', '\\"')
    p = f'{{{{ profile.x | default: "{quoted}" }}}}'
    shown = value or fallback
    content = {"subject": f"S{p}", "text": f"T{p}", "html": f"<p>{p}</p>"}
    assert render_content("email", content, values) == {
        "subject": f"S{shown}",
        "text": f"T{shown}",
        "html": f"<p>{html.escape(shown)}</p>",
    }
    out = render_content("wechat_oa", {"data": {"thing1": {"value": p}}}, values)
    assert out["data"]["thing1"]["value"] == shown
    assert render_content("webhook", {"body": {"a": [p]}}, values) == {"body": {"a": [shown]}}


@FAST
@given(text=templates(), values=value_maps, escape=st.sampled_from(["none", "html"]))
def test_valid_templates_always_render(text: str, values: dict[str, Any], escape: Any) -> None:
    template = parse(text, field="f")
    out = template.render(values, escape=escape)
    assert isinstance(out, str)
    # Literal text is kept; every placeholder adds at most a capped (maybe escaped) value.
    literal_chars = sum(len(p) for p in template.parts if isinstance(p, str))
    placeholders = len(template.parts) - sum(isinstance(p, str) for p in template.parts)
    assert len(out) <= literal_chars + placeholders * MAX_VALUE_CHARS * 6
    assert template.render({}, escape=escape) == template.render({"other": 1}, escape=escape)


@FAST
@given(text=templates())
def test_variables_are_the_placeholders(text: str) -> None:
    template = parse(text, field="f")
    assert all(v.split(".")[0] in ROOTS and 2 <= len(v.split(".")) <= 4 for v in template.variables)
    # Give each variable a marker value (where a shorter path does not already hold one): each
    # marker shows up in the output.
    values: dict[str, Any] = {}
    marked = []
    for name in sorted(template.variables, key=len, reverse=True):
        node: Any = values
        *parents, leaf = name.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                break
        else:
            if leaf not in node:
                node[leaf] = f"<{name}>"
                marked.append(name)
    out = template.render(values)
    assert all(f"<{name}>" in out for name in marked)


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.lists(
            st.one_of(
                st.sampled_from([*PAYLOADS, "{{ ", " }}", "|", "default:", '"', "profile.", "."]),
                st.text(max_size=5),
            ),
            max_size=12,
        ).map("".join),
        templates(),
    )
)
def test_parse_raises_only_template_error(text: str) -> None:
    try:
        template = parse(text, field="f")
    except TemplateError as exc:
        assert exc.path == "f"
        assert exc.position is None or 0 <= exc.position <= len(text)
        return
    template.render({"profile": {"x": text}})


@FAST
@given(text=st.text(max_size=400))
def test_sms_parts_agree_with_length(text: str) -> None:
    parts, length = sms_parts(text), sms_length(text)
    gsm = sms_encoding(text) == "GSM-7"
    single, part = (160, 153) if gsm else (70, 67)
    if not text:
        assert parts == 0
    elif length <= single:
        assert parts == 1
    else:
        # Between the plain division and one more part per pair that could not be split.
        assert -(-length // part) <= parts <= -(-length // (part - 1))
