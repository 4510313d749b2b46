"""The shared state one generation run threads through every behaviour."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .identifiers import IdentifierFactory
from .outbox import Outbox
from .people import Person
from .timeline import Timeline

Action = Callable[..., None]


@dataclass
class World:
    """Random stream, clock, outbox and id factory, plus one person's agenda of actions.

    Behaviours schedule follow-ups (a refund a week later, the guide adding a shopper on
    WeCom after a store visit) with `later`; `live` plays them in time order so that state
    such as "is a member" or "follows the official account" is causally consistent.
    """

    rng: random.Random
    timeline: Timeline
    outbox: Outbox
    ids: IdentifierFactory
    counters: dict[str, int] = field(default_factory=dict)
    _agenda: list[tuple[int, int, Action, tuple[Any, ...]]] = field(default_factory=list)
    _sequence: int = 0

    def later(self, t: int, action: Action, *args: Any) -> None:
        """Run `action(world, person, t, *args)` at `t`, unless that is after the window."""
        if t < self.timeline.end:
            self._sequence += 1
            heapq.heappush(self._agenda, (t, self._sequence, action, args))

    def live(self, person: Person) -> None:
        """Play `person`'s agenda until nothing is left to do."""
        agenda = self._agenda
        while agenda:
            t, _, action, args = heapq.heappop(agenda)
            action(self, person, t, *args)

    def next_number(self, counter: str) -> int:
        """1, 2, 3... per named counter (receipt numbers per store and day)."""
        value = self.counters.get(counter, 0) + 1
        self.counters[counter] = value
        return value

    def chance(self, probability: float) -> bool:
        """True with `probability`."""
        return self.rng.random() < probability
