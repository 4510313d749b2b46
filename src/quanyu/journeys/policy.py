"""The send rules, in one place: consent, suppression, quiet hours, frequency caps, the global
holdout and the kill switch. Every marketing send passes `Gate.check` in the transaction that
queues it; the dispatcher re-reads the kill switch before every provider call.

- **Consent** per (channel, purpose): the latest record about the person (profile) or the
  address (a phone that replied TD) wins; with none, a channel in the workspace's opt-in list
  (default: sms) is closed and any other is open. Transactional sends skip consent.
- **Suppression**: an address on a channel, an address on every channel ("*"), or a profile
  ("*", profile id). Applies to every send, transactional too.
- **Quiet hours** (default 21:00–09:00) in the person's time zone (else the workspace's).
- **Frequency caps**: marketing sends per person per channel per calendar day in the person's
  time zone. Counted with one conditional upsert, so concurrent workers on PostgreSQL can
  never both take the last slot.
"""

from __future__ import annotations

import hashlib
import threading
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select
from sqlalchemy.dialects import postgresql, sqlite

from quanyu.errors import InvalidInput
from quanyu.journeys.clock_time import QuietHours
from quanyu.store.bulk import among
from quanyu.store.engine import reading
from quanyu.store.models import (
    ConsentRecord,
    ConsentState,
    FrequencyCount,
    MessagingPolicy,
    Suppression,
    Workspace,
)

_P = MessagingPolicy.__table__
_CL = ConsentRecord.__table__
_CS = ConsentState.__table__
_SUP = Suppression.__table__
_FC = FrequencyCount.__table__

DEFAULT_QUIET = "21:00-09:00"
DEFAULT_CAPS: dict[str, int] = {"email": 2, "sms": 1, "wechat_oa": 2, "mini_program": 2, "wecom": 1}
DEFAULT_OPT_IN = ("sms",)
DEFAULT_TIMEZONE = "Asia/Shanghai"
# How long a read of the policy (and so the kill switch) may be reused: "stops within seconds".
POLICY_TTL_SECONDS = 1.0


@dataclass(frozen=True)
class Policy:
    workspace_id: str
    timezone: str = DEFAULT_TIMEZONE
    quiet_hours: str = DEFAULT_QUIET
    caps: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    opt_in_channels: tuple[str, ...] = DEFAULT_OPT_IN
    holdout_percent: float = 0.0
    kill_switch: bool = False
    kill_switch_at: datetime | None = None
    kill_switch_by: str | None = None

    @property
    def quiet(self) -> QuietHours | None:
        return QuietHours.parse(self.quiet_hours) if self.quiet_hours else None

    def public(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "quiet_hours": self.quiet_hours, "caps": self.caps,
                "opt_in_channels": list(self.opt_in_channels), "holdout_percent": self.holdout_percent,
                "kill_switch": self.kill_switch,
                "kill_switch_at": self.kill_switch_at.isoformat() if self.kill_switch_at else None,
                "kill_switch_by": self.kill_switch_by}  # fmt: skip


