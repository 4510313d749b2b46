"""Text as people compare it: the normal forms shared by every field of a person record.

Customer lists come typed on phones, tills and Excel in China and elsewhere: full-width
letters and digits, stray spaces, accents, placeholders such as `未知` or `null`. Every
function takes a pyarrow array and returns one, so a million values take a fraction of a
second, and `per_distinct` runs a cleaning once per distinct value.

Fuzzy comparisons run in DuckDB, whose edit distances count bytes: `levenshtein('王伟', '王玮')`
is 3. `fold_characters` therefore gives every fuzzy-compared column a twin holding one byte per
character, so a one-character typo in a Chinese name is one edit, as in a Latin one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.identity.identifiers import JUNK_VALUES

_JUNK = pa.array(sorted(JUNK_VALUES))


def text(values: pa.Array) -> pa.Array:
    """NFKC (full-width → half-width), whitespace collapsed and trimmed, control and zero-width
    characters dropped; empty values and placeholders (`null`, `未知`, `-`) are null."""
    out = pc.utf8_normalize(values.cast(pa.string()), "NFKC")
    return settled(
        pc.replace_substring_regex(pc.replace_substring_regex(out, r"\s+", " "), r"[\p{Cc}\p{Cf}]", "")
    )


def settled(values: pa.Array) -> pa.Array:
    """Whitespace collapsed and trimmed, then empty values and placeholders null: the last step
    of every cleaning, so that what a cleaning drops cannot leave `unknown!` as `unknown` or two
    spaces where one stood, and cleaning twice changes nothing."""
    out = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"\s+", " "))
    junk = pc.or_kleene(pc.is_in(pc.utf8_lower(out), value_set=_JUNK), pc.equal(out, ""))
    return pc.if_else(junk, pa.scalar(None, pa.string()), out)


def fold_accents(values: pa.Array) -> pa.Array:
    """Case-folded, accents stripped: `José ÁLVAREZ` → `jose alvarez`. Han characters are kept."""
    out = pc.replace_substring_regex(pc.utf8_normalize(values, "NFKD"), r"\p{Mn}", "")
    return pc.utf8_lower(pc.utf8_normalize(out, "NFC"))


def nulled(values: pa.Array) -> pa.Array:
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


def patched(
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
