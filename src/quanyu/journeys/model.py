"""The journey language: a trigger, a graph of nodes, a goal, exit criteria and settings.

A journey is JSON, validated here (pydantic) and saved as immutable versions; an enrollment
runs on the version it entered with. Nodes form a directed acyclic graph rooted at `start`:
every node names the node(s) that follow it, and a missing `next` ends the journey there.

    {"name": "欢迎邮件 Welcome email",
     "trigger": {"type": "event", "event": "Signed Up"},
     "start": "welcome",
     "nodes": {"welcome": {"type": "send", "channel": "email",
                           "content": {"subject": "欢迎 {{ profile.first_name }}", "text": "…"}}}}

docs/journeys.md describes every field; docs/examples/journeys/ has one file per feature.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from quanyu.errors import InvalidInput
from quanyu.segments.definition import Definition, PropertyFilter, parse_definition, path_of

LANGUAGE_VERSION = 1
MAX_NODES = 200
NODE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SEND_CHANNELS = ("email", "sms", "wechat_oa", "mini_program", "wecom", "webhook", "sink")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Model):
    """A span of time: any of days, hours, minutes, seconds (summed)."""

    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=100_000)
    minutes: int = Field(default=0, ge=0, le=1_000_000)
    seconds: int = Field(default=0, ge=0, le=10_000_000)

    @property
    def delta(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.seconds)

    @model_validator(mode="after")
    def _positive(self) -> Duration:
        if self.delta <= timedelta(0):
            raise ValueError("a duration must be longer than zero (时长须大于零)")
        return self


def _clock(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time of day HH:MM, got {value!r} (时间格式应为 HH:MM)") from None


ClockTime = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]


# ---------------------------------------------------------------------------------------------
# Triggers


class EventTrigger(_Model):
    """Enter when the person does `event` (a track event name), optionally with property tests."""

    type: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)


class SegmentTrigger(_Model):
    """Enter when the person enters (or exits) a saved segment."""

    type: Literal["segment"]
    segment_id: str = Field(min_length=1, max_length=64)
    on: Literal["entered", "exited"] = "entered"


class DateTrigger(_Model):
    """Enter on a date held in a profile field: every year on its anniversary (`birthday`,
    membership anniversary), or once `days_after` it (30 days after `last_purchase_at`).
    Checked daily at `at` in the workspace's time zone; `days_before` moves an anniversary
    trigger earlier (a birthday coupon three days ahead)."""

    type: Literal["date"]
    field: str = Field(min_length=1, max_length=80)
    anniversary: bool = False
    days_before: int = Field(default=0, ge=0, le=60)
    days_after: int | None = Field(default=None, ge=0, le=3650)
    at: ClockTime = "10:00"
    segment_id: str | None = None  # only people in this segment

    @model_validator(mode="after")
    def _one_kind(self) -> DateTrigger:
        if self.anniversary == (self.days_after is not None):
            raise ValueError("set anniversary: true or days_after: N (择一：周年或 N 天后)")
        _clock(self.at)
        return self


class ScheduleTrigger(_Model):
    """Enter everyone in a segment at a time: once (`once`, an ISO datetime) or recurring
    (`every` day / week / month at `at` in the workspace's time zone)."""

    type: Literal["schedule"]
    segment_id: str = Field(min_length=1, max_length=64)
    once: datetime | None = None
    every: Literal["day", "week", "month"] | None = None
    at: ClockTime = "10:00"
    weekday: int = Field(default=1, ge=1, le=7)  # for every: week (1 = Monday)
    day: int = Field(default=1, ge=1, le=28)  # for every: month

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleTrigger:
        if (self.once is None) == (self.every is None):
            raise ValueError("set once (a time) or every (day/week/month) (择一：单次或周期)")
        if self.once is not None and self.once.tzinfo is None:
            raise ValueError("once needs a time zone offset, e.g. 2026-12-01T10:00:00+08:00 (需带时区)")
        _clock(self.at)
        return self


class WechatTrigger(_Model):
    """Enter on an official-account follow or a parametric QR code scan, optionally only for
    one scene (`scene`) or scenes starting with `scene_prefix` (a campaign's codes)."""

    type: Literal["wechat"]
    on: Literal["follow", "scan", "follow_or_scan"] = "follow"
    scene: str | None = Field(default=None, max_length=64)
    scene_prefix: str | None = Field(default=None, max_length=64)


Trigger = Annotated[
    EventTrigger | SegmentTrigger | DateTrigger | ScheduleTrigger | WechatTrigger, Field(discriminator="type")
]

# The event names a WeChat trigger listens to (the connectors' vocabulary).
WECHAT_EVENTS = {"follow": ("Official Account Followed",), "scan": ("QR Scanned",),
                 "follow_or_scan": ("Official Account Followed", "QR Scanned")}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Nodes


class _Node(_Model):
    label: str | None = Field(default=None, max_length=200)

    def targets(self) -> Iterator[tuple[str, str]]:
        """(field, node id) of every node this one leads to."""
        for name in ("next",):
            value = getattr(self, name, None)
            if value is not None:
                yield name, value


class WaitNode(_Node):
    """Wait a duration, or until a time of day in the person's time zone (`until`)."""

    type: Literal["wait"]
    duration: Duration | None = None
    until: ClockTime | None = None
    next: str | None = None

    @model_validator(mode="after")
    def _one(self) -> WaitNode:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs duration or until (择一：时长或时刻)")
        if self.until is not None:
            _clock(self.until)
        return self


class WaitForEventNode(_Node):
    """Wait until the person does `event`; after `timeout` go to `timeout_next` instead."""

    type: Literal["wait_for_event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    timeout: Duration
    next: str | None = None
    timeout_next: str | None = None

    def targets(self) -> Iterator[tuple[str, str]]:
        yield from super().targets()
        if self.timeout_next is not None:
            yield "timeout_next", self.timeout_next


class ConditionNode(_Node):
    """Branch on any segment condition about the person (the segment language's group)."""

    type: Literal["condition"]
    if_: dict[str, Any] = Field(alias="if")
    yes: str | None = None
    no: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("if_")
    @classmethod
    def _definition(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_definition(value)
        except InvalidInput as exc:  # the segment language's own message, at this node's path
            raise ValueError(exc.message) from None
        return value

    @property
    def definition(self) -> Definition:
        return parse_definition(self.if_)

    def targets(self) -> Iterator[tuple[str, str]]:
        for name in ("yes", "no"):
            value = getattr(self, name)
            if value is not None:
                yield name, value


class Arm(_Model):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    percent: float = Field(gt=0, le=100)
    next: str | None = None


class SplitNode(_Node):
    """A/B/n split by percentage. Assignment is sticky: a hash of (journey, node, person), so
    re-entering, retrying or re-running lands in the same arm. `control` percent of people go
    to the control arm: they receive nothing more from this journey, and their goal
    conversions are the baseline for lift."""

    type: Literal["split"]
    arms: list[Arm] = Field(min_length=1, max_length=10)
    control: float = Field(default=0, ge=0, lt=100)

    @model_validator(mode="after")
    def _hundred(self) -> SplitNode:
        total = sum(a.percent for a in self.arms) + self.control
        if abs(total - 100) > 1e-6:
            raise ValueError(
                f"arm and control percentages add up to {total:g}, not 100 (各组比例之和须为 100)"
            )
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names) or "control" in names:
            raise ValueError("arm names must be unique and not 'control' (分组名须唯一)")
        return self

    def targets(self) -> Iterator[tuple[str, str]]:
        for i, arm in enumerate(self.arms):
            if arm.next is not None:
                yield f"arms[{i}].next", arm.next


class SendNode(_Node):
    """Send a message on a channel. `content` is channel-shaped (docs/journeys.md) and may use
    template variables; `via` names a channel configuration (default: the workspace's default
    for the channel). Marketing sends pass consent, suppression, quiet hours and frequency caps;
    transactional ones only suppression."""

    type: Literal["send"]
    channel: Literal["email", "sms", "wechat_oa", "mini_program", "wecom", "webhook", "sink"]
    via: str | None = Field(default=None, max_length=64)
    purpose: Literal["marketing", "transactional"] = "marketing"
    content: dict[str, Any]
    coupon: dict[str, Any] | None = None  # {"code": "...", "value": ..., "expires_at": ...}
    next: str | None = None


class TagNode(_Node):
    type: Literal["tag"]
    add: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=20)
    remove: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    next: str | None = None

    @model_validator(mode="after")
    def _some(self) -> TagNode:
        if not self.add and not self.remove:
            raise ValueError("a tag step adds or removes at least one tag (至少增删一个标签)")
        return self


class SetTraitNode(_Node):
    type: Literal["set_trait"]
    traits: dict[str, str | int | float | bool | None] = Field(min_length=1, max_length=50)
    next: str | None = None


class LeadScoreNode(_Node):
    type: Literal["lead_score"]
    delta: int = Field(ge=-1000, le=1000)
    reason: str = Field(default="", max_length=200)
    next: str | None = None


class TaskNode(_Node):
    """A task for a sales rep or store guide (the person's own guide when `assignee` is
    "guide"), due after `due_in`."""

    type: Literal["task"]
    assignee: Literal["guide", "sales"] | str = "guide"
    title: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)
    due_in: Duration | None = None
    next: str | None = None