def in_holdout(workspace_id: str, profile_id: str, percent: float) -> bool:
    """The global holdout: a stable hash of the person, the same in every journey and run."""
    if percent <= 0:
        return False
    digest = hashlib.blake2b(f"holdout:{workspace_id}:{profile_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) % 10_000 < round(percent * 100)


class Policies:
    """Read (briefly cached) and change the workspaces' messaging policies."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, Policy]] = {}
        self._guard = threading.Lock()

    def get(self, workspace_id: str, fresh: bool = False) -> Policy:
        now = _time.monotonic()
        with self._guard:
            hit = self._cache.get(workspace_id)
        if hit is not None and not fresh and now - hit[0] < POLICY_TTL_SECONDS:
            return hit[1]
        with reading(self.engine) as conn:
            row = conn.execute(select(_P).where(_P.c.workspace_id == workspace_id)).first()
            zone = conn.execute(
                select(Workspace.timezone).where(Workspace.id == workspace_id)
            ).scalar_one_or_none()
        policy = Policy(workspace_id, timezone=zone or DEFAULT_TIMEZONE)
        if row is not None:
            policy = replace(policy, quiet_hours=row.quiet_hours, caps=dict(row.caps),
                             opt_in_channels=tuple(row.opt_in_channels), holdout_percent=row.holdout_percent,
                             kill_switch=row.kill_switch, kill_switch_at=row.kill_switch_at,
                             kill_switch_by=row.kill_switch_by)  # fmt: skip
        with self._guard:
            self._cache[workspace_id] = (now, policy)
        return policy

    def update(self, workspace_id: str, changes: dict[str, Any]) -> Policy:
        allowed = {"quiet_hours", "caps", "opt_in_channels", "holdout_percent"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"未知设置 / unknown policy settings: {', '.join(sorted(unknown))}",
                               code="invalid_policy")  # fmt: skip
        current = self.get(workspace_id, fresh=True)
        values = {"quiet_hours": current.quiet_hours, "caps": current.caps,
                  "opt_in_channels": list(current.opt_in_channels), "holdout_percent": current.holdout_percent}  # fmt: skip
        values.update(changes)
        _validate(values)
        self._write(workspace_id, values | {"kill_switch": current.kill_switch, "kill_switch_at": current.kill_switch_at,
                                            "kill_switch_by": current.kill_switch_by})  # fmt: skip
        return self.get(workspace_id, fresh=True)

    def set_kill_switch(self, workspace_id: str, on: bool, actor: str) -> Policy:
        """Stop (or resume) every send of the workspace. Workers see it within POLICY_TTL_SECONDS."""
        current = self.get(workspace_id, fresh=True)
        values = {"quiet_hours": current.quiet_hours, "caps": current.caps,
                  "opt_in_channels": list(current.opt_in_channels), "holdout_percent": current.holdout_percent,
                  "kill_switch": on, "kill_switch_at": datetime.now(UTC), "kill_switch_by": actor}  # fmt: skip
        self._write(workspace_id, values)
        return self.get(workspace_id, fresh=True)

    def _write(self, workspace_id: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(_P).values(workspace_id=workspace_id, updated_at=datetime.now(UTC), **values)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["workspace_id"], set_={k: stmt.excluded[k] for k in [*values, "updated_at"]}))  # fmt: skip
        with self._guard:
            self._cache.pop(workspace_id, None)


def _validate(values: dict[str, Any]) -> None:
    quiet = values["quiet_hours"]
    if quiet:
        try:
            QuietHours.parse(quiet)
        except ValueError as exc:
            raise InvalidInput(
                f"免打扰时段无效 / invalid quiet_hours {quiet!r}: {exc}", code="invalid_policy"
            ) from None
    caps = values["caps"]
    if not isinstance(caps, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                             for v in caps.values()):  # fmt: skip
        raise InvalidInput("频次上限须为 渠道→非负整数 / caps must map channels to whole numbers ≥ 0",
                           code="invalid_policy")  # fmt: skip
    percent = values["holdout_percent"]
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 <= percent <= 50:
        raise InvalidInput("全局对照组比例须在 0–50 / holdout_percent must be 0–50", code="invalid_policy")


# ---------------------------------------------------------------------------------------------
# Consent and suppression


@dataclass(frozen=True)
class ConsentInput:
    subject_type: str  # profile | address
    subject: str
    channel: str  # a channel or "*"
    purpose: str  # marketing, or "*"
    granted: bool
    source: str
    at: datetime
    evidence: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None


def record_consent(conn: Connection, workspace_id: str, records: Sequence[ConsentInput]) -> int:
    """Append consent records (a repeat of a `dedupe_key` is ignored) and move the current
    state forward where a record is newer. Returns how many were new."""
    now = datetime.now(UTC)
    new = 0
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for r in records:
        row = {"workspace_id": workspace_id, "subject_type": r.subject_type, "subject": r.subject,
               "channel": r.channel, "purpose": r.purpose, "granted": r.granted, "source": r.source,
               "at": r.at, "recorded_at": now, "evidence": r.evidence, "dedupe_key": r.dedupe_key}  # fmt: skip
        done = conn.execute(
            insert(_CL).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"])
        ).rowcount
        if not done:
            continue
        new += 1
        state = {k: row[k] for k in ("workspace_id", "subject_type", "subject", "channel", "purpose",
                                     "granted", "source", "at")}  # fmt: skip
        stmt = insert(_CS).values(**state)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["workspace_id", "subject_type", "subject", "channel", "purpose"],
            set_={"granted": stmt.excluded.granted, "source": stmt.excluded.source, "at": stmt.excluded.at},
            where=_CS.c.at <= stmt.excluded.at,
        ))  # fmt: skip
    return new


def consent_rows(conn: Connection, workspace_id: str, subjects: Iterable[str]) -> dict[str, list[Any]]:
    """Current consent rows of these subjects (profile ids and addresses), by subject."""
    wanted = sorted(set(subjects))
    found: dict[str, list[Any]] = {}
    for i in range(0, len(wanted), 2000):
        chunk = wanted[i : i + 2000]
        stmt = select(_CS).where(_CS.c.workspace_id == workspace_id, among(conn, _CS.c.subject, chunk))
        for row in conn.execute(stmt):
            found.setdefault(row.subject, []).append(row)
    return found


def consented(rows: Sequence[Any], channel: str, purpose: str, opt_in: Sequence[str]) -> tuple[bool, str]:
    """(allowed, why) from the consent rows of the person and the address."""
    relevant = [r for r in rows if r.channel in (channel, "*") and r.purpose in (purpose, "*")]
    if not relevant:
        return (channel not in opt_in, "no_consent" if channel in opt_in else "default")
    latest = max(relevant, key=lambda r: (r.at, r.channel != "*", r.purpose != "*"))
    return (bool(latest.granted), "consent_withdrawn" if not latest.granted else "granted")


def suppressed(conn: Connection, workspace_id: str, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (channel, address) pairs, or ("*", address / profile id), are suppressed."""
    wanted = set(pairs)
    addresses = sorted({a for _c, a in wanted})
    hits: set[tuple[str, str]] = set()
    for i in range(0, len(addresses), 2000):
        chunk = addresses[i : i + 2000]
        rows = conn.execute(select(_SUP.c.channel, _SUP.c.address)
                            .where(_SUP.c.workspace_id == workspace_id, among(conn, _SUP.c.address, chunk)))  # fmt: skip
        hits.update(hit for r in rows if (hit := (r.channel, r.address)) in wanted)
    return hits


def suppress(
    conn: Connection, workspace_id: str, channel: str, address: str, reason: str, source: str
) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_SUP).values(workspace_id=workspace_id, channel=channel, address=address, reason=reason,
                               source=source, at=datetime.now(UTC))  # fmt: skip
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["workspace_id", "channel", "address"]))


