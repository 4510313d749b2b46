"""SQL functions the Ibis builders call that Ibis has no operation for (declared once here)."""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt


@ibis.udf.scalar.builtin(name="json_extract_string")
def json_text(json: dt.JSON, path: str) -> str:  # type: ignore[empty-body]
    """The JSON value at `path` (a JSONPath `$.a` or a pointer `/a`) as text: strings unquoted,
    numbers and booleans as written (phones often arrive as numbers). NULL when missing."""
