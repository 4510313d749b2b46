"""Ad cost imports (广告消耗导入): what each campaign cost per channel and day, for ROI.

The file is the ad platform's own report as CSV: 百度营销, 腾讯广告 and 巨量引擎 exports with
their Chinese headers (日期, 计划名称, 消耗, 展现, 点击) or English ones (day, campaign, spend,
impressions, clicks), in UTF-8 (with or without a BOM), UTF-16 with a BOM, or GBK (Excel on
Chinese Windows). Title
lines above the header and the 合计 (total) line at the end, which these exports carry, are
skipped.

The whole file is checked before anything is written: every bad row comes back with its line
number and the reason, and then nothing is written. A valid file is upserted in one transaction
on (workspace, channel, campaign, day), so importing the same report again changes nothing
(0 inserted, all unchanged) and a corrected report updates only the rows that changed.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from quanyu.connectors.ads.links import CHANNELS
from quanyu.connectors.imports import files
from quanyu.errors import Conflict, InvalidInput, PayloadTooLarge
from quanyu.store.engine import reading
from quanyu.store.models import AdCost

_C = AdCost.__table__
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED = 200  # bad rows listed in one answer (the count says how many there were)
MICROS = 1_000_000
PROGRESS_EVERY = 1000
_HEADER_SEARCH = 20  # exports put a few title lines (账户, 时间范围) above the header

# Column -> the header names that mean it (compared after NFKC, lower case, no spaces, and
# without a trailing unit such as "(元)").
ALIASES: dict[str, tuple[str, ...]] = {
    "day": ("day", "date", "stat_date", "日期", "时间", "统计日期", "数据日期", "日期时间"),
    "campaign": ("campaign", "campaign_name", "计划名称", "计划", "推广计划", "推广计划名称", "广告计划",
                 "广告计划名称", "计划名", "广告名称"),
    "spend": ("spend", "cost", "消耗", "花费", "消费", "总花费", "总消耗", "消耗金额", "花费金额"),
    "impressions": ("impressions", "impression", "展现", "展现量", "展现数", "展示", "展示数", "展示量", "曝光",
                    "曝光量"),
    "clicks": ("clicks", "click", "点击", "点击量", "点击数", "点击次数"),
    "currency": ("currency", "币种", "货币"),
    "channel": ("channel", "渠道", "媒体", "投放渠道", "平台", "广告平台"),
}  # fmt: skip
REQUIRED = ("day", "campaign", "spend")
# Channel names as reports and people write them.
CHANNEL_ALIASES = {
    "百度": "baidu", "百度营销": "baidu", "百度推广": "baidu", "腾讯": "tencent", "腾讯广告": "tencent",
    "广点通": "tencent", "巨量": "ocean_engine", "巨量引擎": "ocean_engine", "oceanengine": "ocean_engine",
    "抖音": "ocean_engine", "头条": "ocean_engine", "今日头条": "ocean_engine", "小红书": "xiaohongshu",
    "聚光": "xiaohongshu", "微博": "weibo", "快手": "kuaishou", "磁力引擎": "kuaishou", "谷歌": "google",
    "其他": "other",
}  # fmt: skip
_CURRENCY_ALIASES = {"人民币": "CNY", "rmb": "CNY", "元": "CNY", "¥": "CNY", "￥": "CNY"}
_SUMMARY = frozenset({"合计", "总计", "汇总", "总和", "total", "totals", "sum", "全部"})
_UNIT = re.compile(r"\([^)]*\)$")
_DAY = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")
_MIDNIGHT = re.compile(r"[ T]00:00(:00)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class CostRow:
    line: int
    channel: str
    campaign: str
    day: date
    spend_micros: int
    impressions: int | None
    clicks: int | None
    currency: str

    @property
    def key(self) -> tuple[str, str, date]:
        return (self.channel, self.campaign, self.day)


@dataclass(frozen=True)
class ParsedFile:
    rows: list[CostRow]
    encoding: str
    skipped: int  # title, empty and 合计 lines


def _invalid(message: str, code: str = "invalid_cost_file", details: Any = None) -> InvalidInput:
    return InvalidInput(message, code=code, details=details)


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without a BOM, UTF-16 with a BOM, else GBK (read as
    GB18030, its superset), as the order imports read their files."""
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Valid UTF-8 up to a character cut off at the very end: a truncated upload (GB18030
        # would read it as mojibake without complaint).
        if exc.reason == "unexpected end of data" and not data.startswith(
            (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        ):
            raise _invalid(f"文件被截断：末尾的 UTF-8 字符不完整（第 {exc.start} 字节）/ the file is truncated: an "
                           f"incomplete UTF-8 character at byte {exc.start}", "truncated_file") from None  # fmt: skip
    decoded = files.decode(data)
    return decoded.text, {"gb18030": "gbk", "utf-8-sig": "utf-8"}.get(decoded.encoding, decoded.encoding)


def _header_name(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).strip().strip("*").lower().replace(" ", "")
    return _UNIT.sub("", text)


def _columns(header: list[str]) -> dict[str, int]:
    lookup = {alias: column for column, aliases in ALIASES.items() for alias in aliases}
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = lookup.get(_header_name(cell))
        if column is not None and column not in found:
            found[column] = index
    return found


def channel_name(value: str) -> str | None:
    text = unicodedata.normalize("NFKC", value).strip()
    lowered = text.lower().replace(" ", "_")
    if lowered in CHANNELS:
        return lowered
    return CHANNEL_ALIASES.get(text) or CHANNEL_ALIASES.get(lowered)


def parse_day(value: str) -> date:
    # Some exports write the day as a midnight timestamp; any other time means an hourly report.
    m = _DAY.match(_MIDNIGHT.sub("", value.strip()))
    if m is None:
        raise ValueError("日期格式应为 YYYY-MM-DD 或 YYYY/MM/DD / day must be YYYY-MM-DD or YYYY/MM/DD")
    year, month, day = (int(g) for g in (m.groups()[:3] if m.group(1) else m.groups()[3:]))
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"日期不存在 / no such day: {value.strip()}") from None


def parse_spend(value: str) -> int:
    """Micros of a non-negative decimal amount (`1,234.56`, `¥88`, `88元`)."""
    text = value.strip().replace(",", "").lstrip("¥￥").removesuffix("元").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"消耗须为数字 / spend must be a number, got {value.strip()!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"消耗须为非负数 / spend must be zero or more, got {value.strip()!r}")
    micros = amount * MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"消耗最多 6 位小数 / spend has more than 6 decimals: {value.strip()!r}")
    if micros >= 2**63:
        raise ValueError(f"消耗过大 / spend too large: {value.strip()!r}")
    return int(micros)


