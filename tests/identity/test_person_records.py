"""Standardising person records before matching: names, dates, phones, places, folding."""

from __future__ import annotations

import unicodedata
from datetime import date

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.errors import InvalidInput
from quanyu.identity import person_names
from quanyu.identity import person_records as pr
from quanyu.identity import person_text as texts
from quanyu.identity.identifiers import normalise_phone


def one(fn, value):  # type: ignore[no-untyped-def]
    out = fn(pa.array([value], pa.string()))
    return tuple(o[0].as_py() for o in out) if isinstance(out, tuple) else out[0].as_py()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("王 伟", "王伟"),
        ("Ｗａｎｇ　Ｗｅｉ", "wang wei"),
        ("José  ÁLVAREZ", "jose alvarez"),
        ("阿沛·阿旺晋美", "阿沛阿旺晋美"),
        ("O'Brien-Smith", "o'brien-smith"),
        ("  ", None),
        ("未知", None),
        ("Unknown", None),
    ],
)
def test_clean_names(raw: str, clean: str | None) -> None:
    assert one(person_names.clean_names, raw) == clean


@pytest.mark.parametrize(
    ("full", "surname", "given"),
    [
        ("王伟", "王", "伟"),
        ("王 秀英", "王", "秀英"),
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("诸葛亮", "诸葛", "亮"),
        ("阿沛·阿旺晋美", None, "阿沛阿旺晋美"),
        ("John Smith", "smith", "john"),
        ("Mary Ann Smith", "smith", "mary ann"),
        ("Smith, John", "smith", "john"),
        ("Madonna", None, "madonna"),
        (None, None, None),
    ],
)
def test_split_full_names(full: str | None, surname: str | None, given: str | None) -> None:
    assert one(person_names.split_full_names, full) == (surname, given)


_GIVEN_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华建国红玲斌浩宇"


_SURNAMES = sorted(person_names.COMPOUND_SURNAMES) + list("王李张刘陈杨黄赵吴周")
_NAMES = st.tuples(st.sampled_from(_SURNAMES), st.text(alphabet=_GIVEN_CHARS, min_size=1, max_size=2))


@settings(max_examples=25)
@given(st.lists(_NAMES, min_size=1, max_size=20))
def test_chinese_full_names_split_back_into_their_parts(names: list[tuple[str, str]]) -> None:
    surnames, given_names = person_names.split_full_names(pa.array([s + g for s, g in names]))
    assert list(zip(surnames.to_pylist(), given_names.to_pylist(), strict=True)) == names


@settings(max_examples=25)
@given(st.lists(st.text(max_size=30), max_size=20))
def test_cleaning_twice_changes_nothing(raw: list[str]) -> None:
    for clean in (person_names.clean_names, pr.clean_addresses, pr.clean_places, pr.clean_codes):
        once = clean(pa.array(raw, pa.string()))
        assert clean(once).equals(once), clean.__name__


FORMATS = [
    lambda d: d.isoformat(),
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    lambda d: d.strftime("%Y%m%d"),
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d.isoformat()} 00:00:00",
    lambda d: f"{d.isoformat()}T08:30:00",
    lambda d: unicodedata.normalize("NFKC", d.isoformat()).translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789-"}
    ),
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
]


@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)), fmt=st.sampled_from(FORMATS))
def test_birth_dates_in_any_supported_format_come_back_as_iso(day: date, fmt) -> None:  # type: ignore[no-untyped-def]
    if fmt is FORMATS[-1] and day.day <= 12 and day.day != day.month:
        return  # 05/03/1990 is day-first by rule; checked below
    assert one(pr.parse_birth_dates, fmt(day)) == day.isoformat()


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("02/01/1990", "1990-01-02"),  # day first
        ("12/25/1990", "1990-12-25"),  # 25 cannot be a month: month first
        ("1990-02-30", None),
        ("1899-12-31", None),
        ("2999-01-01", None),
        ("19901301", None),
        ("not a date", None),
        ("", None),
    ],
)
def test_birth_date_edge_cases(raw: str, iso: str | None) -> None:
    assert one(pr.parse_birth_dates, raw) == iso


_FORMATTERS = [
    lambda n: n,
    lambda n: f"+86 {n[:3]} {n[3:7]} {n[7:]}",
    lambda n: f"{n[:3]}-{n[3:7]}-{n[7:]}",
    lambda n: f"0086{n}",
    lambda n: f"({n[:3]}) {n[3:]}",
    lambda n: n.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
]