def unsuppress(conn: Connection, workspace_id: str, channel: str, address: str) -> int:
    return conn.execute(_SUP.delete().where(and_(_SUP.c.workspace_id == workspace_id, _SUP.c.channel == channel,
                                                 _SUP.c.address == address))).rowcount  # fmt: skip


def list_suppressions(engine: Engine, workspace_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        rows = conn.execute(select(_SUP).where(_SUP.c.workspace_id == workspace_id)
                            .order_by(_SUP.c.at.desc()).limit(limit)).all()  # fmt: skip
    return [{"channel": r.channel, "address": r.address, "reason": r.reason, "source": r.source,
             "at": r.at.isoformat()} for r in rows]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Frequency caps


def take_cap(conn: Connection, workspace_id: str, profile_id: str, channel: str, day: str, cap: int) -> bool:
    """Count one send against today's cap; False (and nothing counted) when it is used up.

    One statement: insert the day's counter at 1, or add one where it is still under the cap.
    PostgreSQL locks the counter row for the rest of the transaction, so a second worker's
    upsert waits and then sees the new count."""
    if cap <= 0:
        return False
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    base = insert(_FC).values(
        workspace_id=workspace_id, profile_id=profile_id, channel=channel, day=day, count=1
    )
    stmt = base.on_conflict_do_update(
        index_elements=["workspace_id", "profile_id", "channel", "day"],
        set_={"count": _FC.c.count + 1},
        where=_FC.c.count < cap,
    ).returning(_FC.c.count)
    return conn.execute(stmt).first() is not None


def cap_counts(engine: Engine, workspace_id: str, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(_FC).where(_FC.c.workspace_id == workspace_id, _FC.c.profile_id.in_(profile_ids))
        )
        return [
            {"profile_id": r.profile_id, "channel": r.channel, "day": r.day, "count": r.count} for r in rows
        ]
