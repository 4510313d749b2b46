"""A journey worker process for the crash and concurrency tests: runs due steps and sends until
nothing is left (or it is killed). Usage: python worker_proc.py DB_URL DATA_DIR CLOCK_ISO [LEASE_S]

It registers "slow_sink", a stand-in provider that writes one line at a time with a pause, so a
SIGKILL lands in the middle of a provider call as often as not.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from quanyu.channels.base import Message, SendResult
from quanyu.channels.configs import ChannelConfigs
from quanyu.channels.registry import AdapterType, register
from quanyu.journeys.clock import ManualClock
from quanyu.journeys.engine import JourneyEngine
from quanyu.journeys.outbox import Dispatcher
from quanyu.journeys.policy import Policies
from quanyu.journeys.saved import SavedJourneys
from quanyu.org.vault import Vault
from quanyu.store import make_engine


class SlowSink:
    type = "slow_sink"
    channel = "sink"
    idempotent = False

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        with open(self.path, "ab") as fh:
            for m in messages:
                fh.write(orjson.dumps({"key": m.key, "profile_id": m.profile_id, "channel": m.channel,
                                       "pid": os.getpid()}) + b"\n")  # fmt: skip
                fh.flush()
                os.fsync(fh.fileno())
                time.sleep(0.0005)
        return [SendResult(m.key, "sent") for m in messages]

    def close(self) -> None:
        return None


def _slow(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> SlowSink:
    return SlowSink(str(settings["path"]))


register(AdapterType("slow_sink", "sink", _slow, "test: slow sink"))


def main() -> None:
    url, data_dir, clock_iso = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    lease = timedelta(seconds=float(sys.argv[4])) if len(sys.argv) > 4 else timedelta(minutes=5)
    engine = make_engine(url)
    clock = ManualClock(datetime.fromisoformat(clock_iso))
    journeys, policies = SavedJourneys(engine), Policies(engine)
    channels = ChannelConfigs(engine, Vault.for_data_dir(data_dir), sink_dir=data_dir / "sink")
    runner = JourneyEngine(engine, journeys, policies, clock=clock)
    dispatcher = Dispatcher(engine, policies, channels, clock=clock, lease=lease)
    idle = 0
    while idle < 3:
        step = runner.run_due(200)
        sent = dispatcher.dispatch(200)
        idle = 0 if step.claimed or sent.claimed or sent.recovered else idle + 1
        if not step.claimed and not sent.claimed:
            time.sleep(0.05)
    engine.dispose()


if __name__ == "__main__":
    main()
