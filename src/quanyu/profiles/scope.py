"""Which profiles a query is about: the whole workspace, or a list of ids.

A list of ids becomes one array literal unnested in a subquery (`IN (SELECT UNNEST([...]))`):
the engine turns it into a hash semi-join, and the expression holds one literal however
many ids there are (an `IN (...)` of a thousand literals costs Ibis a tenth of a second to
compile, each time it appears).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt


def among(column: ibis.StringValue, ids: Sequence[str]) -> ibis.BooleanValue:
    """`column` is one of `ids`."""
    return column.isin(ibis.literal(list(ids), type=dt.Array(dt.string)).unnest().name("id"))


def owned(
    table: ibis.Table, workspace_id: str, ids: Sequence[str] | None, column: str = "profile_id"
) -> ibis.Table:
    """`table`'s rows of the workspace, and of `ids` when given."""
    mine = table.filter(table.workspace_id == workspace_id)
    return mine if ids is None else mine.filter(among(mine[column], ids))
