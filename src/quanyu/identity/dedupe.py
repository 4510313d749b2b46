"""Deduplicating any customer list: a CSV in, `record_id,cluster_id` out.

The file may come from Excel (UTF-8 with a BOM, or GBK/GB18030 for a Chinese Excel export) or
anything else that writes CSV. Its columns are mapped to matching roles by their header, in
English or Chinese (`手机号` → phone, `出生日期` → birth_date), case, spaces and underscores
ignored; `overrides` (`--column ROLE=NAME`) win over the guesses. Every value is read as text,
so ids keep their leading zeros.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from quanyu.errors import InvalidInput
from quanyu.identity.matching import DEFAULT_THRESHOLD, MatchResult, match
from quanyu.identity.matching import STAGES as MATCH_STAGES
from quanyu.identity.person_records import ROLES

STAGES = ("reading", *MATCH_STAGES, "writing")

# Header names that mean a role, compared after `header_key` (case, spaces, _ and - ignored).
ROLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstname", "first", "given_name", "forename", "名", "名字"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name", "姓", "姓氏"),
    "full_name": ("full_name", "name", "customer_name", "member_name", "contact_name", "姓名", "客户姓名",
                  "会员姓名", "联系人", "收货人", "顾客姓名"),
    "birth_date": ("birth_date", "birthdate", "birthday", "date_of_birth", "dob", "生日", "出生日期",
                   "出生年月日", "出生年月"),
    "phone": ("phone", "mobile", "cell", "telephone", "tel", "phone_number", "mobile_phone", "手机", "手机号",
              "手机号码", "电话", "电话号码", "联系电话", "联系方式"),
    "email": ("email", "e_mail", "mail", "email_address", "邮箱", "电子邮箱", "电子邮件", "邮件"),
    "address": ("address", "address_1", "street", "street_address", "地址", "详细地址", "收货地址", "住址",
                "家庭住址", "联系地址"),
    "street_number": ("street_number", "house_number", "门牌号"),
    "city": ("city", "town", "suburb", "城市", "市", "所在城市"),
    "district": ("district", "county", "区", "区县", "县区", "所在区县"),
    "postcode": ("postcode", "zip", "zipcode", "zip_code", "postal_code", "post_code", "邮编", "邮政编码"),
    "region": ("region", "province", "state", "省", "省份", "所在省份"),
    "national_id": ("national_id", "id_card", "id_number", "ssn", "soc_sec_id", "身份证", "身份证号",
                    "身份证号码", "证件号码"),
}  # fmt: skip


def header_key(name: str) -> str:
    """A header as compared with the synonyms: `Phone Number`, `phone_number`, `PHONE-NUMBER` agree."""
    return re.sub(r"[\s_\-]+", "", name.strip().casefold())


_SYNONYM_ROLE = {header_key(s): role for role, names in ROLE_SYNONYMS.items() for s in names}


@dataclass(frozen=True)
class DedupeSummary:
    records: int
    clusters: int
    pairs: int
    roles: dict[str, str]
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {"records": self.records, "clusters": self.clusters, "pairs_above_threshold": self.pairs,
                "roles": self.roles, "seconds": self.seconds}  # fmt: skip


def dedupe_csv(
    source: Path,
    output: Path,
    id_column: str,
    threshold: float = DEFAULT_THRESHOLD,
    overrides: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DedupeSummary:
    """Cluster the rows of `source` into people and write `record_id,cluster_id` to `output`."""
    started = time.perf_counter()
    report = progress or (lambda stage: None)
    report("reading")
    records = read_customer_csv(source)
    if id_column not in records.column_names:
        raise InvalidInput(
            f"缺少 ID 列 / missing id column: {id_column} (columns: {', '.join(records.column_names)})",
            code="missing_id_column",
        )
    roles = map_roles(records.column_names, overrides or {}, id_column)
    if not roles:
        raise InvalidInput(
            "没有可用于匹配的列 / no usable matching column: name one with --column ROLE=NAME "
            f"(roles: {', '.join(ROLES)})",
            code="no_matching_columns",
        )
    result = match(records, roles, threshold, id_column=id_column, progress=report)
    report("writing")
    write_clusters(result, output)
    return DedupeSummary(
        records=result.records,
        clusters=result.cluster_count,
        pairs=result.pairs.num_rows,
        roles=roles,
        seconds=round(time.perf_counter() - started, 2),
    )


def read_customer_csv(path: Path) -> pa.Table:
    """Every column of a CSV as text (empty cells are null), whatever Excel encoded it as."""
    if not path.is_file():
        raise InvalidInput(f"文件不存在 / file not found: {path}", code="file_not_found")
    data = as_utf8(path.read_bytes())
    if not data.strip():
        raise InvalidInput(f"文件为空 / empty file: {path}", code="empty_file")
    first_line = data.split(b"\n", 1)[0].decode("utf-8")
    header = next(csv.reader([first_line]), [])
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise InvalidInput(f"列名重复 / duplicate column name: {', '.join(duplicated)}", code="bad_csv")
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), null_values=[""], strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"CSV 无法解析 / cannot parse CSV {path}: {exc}", code="bad_csv") from None


def as_utf8(raw: bytes) -> bytes:
    """The bytes of a file as UTF-8 without a BOM: as they are when they already are UTF-8,
    else read as GB18030, the superset of GBK that Excel in China writes."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030").encode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("无法识别文件编码 / unknown encoding: not UTF-8 or GBK", code="bad_csv") from None


def map_roles(columns: Iterable[str], overrides: Mapping[str, str], id_column: str) -> dict[str, str]:
    """Role → column: guessed from the headers, then `overrides` (role → column) applied."""
    columns = list(columns)
    unknown = sorted(set(overrides) - set(ROLES))
    if unknown:
        raise InvalidInput(
            f"未知角色 / unknown role: {', '.join(unknown)} (roles: {', '.join(ROLES)})", code="unknown_role"
        )
    missing = sorted({c for c in overrides.values() if c not in columns})
    if missing:
        raise InvalidInput(
            f"缺少列 / missing column: {', '.join(missing)} (columns: {', '.join(columns)})",
            code="missing_column",
        )
    taken = set(overrides.values()) | {id_column}
    roles: dict[str, str] = {}
    for column in columns:
        role = _SYNONYM_ROLE.get(header_key(column))
        if role and role not in roles and role not in overrides and column not in taken:
            roles[role] = column
    return {**roles, **overrides}


def parse_overrides(values: Iterable[str]) -> dict[str, str]:
    """`ROLE=NAME` strings as a dict; the name may itself contain `=`."""
    out: dict[str, str] = {}
    for value in values:
        role, sep, name = value.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise InvalidInput(f"--column 需要 ROLE=NAME / --column expects ROLE=NAME, got {value!r}")
        out[role.strip()] = name.strip()
    return out


def write_clusters(result: MatchResult, output: Path) -> None:
    clusters = result.clusters
    table = pa.table(
        {
            "record_id": clusters.column("record_id").cast(pa.string()),
            "cluster_id": clusters.column("cluster_id").cast(pa.string()),
        }
    )
    # Quote nothing unless an id needs it: pyarrow's "needed" still quotes every string.
    special = pc.any(pc.match_substring_regex(table.column("record_id"), r'[",\r\n]')).as_py()
    output.parent.mkdir(parents=True, exist_ok=True)
    quoting = "needed" if special else "none"
    options = pacsv.WriteOptions(quoting_style=quoting, quoting_header=quoting)
    pacsv.write_csv(table, output, write_options=options)