@given(
    number=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),  # \d would allow any script's digits
    fmt=st.sampled_from(_FORMATTERS),
)
def test_mobiles_agree_with_the_identifier_normaliser(number: str, fmt) -> None:  # type: ignore[no-untyped-def]
    written = fmt(number)
    expected = normalise_phone(written)
    phone, prefix3, last4 = one(pr.standardise_phones, written)
    assert phone == expected == number
    assert (prefix3, last4) == (number[:3], number[-4:])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("138****1234", (None, "138", "1234")),
        ("+86 138XXXX1234", (None, "138", "1234")),
        ("021-6234 5678", ("02162345678", None, "5678")),
        ("11111111111", (None, None, None)),
        ("12345678", (None, None, None)),
        ("null", (None, None, None)),
        ("abc", (None, None, None)),
    ],
)
def test_masked_landline_and_junk_phones(raw: str, expected: tuple[str | None, ...]) -> None:
    assert one(pr.standardise_phones, raw) == expected


def test_phones_clean_and_messy_in_one_column_keep_their_rows() -> None:
    phones, _, last4 = pr.standardise_phones(
        pa.array(["13800001234", "138****5678", None, "+86 139 0000 1111"])
    )
    assert phones.to_pylist() == ["13800001234", None, None, "13900001111"]
    assert last4.to_pylist() == ["1234", "5678", None, "1111"]


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("Wang.Wei@QQ.com ", "wang.wei@qq.com"),
        ("ｗａｎｇ＠１６３．ｃｏｍ", "wang@163.com"),
        ("not-an-email", None),
    ],
)
def test_emails(raw: str, email: str | None) -> None:
    assert one(pr.standardise_emails, raw) == email


@pytest.mark.parametrize(
    ("fn", "raw", "clean"),
    [
        (pr.clean_places, "上海市", "上海"),
        (pr.clean_places, "内蒙古自治区", "内蒙古"),
        (pr.clean_places, "  London ", "london"),
        (pr.clean_addresses, "上海市 浦东新区张江路100号", "张江路100号"),
        (pr.clean_addresses, "广东省深圳市南山区科技园1号", "科技园1号"),
        (pr.clean_addresses, "12 High St., London", "12 high st london"),
        (pr.clean_codes, "200 120", "200120"),
        (pr.clean_codes, "sw1a 1aa", "SW1A1AA"),
        (pr.clean_codes, "11010519491231002x", "11010519491231002X"),
    ],
)
def test_places_addresses_and_codes(fn, raw: str, clean: str) -> None:  # type: ignore[no-untyped-def]
    assert one(fn, raw) == clean


@settings(max_examples=50)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=8))
def test_folding_gives_one_byte_per_character(values: list[str | None]) -> None:
    folded = texts.fold_characters(pa.array(values, pa.string())).to_pylist()
    for raw, out in zip(values, folded, strict=True):
        if raw is None:
            assert out is None
        else:
            assert len(out.encode()) == len(raw)
            assert all(a == b for a, b in zip(raw, out, strict=True) if a.isascii())


def test_folded_chinese_names_are_one_edit_apart_in_duckdb() -> None:
    folded = texts.fold_characters(pa.array(["王伟", "王玮"])).to_pylist()
    distance = duckdb.sql("SELECT levenshtein($1, $2)", params=folded).fetchone()
    assert distance == (1,)


def test_name_columns_split_a_full_name_typed_into_one_field() -> None:
    out = person_names.name_columns(
        pa.array([None, "伟", "John"]), pa.array(["王伟", "王", "Smith"]), None, 3
    )
    assert out["surname"].to_pylist() == ["王", "王", "smith"]
    assert out["given_name"].to_pylist() == ["伟", "伟", "john"]
    assert out["name_key"].to_pylist()[0] == out["name_key"].to_pylist()[1]


def test_swapped_names_share_a_name_key() -> None:
    out = person_names.name_columns(pa.array(["John", "Smith"]), pa.array(["Smith", "John"]), None, 2)
    assert out["name_key"].to_pylist() == ["john smith", "john smith"]


def test_standardise_refuses_unknown_roles_and_missing_columns() -> None:
    table = pa.table({"id": ["1"], "name": ["王伟"]})
    with pytest.raises(InvalidInput, match="unknown role"):
        pr.standardise(table, {"nickname": "name"}, "id")
    with pytest.raises(InvalidInput, match="missing column"):
        pr.standardise(table, {"phone": "mobile"}, "id")


def test_standardise_makes_the_columns_of_the_roles_given() -> None:
    table = pa.table({"id": ["1"], "name": ["王伟"], "tel": ["138****1234"], "city": ["上海市"]})
    out = pr.standardise(table, {"full_name": "name", "phone": "tel", "city": "city"}, "id")
    assert out.column_names == ["unique_id", "surname", "given_name", "name_key", "name_fz", "phone",
                                "phone_prefix3", "phone_last4", "city"]  # fmt: skip
    assert out.column("city").to_pylist() == ["上海"]
