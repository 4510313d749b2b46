"""A journey engine over a real operational store (SQLite or PostgreSQL), a manual clock and
local sink channels: the parts the engine tests drive directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from quanyu.channels.configs import ChannelConfigs
from quanyu.channels.sink import read_sink
from quanyu.journeys.clock import ManualClock
from quanyu.journeys.engine import Candidate, JourneyEngine
from quanyu.journeys.outbox import Dispatcher
from quanyu.journeys.people import Person
from quanyu.journeys.policy import Policies
from quanyu.journeys.saved import LiveJourney, SavedJourneys
from quanyu.org.vault import Vault
from quanyu.org.workspaces import Workspaces
from quanyu.store import make_engine, upgrade
from quanyu.store.models import Enrollment, JourneyStep, OutboxMessage

# 04:00 UTC is noon in Shanghai: outside the default quiet hours (21:00–09:00).
NOON_SHANGHAI = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@dataclass
class Rig:
    engine: Engine
    dir: Path
    workspace_id: str
    clock: ManualClock
    journeys: SavedJourneys
    policies: Policies
    channels: ChannelConfigs
    runner: JourneyEngine
    dispatcher: Dispatcher
    people: dict[str, Person] = field(default_factory=dict)

    def save(self, definition: dict[str, Any], publish: bool = True) -> LiveJourney:
        made = self.journeys.create(self.workspace_id, definition, "test", publish=publish)
        return next(j for j in self.journeys.live(self.workspace_id) if j.id == made["id"])

    def person(self, pid: str, **addresses: str) -> Person:
        traits = addresses.pop("traits", {})  # type: ignore[arg-type]
        tz = addresses.pop("tz", None)
        p = Person(pid, dict(addresses), tz, dict(traits))  # type: ignore[arg-type]
        self.people[pid] = p
        return p

    def enroll(
        self, live: LiveJourney, *pids: str, event: dict[str, Any] | None = None, key: str = "t"
    ) -> Any:
        cands = [Candidate(self.workspace_id, pid, f"{key}:{pid}", self.clock.now(), event or {},
                           self.people.get(pid) or Person(pid)) for pid in pids]  # fmt: skip
        return self.runner.enroll(live, cands)

    def run(self) -> None:
        """Steps and sends until nothing is due at the current time."""
        for _ in range(1000):
            step = self.runner.run_due(500)
            sent = self.dispatcher.dispatch(500)
            if not step.claimed and not sent.claimed:
                return
        raise AssertionError("journeys never settled")

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
        self.run()

    def sink(self, channel: str = "sink") -> list[dict[str, Any]]:
        name = "sink" if channel == "sink" else channel
        return read_sink(self.dir / "sink" / f"{self.workspace_id}.jsonl") if name == "sink" else \
            read_sink(self.dir / f"{channel}.jsonl")  # fmt: skip

    def enrollments(self, journey_id: str) -> list[Any]:
        e = Enrollment.__table__
        with self.engine.connect() as conn:
            return list(conn.execute(select(e).where(e.c.journey_id == journey_id).order_by(e.c.id)))

    def steps(self, journey_id: str) -> list[tuple[str, str, str | None]]:
        s = JourneyStep.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.c.node, s.c.kind, s.c.detail).where(s.c.journey_id == journey_id)
                                .order_by(s.c.id))  # fmt: skip
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def outbox(self) -> list[Any]:
        o = OutboxMessage.__table__
        with self.engine.connect() as conn:
            return list(conn.execute(select(o).order_by(o.c.id)))


def make_rig(url: str, directory: Path, *, conditions: Any = None) -> Rig:
    engine = make_engine(url)
    upgrade(engine)
    ws = Workspaces(engine).create("旅程测试 Journeys test")
    clock = ManualClock(NOON_SHANGHAI)
    journeys = SavedJourneys(engine, ("127.0.0.1/32",))
    policies = Policies(engine)
    channels = ChannelConfigs(engine, Vault.for_data_dir(directory), sink_dir=directory / "sink",
                              allow_networks=("127.0.0.1/32",))  # fmt: skip
    for channel in ("email", "sms", "wechat_oa", "mini_program", "wecom"):
        channels.create(ws.id, f"{channel} sink", f"sink_{channel}", {"path": str(directory / f"{channel}.jsonl")},
                        default=True)  # fmt: skip
    rig = Rig(engine, directory, ws.id, clock, journeys, policies, channels,
              JourneyEngine(engine, journeys, policies, clock=clock, conditions=conditions,
                            scope_of=channels.app_id),
              Dispatcher(engine, policies, channels, clock=clock))  # fmt: skip
    return rig


def send_to(channel: str, text: str = "hi", nxt: str | None = None, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    if channel == "email":
        content = {"subject": "Hello", "text": text}
    elif channel in ("wechat_oa", "mini_program"):
        content = {"template_id": "TPL", "data": {"thing1": text}}
    node: dict[str, Any] = {"type": "send", "channel": channel, "content": content, **extra}
    if nxt:
        node["next"] = nxt
    return node


def journey(nodes: dict[str, Any], start: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": extra.pop("name", "测试旅程 test journey"), "trigger": {"type": "event", "event": "Signed Up"},
            "start": start or next(iter(nodes)), "nodes": nodes, **extra}  # fmt: skip
