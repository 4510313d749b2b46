"""Person records made comparable: what probabilistic matching sees of a customer list.

Records from offline forms, POS tills, CRM imports and event sign-ups name the same fields many
ways (`王 伟`, `王伟`, `Ｗａｎｇ Ｗｅｉ`; `1990/1/2`, `19900102`, `1990年1月2日`; `+86 138-0000-1234`,
`138****1234`). Each function here takes one raw text column (a pyarrow array) and returns its
standardised form, columnar, so a million records standardise in seconds; `standardise` applies
them to a table whose columns are mapped to roles. Names are in `person_names`, the normal
forms every field shares in `person_text`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.errors import InvalidInput
from quanyu.identity.person_names import name_columns
from quanyu.identity.person_text import fold_accents, fold_characters, patched, per_distinct, settled, text

# The fields of a customer list that say who someone is, as the dedupe tool and `match` name them.
ROLES = (
    "first_name", "last_name", "full_name", "birth_date", "phone", "email", "address",
    "street_number", "city", "district", "postcode", "region", "national_id",
)  # fmt: skip

_CODE_ROLES = ("street_number", "postcode", "national_id")
_HAN = r"\p{Han}"
_SEPARATORS = r"[\s\-().]"
_MOBILE = r"^1[3-9]\d{9}$"
_MASKED = r"^1[3-9]\d[*xX]{4}\d{4}$"
_REPEATED_DIGIT = "^(" + "|".join(f"{d}+" for d in range(10)) + ")$"
_SEQUENTIAL = pa.array(["0123456789", "1234567890", "123456789", "12345678", "1234567"])
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_PLAIN_EMAIL = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+$"
# Administrative suffixes that one clerk writes and the next leaves out: 上海市 / 上海.
_PLACE_SUFFIX = r"(?:特别行政区|自治区|自治州|自治县|省|市|区|县)$"
# Province, city, district at the start of a Chinese address (no capture group: RE2 finds
# the span eight times faster without one).
_ADMIN_PREFIX = r"^(?:\p{Han}{2,7}?(?:省|自治区))?(?:\p{Han}{2,7}?市)?(?:\p{Han}{2,7}?[区县])?"


def parse_birth_dates(values: pa.Array, *, today: date | None = None) -> pa.Array:
    """Birth dates in the many ways people and exports write them, as ISO `YYYY-MM-DD`.

    Year first is year-month-day (`1990-01-02`, `1990/1/2`, `1990.1.2`, `19900102`,
    `1990年1月2日`, `1990-01-02 00:00:00`). Year last is day-month-year (`02/01/1990`)
    unless the middle number cannot be a month (`12/25/1990` is month-day-year).
    Impossible dates (`1990-02-30`), years before 1900 and future dates become null.
    """
    out = text(values)
    out = pc.replace_substring_regex(out, r"(?:T| ).*$", "")
    out = pc.replace_substring_regex(pc.replace_substring_regex(out, r"[年月./]", "-"), r"[日号]$", "")
    ymd = pc.extract_regex(out, r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")
    compact = pc.extract_regex(out, r"^(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})$")
    year_last = pc.extract_regex(out, r"^(?P<a>\d{1,2})-(?P<b>\d{1,2})-(?P<y>\d{4})$")
    month_first = pc.fill_null(pc.greater(pc.cast(_field(year_last, "b"), pa.int32()), 12), False)
    year = pc.coalesce(_field(ymd, "y"), _field(compact, "y"), _field(year_last, "y"))
    month = pc.coalesce(
        _field(ymd, "m"),
        _field(compact, "m"),
        pc.if_else(month_first, _field(year_last, "a"), _field(year_last, "b")),
    )
    day = pc.coalesce(
        _field(ymd, "d"),
        _field(compact, "d"),
        pc.if_else(month_first, _field(year_last, "b"), _field(year_last, "a")),
    )
    iso = pc.binary_join_element_wise(
        year, pc.utf8_lpad(month, width=2, padding="0"), pc.utf8_lpad(day, width=2, padding="0"), "-"
    )
    parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 1990-02-30 over to March; a date is real only if it prints back the same.
    real = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), iso)
    latest = (today or date.today()).isoformat()
    in_range = pc.and_(pc.greater_equal(iso, "1900-01-01"), pc.less_equal(iso, latest))
    return pc.if_else(pc.fill_null(pc.and_(real, in_range), False), iso, pa.scalar(None, pa.string()))


def _field(struct: pa.Array, name: str) -> pa.Array:
    return pc.if_else(pc.is_valid(struct), pc.struct_field(struct, name), pa.scalar(None, pa.string()))


def standardise_phones(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(phone, prefix3, last4) of phone numbers.

    Mainland mobiles become their 11 digits (`+86 138-0000-1234` → `13800001234`); other
    numbers of 7 to 15 digits keep their digits. A platform mask (`138****1234`) is no phone
    but keeps its first three and last four digits as partial evidence, comparable with a full
    number's. Repeated and sequential digits are junk.
    """
    values = values.cast(pa.string())
    mobile = pc.fill_null(pc.match_substring_regex(values, _MOBILE), False)
    head, tail = pc.utf8_slice_codeunits(values, 0, 3), pc.utf8_slice_codeunits(values, -4)
    clean = (values, head, tail)
    # Most values already are 11 bare digits; only the rest go through the whole cleaning.
    return patched(clean, pc.invert(mobile), values, _messy_phones)


