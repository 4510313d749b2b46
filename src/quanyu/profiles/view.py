"""Reading materialised profiles: one profile as a dict for the API, and search.

`profile_view` answers for a merged-away id with its survivor (`redirected_from` says so) and
reads tags live from the tag log, so a tag added a moment ago shows at once. `search` filters on
the materialised rows (computed fields, `traits.<key>`, `tags`) with the same condition spec as
tag rules, keyset-paginated by profile id.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import ibis
import orjson

from quanyu.errors import InvalidInput
from quanyu.profiles.compile import compile_match
from quanyu.profiles.conditions import Match, parse_match, tag_name
from quanyu.profiles.rfm import SEGMENT_LABELS
from quanyu.profiles.survivors import survivors
from quanyu.profiles.tags import profile_tags
from quanyu.warehouse.base import Warehouse

MAX_LIMIT = 500
_RFM = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")
_OWN = ("workspace_id", "profile_id", "traits", "trait_sources", "identifiers", "reachable_channels", "tags",
        "updated_at", *_RFM)  # fmt: skip
SUMMARY = ("profile_id", "traits", "tags", "first_seen", "last_seen", "event_count", "order_count", "revenue",
           "preferred_channel", "rfm_segment")  # fmt: skip


def _plain(value: Any) -> Any:
    """Arrow's Python values as JSON-ready ones: ISO times, nested lists and dicts."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _row(warehouse: Warehouse, workspace_id: str, profile_id: str) -> dict[str, Any] | None:
    profiles = warehouse.table("profiles")
    rows = warehouse.execute(
        profiles.filter(profiles.workspace_id == workspace_id, profiles.profile_id == profile_id).limit(1)
    ).to_pylist()
    return rows[0] if rows else None


def profile_view(warehouse: Warehouse, workspace_id: str, profile_id: str) -> dict[str, Any] | None:
    """One materialised profile, or None when neither it nor a survivor of it exists."""
    row, resolved = _row(warehouse, workspace_id, profile_id), profile_id
    if row is None:
        moved = survivors(warehouse, workspace_id, [profile_id]).get(profile_id)
        row = _row(warehouse, workspace_id, moved) if moved else None
        resolved = moved or profile_id
    if row is None:
        return None
    segment = row["rfm_segment"]
    return {
        "profile_id": resolved,
        "redirected_from": profile_id if resolved != profile_id else None,
        "updated_at": _plain(row["updated_at"]),
        "traits": orjson.loads(row["traits"] or "{}"),
        "trait_sources": {s["key"]: _plain({k: v for k, v in s.items() if k != "key"}) for s in row["trait_sources"]},
        "identifiers": _plain(sorted(row["identifiers"], key=lambda i: (i["first_seen"], i["type"], i["value"]))),
        "reachable_channels": row["reachable_channels"],
        "computed": {
            **{k: _plain(v) for k, v in row.items() if k not in _OWN},
            "channel_activity": _plain(sorted(row["channel_activity"], key=lambda c: (c["first_seen"], c["channel"]))),
        },
        "rfm": None if segment is None else {
            "recency": row["rfm_recency"], "frequency": row["rfm_frequency"], "monetary": row["rfm_monetary"],
            "segment": segment, "label": " ".join(SEGMENT_LABELS[segment]),
        },
        "tags": profile_tags(warehouse, workspace_id, resolved),
    }  # fmt: skip


def _cursor(token: str) -> str:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception as exc:
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor") from exc
    if not isinstance(value, str):
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor")
    return value


def search_query(
    profiles: ibis.Table,
    workspace_id: str,
    match: Match | None,
    tags: Sequence[str],
    limit: int,
    after: str | None,
    now: datetime,
) -> ibis.Table:
    """Profiles of the workspace matching `match` and holding every one of `tags`, by id."""
    preds = [profiles.workspace_id == workspace_id]
    if match is not None:
        preds.append(compile_match(match, profiles, now, allow_tags=True))
    preds += [profiles.tags.contains(ibis.literal(tag, "string")) for tag in tags]
    if after is not None:
        preds.append(profiles.profile_id > after)
    return profiles.filter(*preds).order_by("profile_id").limit(limit).select(*SUMMARY)


def search(
    warehouse: Warehouse,
    workspace_id: str,
    filters: Match | Mapping[str, Any] | None = None,
    *,
    tags: Sequence[str] = (),
    limit: int = 50,
    cursor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A page of profile summaries and the cursor of the next page (None on the last)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit 需在 1–{MAX_LIMIT} / limit must be 1–{MAX_LIMIT}", code="invalid_limit")
    match = parse_match(filters) if filters is not None else None
    wanted = [tag_name(tag) for tag in tags]
    after = _cursor(cursor) if cursor else None
    expr = search_query(
        warehouse.table("profiles"), workspace_id, match, wanted, limit + 1, after, now or datetime.now(UTC)
    )
    rows = warehouse.execute(expr).to_pylist()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "profiles": [{**_plain(r), "traits": orjson.loads(r["traits"] or "{}")} for r in page],
        "next_cursor": base64.urlsafe_b64encode(orjson.dumps(page[-1]["profile_id"])).decode()
        if more
        else None,
    }
