"""Person events: every attributed event with its person's profile id, kept by the identity graph.

Events reach their person through two lookups (`identity_event_keys`: event → identifier,
`identity_nodes`: identifier → profile), so merges never rewrite an event. Segments, though,
ask "who did X" over tens of millions of events, and two joins on message ids at that size
cost seconds. `person_events` is the same events, narrowed to the columns segment conditions
read, with the `profile_id` written in:

- a stitch appends the rows of the events it takes in (replacing any rows of the same message
  ids, so re-running a stitch is a no-op);
- when a merge or split moves identifiers to another person, the rows of those identifiers are
  rewritten with their new profile id, in the same transaction as the nodes;
- a rebuild refills the workspace's rows from the stored tables inside its transaction.

The events table stays the record; this table can always be rebuilt from it.
"""

from __future__ import annotations

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.warehouse.base import Fill, Replace, Warehouse
from quanyu.warehouse.schema import PERSON_EVENTS

TABLE = "person_events"
COLUMNS = tuple(PERSON_EVENTS.names)
_EVENT_COLUMNS = tuple(c for c in COLUMNS if c not in ("profile_id", "key"))
_ROWS = PERSON_EVENTS.to_pyarrow()


def person_rows(
    events: ibis.Table, event_keys: ibis.Table, nodes: ibis.Table, workspace_id: str
) -> ibis.Table:
    """The workspace's person events, from the stored tables (a pure builder): each event's
    identifier (`identity_event_keys`), that identifier's profile (`identity_nodes`), one join
    each (events without a usable identifier belong to nobody and are left out)."""
    keyed = event_keys.filter(event_keys.workspace_id == workspace_id).select("message_id", "key")
    owners = nodes.filter(nodes.workspace_id == workspace_id).select("key", "profile_id")
    attributed = keyed.join(owners, "key")
    mine = events.filter(events.workspace_id == workspace_id).select(*_EVENT_COLUMNS)
    return mine.join(attributed, "message_id").select(*COLUMNS)


def refill(warehouse: Warehouse, workspace_id: str) -> Fill:
    """The operation that rewrites a workspace's person events from the stored tables (run it
    in the same transaction that writes the nodes and event keys it reads)."""
    t = warehouse.table
    return Fill(
        TABLE,
        workspace_id,
        person_rows(t("events"), t("identity_event_keys"), t("identity_nodes"), workspace_id),
    )


def added(
    warehouse: Warehouse, workspace_id: str, events: ibis.Table, records: pa.Table, nodes: pa.Table
) -> Replace:
    """Rows for newly stitched events: `records` maps each message id to its identifier key,
    `nodes` holds the stitched nodes (every key of `records` among them)."""
    message_ids = records["message_id"]
    if records.num_rows == 0:
        return Replace(TABLE, workspace_id, _ROWS.empty_table(), "message_id", [])
    # `events` selects exactly the events being stitched (a batch filter the storage prunes
    # by); the inner join below keeps those that carried an identifier.
    rows = warehouse.execute(events.select(*_EVENT_COLUMNS))
    owners = records.select(["message_id", "key"]).join(nodes.select(["key", "profile_id"]), "key")
    joined = rows.join(owners, "message_id")
    return Replace(TABLE, workspace_id, _cast(joined), "message_id", message_ids.to_pylist())


def moved(warehouse: Warehouse, workspace_id: str, old: pa.Table, changed: pa.Table) -> Replace | None:
    """Rows of identifiers whose person changed (a merge or a split), relabelled. `changed`:
    the stitch's rewritten nodes (new ones and those whose profile, anchor, … changed)."""
    before = old.select(["key", "profile_id"]).rename_columns(["key", "old_profile_id"])
    joined = changed.select(["key", "profile_id"]).join(before, "key")  # new identifiers have no rows yet
    moving = joined.filter(
        pc.invert(pc.fill_null(pc.equal(joined["profile_id"], joined["old_profile_id"]), False))
    )
    if moving.num_rows == 0:
        return None
    keys = ibis.memtable(moving.select(["key", "profile_id"]).rename_columns(["key", "new_profile_id"]))
    stored = warehouse.table(TABLE)
    mine = stored.filter(stored.workspace_id == workspace_id)
    relabelled = mine.join(keys, "key").mutate(profile_id=lambda t: t.new_profile_id).select(*COLUMNS)
    rows = warehouse.execute(relabelled)
    return Replace(TABLE, workspace_id, _cast(rows), "key", moving["key"].to_pylist())


def _cast(rows: pa.Table) -> pa.Table:
    return rows.select(list(COLUMNS)).cast(_ROWS)
