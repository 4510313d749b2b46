"""Columns of an export file: which header names mean which field, and how each cell is read.

Platforms rename columns between back-end versions and sellers re-save files in Excel, so each
field accepts several header names (`aliases`). Cells are read strictly: an amount that is not
a number, a time that is not a time, an order id Excel turned into `1.23E+18` is a problem on
that row, reported with the column it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from quanyu.connectors.imports.files import FileProblem
from quanyu.identity.identifiers import normalise_email, normalise_masked_phone, normalise_phone


class CellError(ValueError):
    """One cell could not be read; `column` is the header it came from."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]
    kind: str = "text"  # text | id | money | int | time | phone | email | flag
    required: bool = False


def col(field: str, *aliases: str, kind: str = "text", required: bool = False) -> Column:
    return Column(field, (field, *aliases), kind, required)


@dataclass(frozen=True)
class Layout:
    """Where each field of a format is in one file: field -> header name."""

    headers: dict[str, str]
    columns: tuple[Column, ...]

    def has(self, field: str) -> bool:
        return field in self.headers


def layout(header: Sequence[str], columns: Sequence[Column], what: str) -> Layout:
    """Match a file's header to a format's columns; FileProblem when a required one is missing."""
    present = set(header)
    found: dict[str, str] = {}
    missing: list[str] = []
    for column in columns:
        name = next((a for a in column.aliases if a in present), None)
        if name is not None:
            found[column.field] = name
        elif column.required:
            missing.append(" / ".join(column.aliases[1:3] or column.aliases[:1]))
    if missing:
        raise FileProblem(
            f"{what}缺少必需的列 / {what}: required columns missing: {', '.join(missing)}",
            code="missing_columns",
            details={"missing": missing, "header": list(header)},
        )
    return Layout(found, tuple(c for c in columns if c.field in found))


class CellReader:
    """Reads the cells of one row into typed fields, in the time zone the export was written in."""

    def __init__(self, layout: Layout, timezone: str) -> None:
        self.layout = layout
        self.zone = ZoneInfo(timezone)
        self._readers: dict[str, Callable[[str, str], object]] = {
            "text": lambda v, c: v,
            "id": _platform_id,
            "money": _money,
            "int": _int,
            "time": self._time,
            "phone": _phone,
            "email": _email,
            "flag": _flag,
        }

    def cell_reader(self, kind: str) -> Callable[[str, str], object]:
        return self._readers[kind]

    def read(self, cells: dict[str, str]) -> dict[str, object]:
        """Typed values of the row's non-empty cells; CellError on the first unreadable one."""
        out: dict[str, object] = {}
        for column in self.layout.columns:
            header = self.layout.headers[column.field]
            raw = cells.get(header, "")
            value = _unwrap(raw)
            if not value:
                if column.required:
                    raise CellError(header, f"{header} 为空 / {header} is empty")
                continue
            out[column.field] = self._readers[column.kind](value, header)
        return out

    def _time(self, value: str, column: str) -> str:
        """The cell's local time as UTC ISO-8601 (`2026-11-10T16:01:40+00:00`)."""
        match = _TIME.match(value)
        if match is None:
            raise CellError(column, f"{column} 不是时间 / {column} is not a date-time: {value!r}")
        y, mo, d, h, mi, s = (int(p) if p else 0 for p in match.groups())
        try:
            local = datetime(y, mo, d, h, mi, s, tzinfo=self.zone)
        except ValueError:
            raise CellError(column, f"{column} 日期无效 / {column} is not a valid date: {value!r}") from None
        return local.astimezone(UTC).replace(microsecond=0).isoformat()


_TIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$"
)
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_MONEY_NOISE = str.maketrans("", "", "¥￥,，元 \u00a0")


def _unwrap(raw: str) -> str:
    """A cell without the wrappers exports add so Excel keeps long numbers as text:
    `="3012345678901234567"`, a leading apostrophe, trailing tabs."""
    value = raw.strip().strip("\t")
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.lstrip("'").strip()


def _platform_id(value: str, column: str) -> str:
    if _SCIENTIFIC.match(value):
        raise CellError(
            column,
            f"{column} 被 Excel 改成了科学计数法，原值已丢失 / {column} was turned into scientific notation "
            f"by Excel ({value}); export again and open it as text",
        )
    if len(value) > 128:
        raise CellError(column, f"{column} 过长 / {column} is longer than 128 characters")
    return value


def _money(value: str, column: str) -> float:
    text = value.translate(_MONEY_NOISE)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CellError(column, f"{column} 不是金额 / {column} is not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise CellError(column, f"{column} 金额无效 / {column} must be a positive amount: {value!r}")
    return float(round(amount, 2))


def _int(value: str, column: str) -> int:
    text = value.removesuffix(".0")
    if not text.isdigit():
        raise CellError(column, f"{column} 不是整数 / {column} is not a whole number: {value!r}")
    return int(text)


def _phone(value: str, column: str) -> str:
    """A full phone number normalised, or a masked one (`138****1234`) kept as the platform gave it."""
    full = normalise_phone(value)
    if full is not None:
        return full
    masked = normalise_masked_phone(value)
    if masked is not None:
        return masked
    raise CellError(column, f"{column} 不是手机号 / {column} is not a phone number: {value!r}")


def _email(value: str, column: str) -> str:
    email = normalise_email(value)
    if email is None:
        raise CellError(column, f"{column} 不是邮箱 / {column} is not an e-mail address: {value!r}")
    return email


_YES = frozenset({"是", "y", "yes", "true", "1", "已签到", "已到场", "√", "✓"})
_NO = frozenset({"否", "n", "no", "false", "0", "未签到", "未到场", "×"})


def _flag(value: str, column: str) -> bool:
    lowered = value.casefold()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    raise CellError(column, f"{column} 应为 是/否 / {column} must be yes or no: {value!r}")
