"""Which person each event belongs to: a pure builder over the identity tables.

Events are attributed to one identifier each (`identity_event_keys`, their strongest one); that
identifier belongs to a profile (`identity_nodes`). Merges and splits only rewrite nodes, so the
event → profile mapping follows them without touching a single event.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis


def profile_events(
    events: ibis.Table,
    event_keys: ibis.Table,
    nodes: ibis.Table,
    workspace_id: str,
    profile_ids: Sequence[str] | None = None,
) -> ibis.Table:
    """The workspace's events that belong to a person, with a `profile_id` column added.

    With `profile_ids`, only those people's events (the incremental refresh of a few profiles).
    Events without any usable identifier belong to nobody and are left out.
    """
    owners = nodes.filter(nodes.workspace_id == workspace_id)
    if profile_ids is not None:
        owners = owners.filter(owners.profile_id.isin(list(profile_ids)))
    keyed = event_keys.filter(event_keys.workspace_id == workspace_id)
    attributed = keyed.join(owners.select("key", "profile_id"), "key").select("message_id", "profile_id")
    mine = events.filter(events.workspace_id == workspace_id)
    return mine.join(attributed, "message_id")
