"""`quanyu identity dedupe`: reading customer lists, mapping columns, the command's errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quanyu.cli.main import app
from quanyu.errors import InvalidInput
from quanyu.identity.dedupe import as_utf8, header_key, map_roles, parse_overrides, read_customer_csv

runner = CliRunner()

ROWS = [
    ("客户编号", "姓名", "手机号", "出生日期", "城市"),
    ("007", "王伟", "13800001234", "1990-01-02", "上海市"),
    ("008", "王 伟", "138****1234", "1990/1/2", "上海"),
    ("009", "李娜", "13900005678", "1985-03-04", "北京"),
    ("010", "Zhang San", "+86 137 0000 9999", "1979-12-31", "杭州"),
    ("011", "李 娜", "139-0000-5678", "19850304", "北京市"),
]


def write_csv(path: Path, rows: list[tuple[str, ...]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def dedupe(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["identity", "dedupe", *args])


def test_dedupe_writes_a_cluster_for_every_row(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "客户.csv", ROWS, encoding="utf-8-sig")
    out = tmp_path / "out" / "clusters.csv"
    result = dedupe(str(source), "--id-column", "客户编号", "--output", str(out))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as f:
        written = list(csv.reader(f))
    assert written == [
        ["record_id", "cluster_id"],
        ["007", "007"],
        ["008", "007"],
        ["009", "009"],
        ["010", "010"],
        ["011", "009"],
    ]
    assert "去重完成" in result.stdout
    assert out.read_text(encoding="utf-8").startswith("record_id,cluster_id\n007,007\n")


def test_ids_that_need_quotes_are_quoted(tmp_path: Path) -> None:
    rows = [("id", "姓名"), ("a,1", "王伟"), ("b", "王伟")]
    out = tmp_path / "clusters.csv"
    result = dedupe(str(write_csv(tmp_path / "l.csv", rows)), "--id-column", "id", "-o", str(out))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["record_id", "cluster_id"], ["a,1", "a,1"], ["b", "a,1"]]


def test_dedupe_json_summary_and_gbk_input(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "gbk.csv", ROWS, encoding="gbk")
    out = tmp_path / "clusters.csv"
    result = dedupe(str(source), "--id-column", "客户编号", "-o", str(out), "--threshold", "0.9", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 5 and summary["clusters"] == 3 and summary["pairs_above_threshold"] == 2
    assert summary["roles"] == {
        "full_name": "姓名",
        "phone": "手机号",
        "birth_date": "出生日期",
        "city": "城市",
    }
    assert result.stderr == ""


def test_column_overrides_map_unrecognised_headers(tmp_path: Path) -> None:
    rows = [("id", "who", "tel"), *[(r[0], r[1], r[2]) for r in ROWS[1:]]]
    source = write_csv(tmp_path / "list.csv", rows)
    out = tmp_path / "clusters.csv"
    result = dedupe(str(source), "--id-column", "id", "-o", str(out), "--column", "full_name=who",
                    "--column", "phone=tel", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roles"] == {"full_name": "who", "phone": "tel"}


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", [], "文件不存在 / file not found"),
        ("empty", [], "文件为空 / empty file"),
        ("list", ["--id-column", "编号"], "missing id column: 编号"),
        ("dup", [], "duplicate id: '007'"),
        ("unmapped", ["--id-column", "a"], "no usable matching column"),
        ("list", ["--column", "nickname=姓名"], "unknown role: nickname"),
        ("list", ["--column", "phone=mobile"], "missing column: mobile"),
        ("list", ["--column", "phone"], "--column expects ROLE=NAME"),
        ("list", ["--threshold", "1.5"], "between 0 and 1"),
        ("list", ["--threshold", "0"], "between 0 and 1"),
        ("list", ["--threshold", "abc"], "between 0 and 1"),
        ("ragged", [], "cannot parse CSV"),
    ],
)
def test_bad_input_gives_a_readable_error_and_exit_code_1(
    tmp_path: Path, setup: str, args: list[str], message: str
) -> None:
    source = tmp_path / "list.csv"
    if setup == "list":
        write_csv(source, ROWS)
    elif setup == "empty":
        source.write_bytes(b"\xef\xbb\xbf\n")
    elif setup == "dup":
        write_csv(source, [*ROWS, ROWS[1]])
    elif setup == "unmapped":
        write_csv(source, [("a", "b"), ("1", "x"), ("2", "y")])
    elif setup == "ragged":
        source.write_text('客户编号,姓名\n1,王伟\n2,"李娜",x,y\n', encoding="utf-8")
    base = [str(source), "--id-column", "客户编号", "-o", str(tmp_path / "out.csv")]
    result = dedupe(*base, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not (tmp_path / "out.csv").exists()
    as_json = dedupe(*base, *args, "--json")
    assert as_json.exit_code == 1 and as_json.stdout == ""
    error = json.loads(as_json.stderr)
    assert message in error["message"] and error["code"]


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("手机号", "phone"), ("Phone Number", "phone"), ("MOBILE", "phone"), ("联系电话", "phone"),
        ("姓名", "full_name"), ("Name", "full_name"), ("姓", "last_name"), ("名", "first_name"),
        ("First_Name", "first_name"), ("surname", "last_name"), ("生日", "birth_date"), ("DOB", "birth_date"),
        ("出生日期", "birth_date"), ("邮箱", "email"), ("E-Mail", "email"), ("地址", "address"),
        ("城市", "city"), ("区县", "district"), ("邮编", "postcode"), ("Zip Code", "postcode"),
        ("省份", "region"), ("身份证号", "national_id"), ("soc_sec_id", "national_id"),
    ],
)  # fmt: skip
def test_headers_map_to_roles_in_english_and_chinese(header: str, role: str) -> None:
    assert map_roles(["id", header], {}, "id") == {role: header}


def test_mapping_rules() -> None:
    assert header_key(" Phone_Number ") == header_key("phone number") == "phonenumber"
    # the id column is never a matching column; the first of two phone columns wins; overrides win
    assert map_roles(["name", "手机", "电话"], {}, "name") == {"phone": "手机"}
    assert map_roles(["姓名", "手机", "备用"], {"phone": "备用"}, "id") == {
        "full_name": "姓名",
        "phone": "备用",
    }
    assert parse_overrides(["phone = 手机", "address=a=b"]) == {"phone": "手机", "address": "a=b"}
    with pytest.raises(InvalidInput, match="unknown role"):
        map_roles(["a"], {"nickname": "a"}, "id")


def test_decoding_utf8_bom_and_gbk() -> None:
    text = "客户编号,姓名\n1,王伟\n".encode()
    assert as_utf8(b"\xef\xbb\xbf" + text) == text
    assert as_utf8(text.decode().encode("gbk")) == text
    assert as_utf8(text.decode().encode("gb18030")) == text
    with pytest.raises(InvalidInput, match="unknown encoding"):
        as_utf8(b"\xff\xfe\x00\x81\x30")


def test_values_are_read_as_text(tmp_path: Path) -> None:
    table = read_customer_csv(
        write_csv(tmp_path / "l.csv", [("id", "phone"), ("007", "13800001234"), ("008", "")])
    )
    assert table.column("id").to_pylist() == ["007", "008"]
    assert table.column("phone").to_pylist() == ["13800001234", None]
