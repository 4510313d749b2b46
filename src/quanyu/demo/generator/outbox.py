"""Writes Segment-spec messages per source and keeps the ground truth beside them.

Every identifier that goes into a message is recorded against the person who sent it, at
the moment it is written, so the ground truth is complete by construction and the person id
itself never has to go near a message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .identifiers import uuid4_text
from .noise import JUNK_IDENTIFIERS
from .sources import LIBRARIES, SOURCES
from .timeline import Timeline

Message = dict[str, Any]
Truth = tuple[str, str, str, str]
# (type, value) or (type, value, app_id) for WeChat openids scoped to one app.
ExternalId = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Who:
    """How one message identifies its sender."""

    person_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    external: tuple[ExternalId, ...] = ()


class Outbox:
    """Collects messages by source key and every identifier used, with its person."""

    def __init__(self, timeline: Timeline, rng: random.Random) -> None:
        self.timeline = timeline
        self._rng = rng
        self.events: dict[str, list[Message]] = {source.key: [] for source in SOURCES}
        self.truth: set[Truth] = set()

    def track(
        self,
        source: str,
        who: Who,
        t: int,
        event: str,
        properties: dict[str, Any],
        context: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
    ) -> Message:
        """A `track` call; `traits` go to `context.traits` as Segment does for track."""
        return self._emit(
            source, who, t, "track", {"event": event, "properties": properties}, context, traits
        )

    def page(
        self,
        source: str,
        who: Who,
        t: int,
        name: str,
        page: dict[str, str],
        context: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> Message:
        """A web `page` view; `page` (url, path, referrer, title) also heads its properties."""
        context = dict(context or {})
        context["page"] = page
        body = {"name": name, "properties": {**page, **(properties or {})}}
        return self._emit(source, who, t, "page", body, context, None)

    def screen(
        self,
        source: str,
        who: Who,
        t: int,
        name: str,
        properties: dict[str, Any],
        context: dict[str, Any] | None = None,
    ) -> Message:
        """An app or mini-program `screen` view."""
        return self._emit(source, who, t, "screen", {"name": name, "properties": properties}, context, None)

    def identify(
        self, source: str, who: Who, t: int, traits: dict[str, Any], context: dict[str, Any] | None = None
    ) -> Message:
        """An `identify` call carrying `traits`."""
        self._record_traits(source, who.person_id, traits)
        return self._emit(source, who, t, "identify", {"traits": traits}, context, None)

    def alias(self, source: str, who: Who, t: int, previous_id: str) -> Message:
        """An `alias` call linking `previous_id` (an anonymous id) to `who.user_id`."""
        self.truth.add((who.person_id, source, "anonymous_id", previous_id))
        return self._emit(source, who, t, "alias", {"previousId": previous_id}, None, None)

    def group(self, source: str, who: Who, t: int, group_id: str, traits: dict[str, Any]) -> Message:
        """A `group` call: the sender joined the group (a WeCom customer chat)."""
        return self._emit(source, who, t, "group", {"groupId": group_id, "traits": traits}, None, None)

    def _emit(
        self,
        source: str,
        who: Who,
        t: int,
        kind: str,
        body: dict[str, Any],
        context: dict[str, Any] | None,
        traits: dict[str, Any] | None,
    ) -> Message:
        message: Message = {
            "type": kind,
            "messageId": uuid4_text(self._rng),
            "timestamp": self.timeline.stamp(t),
        }
        self._identify_sender(message, source, who)
        message.update(body)
        # One library dict per source, shared by its messages: it is constant and this
        # saves a dict per message.
        ctx: dict[str, Any] = {"library": LIBRARIES[source], "locale": "zh-CN"}
        if context:
            ctx.update(context)
        if traits:
            ctx["traits"] = traits
            self._record_traits(source, who.person_id, traits)
        if who.external:
            external = [self._external(source, who.person_id, e) for e in who.external]
            ctx["externalIds"] = external
        message["context"] = ctx
        self.events[source].append(message)
        return message

    def _identify_sender(self, message: Message, source: str, who: Who) -> None:
        if who.user_id is not None:
            message["userId"] = who.user_id
            self.truth.add((who.person_id, source, "user_id", who.user_id))
        if who.anonymous_id is not None:
            message["anonymousId"] = who.anonymous_id
            self.truth.add((who.person_id, source, "anonymous_id", who.anonymous_id))

    def _external(self, source: str, person_id: str, external: ExternalId) -> dict[str, str]:
        kind, value = external[0], external[1]
        self.truth.add((person_id, source, kind, value))
        entry = {"id": value, "type": kind, "collection": "users", "encoding": "none"}
        if len(external) > 2:
            entry["app_id"] = external[2]
        return entry

    def _record_traits(self, source: str, person_id: str, traits: dict[str, Any]) -> None:
        phone = traits.get("phone")
        if phone:
            kind = "phone_masked" if "*" in phone else "phone"
            self.truth.add((person_id, source, kind, phone))
        email = traits.get("email")
        if email:
            self.truth.add((person_id, source, "email", email))

    def ground_truth(self) -> list[Truth]:
        """Sorted truth rows; junk values are shared by strangers, so they map to nobody."""
        return sorted(row for row in self.truth if row[3] not in JUNK_IDENTIFIERS)
