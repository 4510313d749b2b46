"""Running compiled segment queries: every one under a time limit.

A definition can ask for a lot (a sequence over years of events, a dozen nested groups); the
limit keeps one from holding the warehouse. Past it the query is interrupted and the caller gets
504 `segment_timeout` in the one error shape.
"""

from __future__ import annotations

import ibis
import pyarrow as pa

from quanyu.errors import QueryTimeout
from quanyu.warehouse.base import Warehouse

DEFAULT_TIMEOUT = 30.0


def run(warehouse: Warehouse, expr: ibis.Expr, timeout: float | None = DEFAULT_TIMEOUT) -> pa.Table:
    try:
        return warehouse.execute(expr, timeout=timeout)
    except QueryTimeout as exc:
        raise QueryTimeout(
            f"分群查询超时 / the segment query ran past its limit of {timeout:g} s "
            "(QUANYU_SEGMENT_TIMEOUT_SECONDS); simplify the definition or raise the limit",
            code="segment_timeout",
            details={"timeout_seconds": timeout},
        ) from exc