class WebhookNode(_Node):
    """Call a webhook with a JSON body (template variables allowed in string values)."""

    type: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2000)
    body: dict[str, Any] = Field(default_factory=dict)
    via: str | None = Field(default=None, max_length=64)  # a webhook channel config (signing secret)
    next: str | None = None


class ExitNode(_Node):
    type: Literal["exit"]


Node = Annotated[
    WaitNode
    | WaitForEventNode
    | ConditionNode
    | SplitNode
    | SendNode
    | TagNode
    | SetTraitNode
    | LeadScoreNode
    | TaskNode
    | WebhookNode
    | ExitNode,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------------------------
# Goal, exit criteria, settings


class Goal(_Model):
    """A conversion: the person does `event` within `within_days` of entering. With `exit`
    (default) a converted person leaves the journey at once."""

    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    within_days: int = Field(default=7, ge=1, le=365)
    exit: bool = True


class ExitCriterion(_Model):
    """Leave the journey when the person does `event` (or leaves segment `segment_id`):
    `when` "immediately", or at the end of the step they are on ("step_end": a pending wait
    finishes first, then they leave instead of going on)."""

    event: str | None = Field(default=None, min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    segment_exited: str | None = Field(default=None, min_length=1, max_length=64)
    when: Literal["immediately", "step_end"] = "immediately"

    @model_validator(mode="after")
    def _one(self) -> ExitCriterion:
        if (self.event is None) == (self.segment_exited is None):
            raise ValueError("an exit criterion names event or segment_exited (择一：事件或离开分群)")
        return self


class Reentry(_Model):
    """never: once per person ever; after_exit: again once the previous enrollment ended;
    always: even while one is running. `min_interval` spaces entries out in every mode."""

    mode: Literal["never", "after_exit", "always"] = "never"
    min_interval: Duration | None = None


class Settings(_Model):
    reentry: Reentry = Field(default_factory=Reentry)
    # At a send step over the person's daily cap for the channel: skip the send and go on,
    # hold until the person's next day and try again, or drop the person from the journey.
    frequency_cap: Literal["skip", "hold", "drop"] = "skip"
    # At a marketing send step in quiet hours: hold until they end, or cancel this send.
    quiet_hours: Literal["hold", "cancel"] = "hold"
    # Whether the workspace's global holdout group is kept out of this journey.
    holdout: bool = True


class Journey(_Model):
    version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    trigger: Trigger
    start: str
    nodes: dict[str, Node] = Field(min_length=1, max_length=MAX_NODES)
    goal: Goal | None = None
    exit: list[ExitCriterion] = Field(default_factory=list, max_length=10)
    settings: Settings = Field(default_factory=Settings)

    @model_validator(mode="after")
    def _graph(self) -> Journey:
        problems = graph_problems(self)
        if problems:  # parse_journey reports each with its path; direct construction still refuses
            raise ValueError(problems[0][1])
        return self

    def events_of_interest(self) -> set[str]:
        """Every event name this journey reacts to (trigger, waits, goal, exit criteria)."""
        names: set[str] = set()
        if isinstance(self.trigger, EventTrigger):
            names.add(self.trigger.event)
        if isinstance(self.trigger, WechatTrigger):
            names.update(WECHAT_EVENTS[self.trigger.on])
        for node in self.nodes.values():
            if isinstance(node, WaitForEventNode):
                names.add(node.event)
        if self.goal is not None:
            names.add(self.goal.event)
        names.update(c.event for c in self.exit if c.event)
        return names


def graph_problems(journey: Journey) -> list[tuple[str, str]]:
    """(path, message) of everything wrong with the graph: ids, start, targets, loops, orphans."""
    problems: list[tuple[str, str]] = []
    for node_id in journey.nodes:
        if not NODE_ID.match(node_id):
            problems.append((f"nodes.{node_id}", f"node id {node_id!r}: letters, digits, _ and - only, up to 64 "
                                                 "(节点 id 无效)"))  # fmt: skip
    if journey.start not in journey.nodes:
        problems.append(("start", f"start {journey.start!r} is not a node (起始节点不存在)"))
    for node_id, node in journey.nodes.items():
        for field, target in node.targets():
            if target not in journey.nodes:
                problems.append((f"nodes.{node_id}.{field}", f"no node {target!r} (目标节点不存在)"))
    if problems:
        return problems
    try:
        order = topological(journey)
    except _Loop as loop:
        return [(f"nodes.{loop.node}", str(loop))]
    for node_id in sorted(set(journey.nodes) - set(order)):
        problems.append((f"nodes.{node_id}", f"not reachable from start {journey.start!r} (无法从起点到达)"))
    return problems


class _Loop(ValueError):
    def __init__(self, node: str, message: str) -> None:
        super().__init__(message)
        self.node = node


def topological(journey: Journey) -> list[str]:
    """The nodes reachable from start in an order where every node comes before those it leads
    to; ValueError on a cycle (a journey must always move forward)."""
    state: dict[str, int] = {}
    order: list[str] = []

    def visit(node_id: str, trail: tuple[str, ...]) -> None:
        mark = state.get(node_id)
        if mark == 2:
            return
        if mark == 1:
            loop = " → ".join((*trail[trail.index(node_id) :], node_id))
            raise _Loop(node_id, f"the journey loops: {loop} (旅程不能成环)")
        state[node_id] = 1
        for _field, target in journey.nodes[node_id].targets():
            visit(target, (*trail, node_id))
        state[node_id] = 2
        order.append(node_id)

    visit(journey.start, ())
    return order[::-1]


def parse_journey(data: Mapping[str, Any] | Journey) -> Journey:
    """A validated journey; InvalidInput `invalid_journey` with the JSON path of each problem."""
    if isinstance(data, Journey):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput("旅程定义须为 JSON 对象 / a journey is a JSON object", code="invalid_journey",
                           details=[{"path": "(root)", "message": "a journey is a JSON object"}])  # fmt: skip
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        graph = _graph_of(data) if all(e["loc"] == () for e in errors) else None
        found = graph or [(_path(e["loc"]), str(e["msg"]).removeprefix("Value error, ")) for e in errors[:10]]
        raise InvalidInput(
            f"旅程定义无效 / invalid journey at {found[0][0]}: {found[0][1]}",
            code="invalid_journey",
            details=[{"path": path, "message": message} for path, message in found[:10]],
        ) from None
    return journey


NODE_TYPES = frozenset({"wait", "wait_for_event", "condition", "split", "send", "tag", "set_trait", "lead_score",
                        "task", "webhook", "exit"})  # fmt: skip
TRIGGER_TYPES = frozenset({"event", "segment", "date", "schedule", "wechat"})


def _path(loc: tuple[Any, ...]) -> str:
    """A JSON path without the union tag pydantic puts after a node id or `trigger`
    (`nodes.a.send.channel` is `nodes.a.channel`)."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "nodes" and parts[2] in NODE_TYPES:
        del parts[2]
    elif len(parts) >= 3 and parts[0] == "trigger" and parts[1] in TRIGGER_TYPES:
        del parts[1]
    return path_of(parts)


def _graph_of(data: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """The graph's problems with their paths, when they are what refused the journey."""
    try:
        nodes = {k: _NODE.validate_python(v) for k, v in dict(data["nodes"]).items()}
        return graph_problems(Journey.model_construct(**{**data, "nodes": nodes})) or None
    except Exception:
        return None


_NODE: TypeAdapter[Any] = TypeAdapter(Node)


def json_schema() -> dict[str, Any]:
    return Journey.model_json_schema(by_alias=True)
