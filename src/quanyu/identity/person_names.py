"""Names as probabilistic matching compares them: Chinese and Latin, whole or in parts.

A Chinese name is compared without spaces or middle dots (`王 伟` = `王伟`) and split into
surname and given name after its surname, one character or two for a compound surname
(欧阳娜娜 → 欧阳 + 娜娜). A Latin name is case- and accent-folded (`José` = `jose`). The
order-insensitive `name_key` makes a swapped surname and given name compare equal.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from quanyu.identity.person_text import (
    fold_accents,
    fold_characters,
    nulled,
    per_distinct,
    settled,
    text,
)

# Compound surnames (复姓): a full name starting with one of these splits after two characters.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "轩辕",
    "令狐", "端木", "西门", "南宫", "独孤", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔", "申屠", "仲孙",
    "钟离", "闻人", "万俟", "赫连", "呼延", "百里", "东郭", "拓跋", "第五", "梁丘", "左丘", "司空", "司寇", "亓官",
    "巫马", "公西", "漆雕", "乐正", "壤驷", "公良", "谷梁", "宰父", "夹谷", "段干", "羊舌", "微生", "公羊", "东门",
})  # fmt: skip
_HAN = r"\p{Han}"


def clean_names(values: pa.Array) -> pa.Array:
    """Names as compared: accents and case folded; Chinese names without spaces or middle dots."""
    return _clean_names(values, keep="")


def _clean_names(values: pa.Array, keep: str) -> pa.Array:
    out = fold_accents(text(values))
    han = pc.match_substring_regex(out, _HAN)
    out = pc.if_else(han, pc.replace_substring_regex(out, r"[\s·•・.]", ""), out)
    return settled(pc.replace_substring_regex(out, rf"[^\p{{L}}\p{{N}}\s'\-{keep}]", ""))


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
        nulled(pc.utf8_trim(pc.replace_substring(p, ",", " "), " ")) for p in (latin_surname, latin_given)
    )
    is_han = pc.fill_null(han, False)
    surname = pc.if_else(is_han, han_surname, latin_surname)
    given = pc.if_else(is_han, han_given, latin_given)
    cjk_long = pc.fill_null(pc.and_(pc.match_substring_regex(name, _HAN), pc.invert(han)), False)
    surname = pc.if_else(cjk_long, pa.scalar(None, pa.string()), surname)
    return nulled(surname), nulled(pc.if_else(cjk_long, name, given))


def _first_valid(*parts: tuple[pa.Array, str]) -> pa.Array:
    fields = [pc.if_else(pc.is_valid(struct), pc.struct_field(struct, name), None) for struct, name in parts]
    return pc.coalesce(*fields) if len(fields) > 1 else fields[0]


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