def _messy_phones(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    out = pc.replace_substring_regex(text(values), _SEPARATORS, "")
    out = pc.replace_substring_regex(out, r"^(?:\+|00)?86(1[3-9]\d(?:\d{4}|[*xX]{4})\d{4})$", r"\1")
    mobile = pc.match_substring_regex(out, _MOBILE)
    masked = pc.match_substring_regex(out, _MASKED)
    digits = pc.replace_substring_regex(out, r"^(?:\+|00)", "")
    other = pc.match_substring_regex(digits, r"^\d{7,15}$")
    junk = pc.or_(pc.match_substring_regex(digits, _REPEATED_DIGIT), pc.is_in(digits, value_set=_SEQUENTIAL))
    null = pa.scalar(None, pa.string())
    phone = pc.if_else(pc.fill_null(pc.and_(pc.or_(mobile, other), pc.invert(junk)), False), digits, null)
    partial = pc.fill_null(pc.or_(pc.is_valid(phone), masked), False)
    mainland = pc.fill_null(pc.or_(pc.and_(mobile, pc.is_valid(phone)), masked), False)
    prefix3 = pc.if_else(mainland, pc.utf8_slice_codeunits(digits, 0, 3), null)
    last4 = pc.if_else(partial, pc.utf8_slice_codeunits(digits, -4), null)
    return phone, prefix3, last4


def standardise_emails(values: pa.Array) -> pa.Array:
    """Case-folded addresses of a plausible shape; anything else is null."""
    values = values.cast(pa.string())
    clean = pc.fill_null(pc.match_substring_regex(values, _PLAIN_EMAIL), False)
    return patched((values,), pc.invert(clean), values, lambda v: (_messy_emails(v),))[0]


def _messy_emails(values: pa.Array) -> pa.Array:
    out = pc.utf8_lower(pc.replace_substring_regex(text(values), r"\s", ""))
    ok = pc.fill_null(pc.match_substring_regex(out, _EMAIL), False)
    return pc.if_else(ok, out, pa.scalar(None, pa.string()))


def clean_places(values: pa.Array) -> pa.Array:
    """City, district, region: folded, without the administrative suffix (上海市 → 上海)."""
    out = fold_accents(text(values))
    out = pc.if_else(
        pc.match_substring_regex(out, r"^\p{Han}{2,}"),
        pc.replace_substring_regex(pc.replace_substring_regex(out, r"\s", ""), _PLACE_SUFFIX, ""),
        out,
    )
    return settled(out)


def clean_addresses(values: pa.Array) -> pa.Array:
    """Addresses: Chinese ones without spaces, punctuation or the province, city and district
    they start with (上海市浦东新区张江路100号 → 张江路100号), which one clerk writes out and
    the next leaves to the city and district fields; 省/市/区/县 dropped inside too. Others
    folded, punctuation as spaces."""
    out = text(values)
    chinese = pc.fill_null(pc.match_substring_regex(out, _HAN), False)
    out = patched((out,), chinese, out, lambda v: (_chinese_addresses(v),))[0]
    out = patched((out,), pc.invert(chinese), out, lambda v: (_other_addresses(v),))[0]
    return settled(out)


def _chinese_addresses(values: pa.Array) -> pa.Array:
    out = pc.replace_substring_regex(values, r"[\s\p{P}\p{M}]", "")
    return pc.replace_substring_regex(pc.replace_substring_regex(out, _ADMIN_PREFIX, ""), "[省市区县]", "")


def _other_addresses(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(fold_accents(values), r"[\p{P}]", " ")


def clean_codes(values: pa.Array) -> pa.Array:
    """Postcodes, street numbers, national ids: letters and digits only, upper case."""
    out = pc.replace_substring_regex(pc.utf8_upper(text(values)), r"^(?:NO\.?|№|#)", "")
    out = pc.replace_substring_regex(out, r"[^\p{L}\p{N}]", "")
    return settled(pc.replace_substring_regex(out, r"号$", ""))


def _address_columns(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    address = clean_addresses(values)
    return address, fold_characters(address)


def standardise(table: pa.Table, roles: Mapping[str, str], id_column: str) -> pa.Table:
    """The standardised person table: `unique_id` (row number), then one or more columns per role.

    `roles` maps a role (see `ROLES`) to a column of `table`. Columns are only produced for the
    roles given; a name role produces `surname`, `given_name`, `name_key`, `name_fz`.
    """
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(
            f"未知角色 / unknown role: {', '.join(unknown)} (known: {', '.join(ROLES)})", code="unknown_role"
        )
    missing = sorted({c for c in roles.values() if c not in table.column_names})
    if missing:
        raise InvalidInput(f"缺少列 / missing column: {', '.join(missing)}", code="missing_column")
    n = table.num_rows

    def col(role: str) -> pa.Array:
        return _as_text(table.column(roles[role]))

    def names() -> dict[str, pa.Array]:
        first, last, full = (col(r) if r in roles else None for r in ("first_name", "last_name", "full_name"))
        return name_columns(first, last, full, n)

    def birth_date() -> dict[str, pa.Array]:
        return {"birth_date": per_distinct(parse_birth_dates, col("birth_date"))}

    def phone() -> dict[str, pa.Array]:
        return dict(
            zip(("phone", "phone_prefix3", "phone_last4"), standardise_phones(col("phone")), strict=True)
        )

    def email() -> dict[str, pa.Array]:
        return {"email": standardise_emails(col("email"))}

    def address() -> dict[str, pa.Array]:
        return dict(
            zip(("address", "address_fz"), per_distinct(_address_columns, col("address")), strict=True)
        )

    def places() -> dict[str, pa.Array]:
        out = {r: per_distinct(clean_places, col(r)) for r in ("city", "district", "region") if r in roles}
        return out | {r: per_distinct(clean_codes, col(r)) for r in _CODE_ROLES if r in roles}

    tasks = [names] if {"first_name", "last_name", "full_name"} & set(roles) else []
    tasks += [task for task in (birth_date, phone, email, address) if task.__name__ in roles]
    tasks.append(places)
    # pyarrow's kernels release the GIL: the roles standardise side by side on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(lambda task: task(), tasks))
    columns = {"unique_id": pa.array(np.arange(n, dtype=np.int64))}
    for part in parts:
        columns |= part
    return pa.table(columns)


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.string())
