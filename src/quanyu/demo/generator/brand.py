"""The demo brand facade: generate 山茶记 Camellia Tea and hand its events out in batches."""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .identifiers import IdentifierFactory
from .journeys import plan
from .outbox import Outbox
from .people import make_person
from .sources import SOURCES, DemoSource
from .timeline import Timeline, to_shanghai
from .world import World

BRAND_NAME = "山茶记 Camellia Tea"


@dataclass
class DemoBrand:
    """A generated brand: Segment messages per source, and who really sent them.

    `ground_truth` rows are (person_id, source_key, identifier_type, identifier_value)
    for every identifier a message carried (`user_id`, `anonymous_id`, each
    `context.externalIds` type, and `phone` / `phone_masked` / `email` from traits).
    The junk values in `JUNK_IDENTIFIERS` are left out: they belong to nobody. A value
    may map to several people (a store's shared check-in tablet), as in real data.
    """

    sources: list[DemoSource]
    events: dict[str, list[dict[str, Any]]]
    ground_truth: list[tuple[str, str, str, str]]
    people: int

    def event_count(self) -> int:
        """Messages across all sources."""
        return sum(len(messages) for messages in self.events.values())

    def iter_batches(self, size: int = 500) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(source key, up to `size` messages), sources interleaved roughly in time order."""
        if size < 1:
            raise ValueError("batch size must be at least 1")
        heap = [(messages[0]["timestamp"], key, 0) for key, messages in self.events.items() if messages]
        heapq.heapify(heap)
        while heap:
            _, key, start = heapq.heappop(heap)
            messages = self.events[key]
            stop = start + size
            yield key, messages[start:stop]
            if stop < len(messages):
                heapq.heappush(heap, (messages[stop]["timestamp"], key, stop))


def generate_brand(
    people: int = 20_000, *, seed: int = 7, end: datetime | None = None, months: int = 12
) -> DemoBrand:
    """Generate the demo brand's customers over `months` months ending at `end`.

    The same arguments always give the same messages. `end` defaults to today's midnight
    in Asia/Shanghai (so a demo looks recent); pass it explicitly for reproducible output.
    """
    if people < 0 or months < 1:
        raise ValueError("people must be >= 0 and months >= 1")
    timeline = Timeline.ending(to_shanghai(end), months)
    collecting = gc.isenabled()
    gc.disable()  # millions of young dicts that all live on: cycle collection is pure cost
    try:
        outbox = _simulate(people, seed, timeline)
    finally:
        if collecting:
            gc.enable()
    events = outbox.events
    for messages in events.values():
        messages.sort(key=_timestamp)
    used = [source for source in SOURCES if events[source.key]]
    return DemoBrand(
        sources=used,
        events={source.key: events[source.key] for source in used},
        ground_truth=outbox.ground_truth(),
        people=people,
    )


def _simulate(people: int, seed: int, timeline: Timeline) -> Outbox:
    rng = random.Random(seed)
    ids = IdentifierFactory(rng)
    world = World(rng, timeline, Outbox(timeline, rng), ids)
    for index in range(people):
        person = make_person(index, rng, ids)
        plan(world, person)
        world.live(person)
    return world.outbox


def _timestamp(message: dict[str, Any]) -> str:
    return str(message["timestamp"])
