"""Person records made comparable: what probabilistic matching sees of a customer list.

Records from offline forms, POS tills, CRM imports and event sign-ups name the same fields many
ways (`王 伟`, `王伟`, `Ｗａｎｇ Ｗｅｉ`; `1990/1/2`, `19900102`, `1990年1月2日`; `+86 138-0000-1234`,
`138****1234`). Each function here takes one raw text column (a pyarrow array) and returns its
standardised form, columnar, so a million records standardise in seconds; `standardise` applies
them to a table whose columns are mapped to roles.

Fuzzy comparisons run in DuckDB, whose edit distances count bytes: `levenshtein('王伟', '王玮')`
is 3. `fold_characters` therefore gives every fuzzy-compared column a twin holding one byte per
character, so a one-character typo in a Chinese name is one edit, as in a Latin one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.errors import InvalidInput
from quanyu.identity.identifiers import JUNK_VALUES

# The fields of a customer list that say who someone is, as the dedupe tool and `match` name them.
ROLES = (
    "first_name", "last_name", "full_name", "birth_date", "phone", "email", "address",
    "street_number", "city", "district", "postcode", "region", "national_id",
)  # fmt: skip

# Compound surnames (复姓): a full name starting with one of these splits after two characters.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "轩辕",
    "令狐", "端木", "西门", "南宫", "独孤", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔", "申屠", "仲孙",
    "钟离", "闻人", "万俟", "赫连", "呼延", "百里", "东郭", "拓跋", "第五", "梁丘", "左丘", "司空", "司寇", "亓官",
    "巫马", "公西", "漆雕", "乐正", "壤驷", "公良", "谷梁", "宰父", "夹谷", "段干", "羊舌", "微生", "公羊", "东门",
})  # fmt: skip
_JUNK = pa.array(sorted(JUNK_VALUES))
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
# Province, city, district at the start of a Chinese address; the character after them is kept.
_ADMIN_PREFIX = r"^(?:\p{Han}{2,7}?(?:省|自治区))?(?:\p{Han}{2,7}?市)?(?:\p{Han}{2,7}?[区县])?(\p{Han})"


def text(values: pa.Array) -> pa.Array:
    """NFKC (full-width → half-width), trimmed, inner whitespace collapsed; empty and junk → null."""
    out = pc.utf8_normalize(values.cast(pa.string()), "NFKC")
    out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, r"\s+", " "))
    junk = pc.is_in(pc.utf8_lower(out), value_set=_JUNK)
    return pc.if_else(pc.or_kleene(junk, pc.equal(out, "")), pa.scalar(None, pa.string()), out)


def fold_accents(values: pa.Array) -> pa.Array:
    """Case-folded, accents stripped: `José ÁLVAREZ` → `jose alvarez`. Han characters are kept."""
    out = pc.replace_substring_regex(pc.utf8_normalize(values, "NFKD"), r"\p{Mn}", "")
    return pc.utf8_lower(pc.utf8_normalize(out, "NFC"))


def clean_names(values: pa.Array) -> pa.Array:
    """Names as compared: accents and case folded; Chinese names without spaces or middle dots."""
    return _clean_names(values, keep="")


def _clean_names(values: pa.Array, keep: str) -> pa.Array:
    out = fold_accents(text(values))
    han = pc.match_substring_regex(out, _HAN)
    out = pc.if_else(han, pc.replace_substring_regex(out, r"[\s·•・.]", ""), out)
    out = pc.replace_substring_regex(out, rf"[^\p{{L}}\p{{N}}\s'\-{keep}]", "")
    return _nulled(pc.utf8_trim_whitespace(out))


def split_full_names(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(surname, given name) of full names.

    Chinese names of two to four characters split after the surname: two characters for a
    compound surname (欧阳娜娜 → 欧阳 + 娜娜), one otherwise (王伟 → 王 + 伟). Longer Chinese
    names (transliterations) stay whole as the given name. Latin names: `Smith, John` is
    surname first; otherwise the last word is the surname and the rest the given name.
    """
    name = _clean_names(values, keep=",")
    han = pc.match_substring_regex(name, r"^\p{Han}{2,4}$")
    length = pc.utf8_length(name)
    compound = pc.and_(
        pc.is_in(pc.utf8_slice_codeunits(name, 0, 2), value_set=pa.array(sorted(COMPOUND_SURNAMES))),
        pc.greater(length, 2),
    )
    han_surname = pc.if_else(
        compound, pc.utf8_slice_codeunits(name, 0, 2), pc.utf8_slice_codeunits(name, 0, 1)
    )
    han_given = pc.if_else(compound, pc.utf8_slice_codeunits(name, 2), pc.utf8_slice_codeunits(name, 1))
    comma = pc.extract_regex(name, r"^(?P<last>[^,]+),\s*(?P<first>.+)$")
    spaced = pc.extract_regex(name, r"^(?P<first>.+) (?P<last>\S+)$")
    latin_surname = _first_valid((comma, "last"), (spaced, "last"))
    latin_given = pc.coalesce(_first_valid((comma, "first"), (spaced, "first")), name)
    latin_surname, latin_given = (
        _nulled(pc.utf8_trim(pc.replace_substring(p, ",", " "), " ")) for p in (latin_surname, latin_given)
    )
    is_han = pc.fill_null(han, False)
    surname = pc.if_else(is_han, han_surname, latin_surname)
    given = pc.if_else(is_han, han_given, latin_given)
    cjk_long = pc.fill_null(pc.and_(pc.match_substring_regex(name, _HAN), pc.invert(han)), False)
    surname = pc.if_else(cjk_long, pa.scalar(None, pa.string()), surname)
    return _nulled(surname), _nulled(pc.if_else(cjk_long, name, given))


