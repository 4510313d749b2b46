"""The pipeline's identity stage: new events → incremental stitch → people refreshed.

It catches up from the warehouse itself: queue batches the warehouse holds (`applied_batches`)
but the graph has not taken in yet (`identity_batches`). A crash anywhere in between is
repaired by the next run, because stitching the same events again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.resolve import extend
from quanyu.warehouse.base import Append, Warehouse
from quanyu.warehouse.schema import IDENTITY_BATCHES

log = logging.getLogger(__name__)
_BATCHES = IDENTITY_BATCHES.to_pyarrow()

# Called with (workspace id, profile ids that changed) after each stitch.
ProfilesChanged = Callable[[str, list[str]], None]


@dataclass
class IdentityStep:
    batches: int = 0
    events: int = 0
    merges: int = 0
    splits: int = 0
    touched_profiles: int = 0

    def public(self) -> dict[str, int]:
        return {"batches": self.batches, "events": self.events, "merges": self.merges,
                "splits": self.splits, "touched_profiles": self.touched_profiles}  # fmt: skip


class IdentityStage:
    def __init__(
        self,
        warehouse: Warehouse,
        types_for: Callable[[str], IdentifierTypes] | None = None,
        on_change: ProfilesChanged | None = None,
        max_batches: int = 1000,
    ) -> None:
        self.warehouse = warehouse
        self.types_for = types_for or (lambda _ws: IdentifierTypes())
        self.on_change = on_change
        self.max_batches = max_batches

    def pending(self) -> list[int]:
        applied, done = self.warehouse.table("applied_batches"), self.warehouse.table("identity_batches")
        todo = (
            applied.anti_join(done, "batch_id")
            .select("batch_id")
            .order_by("batch_id")
            .limit(self.max_batches)
        )
        return [int(b) for b in self.warehouse.execute(todo).column(0).to_pylist()]

    def run(self) -> IdentityStep:
        """Take in every pending batch (in slices of `max_batches`)."""
        step = IdentityStep()
        while batch_ids := self.pending():
            events = self.warehouse.table("events")
            mine = events.filter(events.batch_id.isin(batch_ids))
            workspaces = self.warehouse.execute(mine.select("workspace_id").distinct()).column(0).to_pylist()
            for ws in sorted(workspaces):
                result = extend(self.warehouse, ws, mine.filter(mine.workspace_id == ws), self.types_for(ws))
                step.events += result.events
                step.merges += result.merges
                step.splits += result.splits
                step.touched_profiles += len(result.touched_profiles)
                if self.on_change is not None and result.touched_profiles:
                    self.on_change(ws, result.touched_profiles)
            mark_taken_in(self.warehouse, batch_ids)
            step.batches += len(batch_ids)
        return step


def mark_taken_in(warehouse: Warehouse, batch_ids: list[int]) -> None:
    now = datetime.now(UTC)
    rows = pa.table({"batch_id": pa.array(batch_ids, pa.int64()),
                     "at": pa.array([now] * len(batch_ids), pa.timestamp("us", "UTC"))}, schema=_BATCHES)  # fmt: skip
    warehouse.write([Append("identity_batches", rows)])