def parse_count(value: str, column: str) -> int | None:
    text = value.strip().replace(",", "")
    if text in ("", "-", "--"):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(
            f"{column} 须为整数 / {column} must be a whole number, got {value.strip()!r}"
        ) from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value() or number >= 2**63:
        raise ValueError(
            f"{column} 须为非负整数 / {column} must be a whole number ≥ 0, got {value.strip()!r}"
        )
    return int(number)


def parse_currency(value: str) -> str:
    text = value.strip()
    if not text:
        return "CNY"
    code = _CURRENCY_ALIASES.get(text.lower(), text.upper())
    if not _CURRENCY.match(code):
        raise ValueError(
            f"币种应为三位代码（如 CNY）/ currency must be a 3-letter code such as CNY, got {text!r}"
        )
    return code


def parse_csv(
    data: bytes, default_channel: str | None = None, on_line: Callable[[int], None] | None = None
) -> ParsedFile:
    """Every row of a cost report, checked; InvalidInput listing each bad line otherwise.
    `on_line(line)` is told how far the check got, every PROGRESS_EVERY lines (progress bars)."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"文件超过 {MAX_BYTES // 1024 // 1024} MB / the file is over "
                              f"{MAX_BYTES // 1024 // 1024} MB", code="cost_file_too_large")  # fmt: skip
    if default_channel is not None:
        fallback = channel_name(default_channel)
        if fallback is None:
            raise _invalid(f"未知渠道 / unknown channel {default_channel!r} (known: {', '.join(CHANNELS)})",
                           "invalid_channel")  # fmt: skip
        default_channel = fallback
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[dict[str, Any]] = []
    rows: list[CostRow] = []
    seen: dict[tuple[str, str, date], int] = {}
    skipped = 0
    columns: dict[str, int] | None = None
    width = 0
    try:
        for record in reader:
            line = reader.line_num
            if on_line is not None and line % PROGRESS_EVERY == 0:
                on_line(line)
            if columns is None:
                found = _columns(record)
                if all(c in found for c in REQUIRED):
                    columns, width = found, len(record)
                    if "channel" not in columns and default_channel is None:
                        raise _invalid("文件没有渠道列，请指定 channel 参数 / the file has no channel column: pass "
                                       "channel (baidu, tencent, ocean_engine …)", "channel_required")  # fmt: skip
                elif line >= _HEADER_SEARCH:
                    break
                else:
                    skipped += 1
                continue
            if not any(cell.strip() for cell in record):
                skipped += 1
                continue
            if _is_summary(record, columns):
                skipped += 1
                continue
            if len(rows) + len(problems) >= MAX_ROWS:
                raise _invalid(f"超过 {MAX_ROWS} 行，请分批导入 / more than {MAX_ROWS} rows: split the file",
                               "cost_file_too_large")  # fmt: skip
            try:
                row = _row(record, columns, width, line, default_channel)
            except _RowError as err:
                problems.append({"line": line, "column": err.column, "reason": str(err)})
                continue
            if row.key in seen:
                problems.append({"line": line, "column": None,
                                 "reason": f"与第 {seen[row.key]} 行重复（同渠道、计划、日期）/ duplicates line "
                                           f"{seen[row.key]} (same channel, campaign and day)"})  # fmt: skip
                continue
            seen[row.key] = line
            rows.append(row)
    except csv.Error as exc:
        # The csv module only fails on a quoted field left open: a cut-off file.
        problems.append({"line": reader.line_num, "column": None,
                         "reason": f"CSV 格式错误（引号未闭合，文件被截断？）/ malformed CSV (an unclosed quote: "
                                   f"truncated file?): {exc}"})  # fmt: skip
    if columns is None:
        raise _invalid(f"前 {_HEADER_SEARCH} 行中没有找到表头（需要 日期、计划名称、消耗 列；编码错误？）/ no header "
                       f"in the first {_HEADER_SEARCH} lines: needs day (日期), campaign (计划名称) and spend (消耗) "
                       f"columns (wrong encoding, or not a cost report?)", "missing_cost_columns")  # fmt: skip
    if problems:
        listed = problems[:MAX_REPORTED]
        first = listed[0]
        raise _invalid(f"{len(problems)} 行有误，未导入任何数据（首个：第 {first['line']} 行 {first['reason']}）/ "
                       f"{len(problems)} bad rows, nothing imported (first: line {first['line']})",
                       "invalid_cost_rows", {"errors": listed, "error_count": len(problems),
                                             "encoding": encoding})  # fmt: skip
    if not rows:
        raise _invalid("文件没有数据行 / the file has no data rows", "empty_cost_file")
    return ParsedFile(rows, encoding, skipped)


class _RowError(ValueError):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column


def _is_summary(record: list[str], columns: dict[str, int]) -> bool:
    for column in ("day", "campaign"):
        index = columns[column]
        if index < len(record) and record[index].strip().lower() in _SUMMARY:
            return True
    return False


def _row(record: list[str], columns: dict[str, int], width: int, line: int,
         default_channel: str | None) -> CostRow:  # fmt: skip
    if len(record) < width:
        raise _RowError(None, f"应有 {width} 列，实有 {len(record)} 列（文件被截断？）/ expected {width} columns, "
                              f"found {len(record)} (truncated?)")  # fmt: skip

    def cell(column: str) -> str:
        index = columns.get(column)
        return record[index] if index is not None else ""

    def parsed(column: str, parse: Any) -> Any:
        try:
            return parse(cell(column))
        except ValueError as exc:
            raise _RowError(column, str(exc)) from None

    campaign = unicodedata.normalize("NFKC", cell("campaign")).strip()
    if not campaign:
        raise _RowError("campaign", "计划名称为空 / campaign is empty")
    if len(campaign) > 200 or _CONTROL.search(campaign):
        raise _RowError(
            "campaign", "计划名称过长或含控制字符 / campaign too long (200) or has control characters"
        )
    channel = default_channel
    if "channel" in columns and cell("channel").strip():
        channel = channel_name(cell("channel"))
        if channel is None:
            raise _RowError("channel", f"未知渠道 / unknown channel {cell('channel').strip()!r}")
    if channel is None:
        raise _RowError("channel", "渠道为空 / channel is empty (pass a default channel)")
    return CostRow(
        line=line, channel=channel, campaign=campaign, day=parsed("day", parse_day),
        spend_micros=parsed("spend", parse_spend),
        impressions=parsed("impressions", lambda v: parse_count(v, "impressions")),
        clicks=parsed("clicks", lambda v: parse_count(v, "clicks")),
        currency=parsed("currency", parse_currency),
    )  # fmt: skip


def import_costs(
    engine: Engine, workspace_id: str, parsed: ParsedFile, *, dry_run: bool = False
) -> dict[str, Any]:
    """Upsert the rows in one transaction; counts of inserted, updated and unchanged rows."""
    rows = parsed.rows
    days = [r.day for r in rows]
    now = datetime.now(UTC)
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    unchanged = 0
    try:
        with engine.begin() as conn:
            stmt = select(_C).where(_C.c.workspace_id == workspace_id, _C.c.day >= min(days), _C.c.day <= max(days),
                                    _C.c.channel.in_(sorted({r.channel for r in rows})))  # fmt: skip
            existing = {(e.channel, e.campaign, e.day): e for e in conn.execute(stmt)}
            for row in rows:
                values = {"spend_micros": row.spend_micros, "impressions": row.impressions, "clicks": row.clicks,
                          "currency": row.currency}  # fmt: skip
                old = existing.get(row.key)
                if old is None:
                    inserts.append({"workspace_id": workspace_id, "channel": row.channel, "campaign": row.campaign,
                                    "day": row.day, "imported_at": now, **values})  # fmt: skip
                elif any(getattr(old, k) != v for k, v in values.items()):
                    updates.append((old.id, {**values, "imported_at": now}))
                else:
                    unchanged += 1
            if not dry_run:
                if inserts:
                    conn.execute(_C.insert(), inserts)
                for row_id, values in updates:
                    conn.execute(_C.update().where(_C.c.id == row_id).values(**values))
    except IntegrityError:
        # Another import of the same rows committed between our read and our insert.
        raise Conflict("同一批数据正在被并发导入，请重试 / the same rows were imported concurrently: try again",
                       code="cost_import_conflict") from None  # fmt: skip
    return {"rows": len(rows), "inserted": len(inserts), "updated": len(updates), "unchanged": unchanged,
            "skipped_lines": parsed.skipped, "encoding": parsed.encoding, "dry_run": dry_run}  # fmt: skip


def query_costs(engine: Engine, workspace_id: str, *, from_: date | None = None, to: date | None = None,
                channel: str | None = None, campaign: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Spend, impressions and clicks per day, channel and campaign, with totals per campaign
    and channel and overall (per currency: amounts in different currencies are never added)."""
    where = [_C.c.workspace_id == workspace_id]
    if from_ is not None:
        where.append(_C.c.day >= from_)
    if to is not None:
        where.append(_C.c.day <= to)
    if channel is not None:
        where.append(_C.c.channel == (channel_name(channel) or channel))
    if campaign is not None:
        where.append(_C.c.campaign == campaign)
    cols = (
        _C.c.day,
        _C.c.channel,
        _C.c.campaign,
        _C.c.currency,
        _C.c.spend_micros,
        _C.c.impressions,
        _C.c.clicks,
    )
    with reading(engine) as conn:
        items = [_amounts(r._mapping) for r in conn.execute(
            select(*cols).where(*where).order_by(_C.c.day, _C.c.channel, _C.c.campaign))]  # fmt: skip

        def totals(*keys: Any) -> list[dict[str, Any]]:
            stmt = select(*keys, _C.c.currency, func.sum(_C.c.spend_micros).label("spend_micros"),
                          func.sum(_C.c.impressions).label("impressions"), func.sum(_C.c.clicks).label("clicks"),
                          func.count().label("days")).where(*where).group_by(*keys, _C.c.currency)  # fmt: skip
            return [_amounts(r._mapping) for r in conn.execute(stmt.order_by(*keys, _C.c.currency))]

        by_campaign = totals(_C.c.channel, _C.c.campaign)
        by_channel = totals(_C.c.channel)
        overall = totals()
    return {"items": items, "by_campaign": by_campaign, "by_channel": by_channel, "totals": overall}


def _amounts(row: Any) -> dict[str, Any]:
    out = dict(row)
    micros = int(out.pop("spend_micros") or 0)
    if "day" in out:
        out["day"] = out["day"].isoformat()
    for key in ("impressions", "clicks"):
        out[key] = int(out[key]) if out.get(key) is not None else None
    return {**out, "spend": float(Decimal(micros) / MICROS), "spend_micros": micros}