def _first_valid(*parts: tuple[pa.Array, str]) -> pa.Array:
    fields = [pc.if_else(pc.is_valid(struct), pc.struct_field(struct, name), None) for struct, name in parts]
    return pc.coalesce(*fields) if len(fields) > 1 else fields[0]


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
    return _patched(clean, pc.invert(mobile), values, _messy_phones)


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
    return _patched((values,), pc.invert(clean), values, lambda v: (_messy_emails(v),))[0]


def _messy_emails(values: pa.Array) -> pa.Array:
    out = pc.utf8_lower(pc.replace_substring_regex(text(values), r"\s", ""))
    ok = pc.fill_null(pc.match_substring_regex(out, _EMAIL), False)
    return pc.if_else(ok, out, pa.scalar(None, pa.string()))


def _patched(
    clean: tuple[pa.Array, ...],
    messy: pa.Array,
    values: pa.Array,
    fix: Callable[[pa.Array], tuple[pa.Array, ...]],
) -> Any:
    """`clean` where `messy` is false; elsewhere `fix` applied to just those values."""
    if not pc.any(messy).as_py():
        return clean
    fixed = fix(values.filter(messy))
    return tuple(pc.replace_with_mask(c, messy, f) for c, f in zip(clean, fixed, strict=True))


def clean_places(values: pa.Array) -> pa.Array:
    """City, district, region: folded, without the administrative suffix (上海市 → 上海)."""
    out = fold_accents(text(values))
    out = pc.if_else(
        pc.match_substring_regex(out, r"^\p{Han}{2,}"),
        pc.replace_substring_regex(pc.replace_substring_regex(out, r"\s", ""), _PLACE_SUFFIX, ""),
        out,
    )
    return _nulled(out)


def clean_addresses(values: pa.Array) -> pa.Array:
    """Addresses: folded, punctuation dropped; Chinese ones without spaces or the province,
    city and district they start with (上海市浦东新区张江路100号 → 张江路100号), which one
    clerk writes out and the next leaves to the city and district fields."""
    out = fold_accents(text(values))
    out = pc.replace_substring_regex(out, r"[,，.。#;；:：'\"]", " ")
    han = pc.fill_null(pc.match_substring_regex(out, _HAN), False)
    chinese = pc.replace_substring_regex(pc.replace_substring_regex(out, r"\s", ""), _ADMIN_PREFIX, r"\1")
    out = pc.if_else(han, pc.replace_substring_regex(chinese, r"[省市区县]", ""), out)
    return _nulled(pc.utf8_trim_whitespace(pc.replace_substring_regex(out, r"\s+", " ")))


def clean_codes(values: pa.Array) -> pa.Array:
    """Postcodes, street numbers, national ids: no spaces or dashes, upper case."""
    out = pc.replace_substring_regex(text(values), r"[\s\-]", "")
    out = pc.replace_substring_regex(pc.utf8_upper(out), r"^(?:NO|№|#)", "")
    return _nulled(pc.replace_substring_regex(out, r"号$", ""))


def _nulled(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def fold_characters(values: pa.Array) -> pa.Array:
    """Each character as one printable byte, so byte-wise edit distances count characters.

    ASCII stays as it is; any other character becomes one of 94 printable ASCII symbols (the
    low twelve bits of its code, modulo 94). Two different characters can fold alike (about
    1 in 94), which can only make two values look closer on a fuzzy level, never apart; exact
    levels compare the unfolded values.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.large_string())
    if len(arr) == 0 or pc.all(pc.fill_null(pc.string_is_ascii(arr), True)).as_py():
        return arr.cast(pa.string())
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)  # not None: some value is not ASCII
    starts = np.flatnonzero((data & 0xC0) != 0x80)  # first byte of each character
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = len(data) - 1
    first = data[starts]
    low12 = ((data[np.maximum(ends - 1, 0)] & 0x3F).astype(np.uint16) << 6) | (data[ends] & 0x3F)
    folded = np.where(first < 0x80, first, (0x21 + low12 % 94).astype(np.uint8))
    new_offsets = np.searchsorted(starts, offsets).astype(np.int64)
    out = pa.Array.from_buffers(
        pa.large_string(),
        len(arr),
        [validity, pa.py_buffer(new_offsets.tobytes()), pa.py_buffer(folded.tobytes())],
        null_count=arr.null_count,
        offset=arr.offset,
    )
    return out.cast(pa.string())


def name_columns(
    first: pa.Array | None, last: pa.Array | None, full: pa.Array | None, length: int
) -> dict[str, pa.Array]:
    """surname, given_name, name_key (order-insensitive) and name_fz (folded) of a record's names.

    Separate first and last names win over a full name; a Chinese full name typed into one of
    them alone (姓 `王伟`, 名 empty) is split as a full name would be.
    """
    null = pa.nulls(length, pa.string())
    surname = per_distinct(clean_names, last) if last is not None else null
    given = per_distinct(clean_names, first) if first is not None else null
    whole = pc.coalesce(
        pc.if_else(pc.is_null(given), surname, null), pc.if_else(pc.is_null(surname), given, null)
    )
    whole = pc.if_else(pc.fill_null(pc.match_substring_regex(whole, r"^\p{Han}{2,4}$"), False), whole, null)
    if whole.null_count < length:
        split_s, split_g = per_distinct(split_full_names, whole)
        surname = pc.if_else(pc.is_valid(whole), split_s, surname)
        given = pc.if_else(pc.is_valid(whole), split_g, given)
    if full is not None:
        split_s, split_g = per_distinct(split_full_names, full)
        missing = pc.and_(pc.is_null(surname), pc.is_null(given))
        surname = pc.if_else(missing, split_s, surname)
        given = pc.if_else(missing, split_g, given)
    low = pc.min_element_wise(surname, given)
    high = pc.max_element_wise(surname, given)
    key = pc.coalesce(pc.binary_join_element_wise(low, high, " "), surname, given)
    joined = pc.coalesce(pc.binary_join_element_wise(surname, given, ""), surname, given)
    return {
        "surname": surname,
        "given_name": given,
        "name_key": key,
        "name_fz": per_distinct(fold_characters, joined),
    }


def per_distinct(fn: Callable[[pa.Array], Any], values: pa.Array) -> Any:
    """`fn` applied to the distinct values only, spread back over every row.

    Customer lists repeat names, cities, birth dates and addresses many times over; cleaning
    each distinct value once is what keeps a million records to a few seconds.
    """
    encoded = pc.dictionary_encode(values)
    out = fn(encoded.dictionary)
    if isinstance(out, tuple):
        return tuple(o.take(encoded.indices) for o in out)
    return out.take(encoded.indices)


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

    def col(role: str) -> pa.Array | None:
        return _as_text(table.column(roles[role])) if role in roles else None

    out: dict[str, pa.Array] = {"unique_id": pa.array(np.arange(n, dtype=np.int64))}
    if {"first_name", "last_name", "full_name"} & set(roles):
        out.update(name_columns(col("first_name"), col("last_name"), col("full_name"), n))
    if (raw := col("birth_date")) is not None:
        out["birth_date"] = per_distinct(parse_birth_dates, raw)
    if (raw := col("phone")) is not None:
        out["phone"], out["phone_prefix3"], out["phone_last4"] = standardise_phones(raw)
    if (raw := col("email")) is not None:
        out["email"] = standardise_emails(raw)
    if (raw := col("address")) is not None:
        out["address"], out["address_fz"] = per_distinct(_address_columns, raw)
    for role in ("city", "district", "region"):
        if (raw := col(role)) is not None:
            out[role] = per_distinct(clean_places, raw)
    for role in ("street_number", "postcode", "national_id"):
        if (raw := col(role)) is not None:
            out[role] = per_distinct(clean_codes, raw)
    return pa.table(out)


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.string())
