"""Deterministic stitching: merge invariants, checked against a plain reference on random graphs."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.identity.identifiers import BUILTIN_TYPES, IdentifierType
from quanyu.identity.stitch import Graph, build_graph, stitch

TYPES: list[IdentifierType] = list(BUILTIN_TYPES.values())
INDEX = {t.name: i for i, t in enumerate(TYPES)}
# Small value pools so random links collide, share devices and overfill limits.
POOLS = {"user_id": 4, "phone": 4, "anonymous_id": 8, "device_id": 3, "email": 3, "member_card": 2}

Link = tuple[str, str, int]  # key a, key b, seen


def key_type(key: str) -> int:
    return INDEX[key.split(":", 1)[0]]


identifier = st.sampled_from(sorted(POOLS)).flatmap(
    lambda t: st.integers(0, POOLS[t] - 1).map(lambda i: f"{t}:{i}")
)
links_strategy = st.lists(
    st.tuples(identifier, identifier, st.integers(0, 5)).filter(lambda x: x[0] != x[1]), max_size=40
)


def graph_of(links: list[Link], singles: list[str] = ()) -> Graph:  # type: ignore[assignment]
    return build_graph(
        pa.array([a for a, _, _ in links], pa.string()),
        np.array([key_type(a) for a, _, _ in links], dtype=np.int16),
        pa.array([b for _, b, _ in links], pa.string()),
        np.array([key_type(b) for _, b, _ in links], dtype=np.int16),
        np.array([s for _, _, s in links], dtype=np.int64),
        pa.array(list(singles), pa.string()),
        np.array([key_type(k) for k in singles], dtype=np.int16),
        np.zeros(len(singles), dtype=np.int64),
    )


def people(links: list[Link], singles: list[str] = ()) -> frozenset[frozenset[str]]:  # type: ignore[assignment]
    graph = graph_of(links, singles)
    result = stitch(graph, TYPES)
    keys = graph.keys.to_pylist()
    groups: dict[int, set[str]] = defaultdict(set)
    for node, label in enumerate(result.labels.tolist()):
        groups[label].add(keys[node])
    return frozenset(frozenset(g) for g in groups.values())


def anchors(links: list[Link]) -> dict[frozenset[str], str]:
    graph = graph_of(links)
    result = stitch(graph, TYPES)
    keys = graph.keys.to_pylist()
    groups: dict[int, set[str]] = defaultdict(set)
    for node, label in enumerate(result.labels.tolist()):
        groups[label].add(keys[node])
    return {frozenset(groups[label]): keys[node] for label, node in enumerate(result.anchors.tolist())}


def reference(links: list[Link]) -> frozenset[frozenset[str]]:
    """The rule, written plainly: links strongest first (weaker end's priority, then stronger
    end's), then earliest, then by content; refuse a link that would overfill a type."""
    prio = {t.name: t.priority for t in TYPES}
    limit = {t.name: t.max_per_profile for t in TYPES}
    # Shared identifiers (kiosks) first: more than max_shared distinct stronger identifiers of
    # one type → none of their links count.
    caps = {t.name: t.max_shared for t in TYPES}
    neighbours: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in links:
        for x, y in ((a, b), (b, a)):
            if prio[y.split(":")[0]] > prio[x.split(":")[0]]:
                neighbours[x].add(y)
    shared = {
        x for x, ys in neighbours.items()
        if caps[x.split(":")[0]] is not None
        and max(Counter(y.split(":")[0] for y in ys).values()) > caps[x.split(":")[0]]  # type: ignore[operator]
    }  # fmt: skip
    usable = [link for link in links if link[0] not in shared and link[1] not in shared]

    def strength(link: Link) -> tuple[int, int]:
        pa_, pb = prio[link[0].split(":")[0]], prio[link[1].split(":")[0]]
        return min(pa_, pb), max(pa_, pb)

    # Content order for exact ties: the same for any arrival order (the real code hashes).
    ordered = sorted(
        set(usable), key=lambda x: (-strength(x)[0], -strength(x)[1], x[2], tuple(sorted(x[:2])))
    )
    members: dict[str, set[str]] = {}
    for a, b, _ in links:
        members.setdefault(a, {a})
        members.setdefault(b, {b})
    for a, b, _ in ordered:
        ga, gb = members[a], members[b]
        if ga is gb:
            continue
        union = ga | gb
        per_type = Counter(k.split(":")[0] for k in union)
        if any(n > limit[t] for t, n in per_type.items()):
            continue
        for k in union:
            members[k] = union
    return frozenset(frozenset(g) for g in {id(g): g for g in members.values()}.values())


def limits_hold(groups: frozenset[frozenset[str]]) -> bool:
    limit = {t.name: t.max_per_profile for t in TYPES}
    return all(n <= limit[t] for g in groups for t, n in Counter(k.split(":")[0] for k in g).items())


@settings(max_examples=300, deadline=None)
@given(links_strategy)
def test_matches_the_plain_rule_when_no_two_links_tie(links: list[Link]) -> None:
    # Distinct times, so the content tiebreak (hash in the code, sort in the reference) never decides.
    timed = [(a, b, i) for i, (a, b, _) in enumerate(links)]
    assert people(timed) == reference(timed)


@settings(max_examples=200, deadline=None)
@given(links_strategy, st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_people_or_their_ids(links: list[Link], rnd: random.Random) -> None:
    shuffled = links[:]
    rnd.shuffle(shuffled)
    flipped = [(b, a, s) for a, b, s in shuffled]  # a link has no direction
    assert people(links) == people(shuffled) == people(flipped)
    assert anchors(links) == anchors(flipped)


@settings(max_examples=200, deadline=None)
@given(links_strategy)
def test_limits_always_hold(links: list[Link]) -> None:
    assert limits_hold(people(links))


@settings(max_examples=150, deadline=None)
@given(links_strategy)
def test_stitching_is_idempotent(links: list[Link]) -> None:
    # Seeing the same links again (a replayed import, a resent event) changes nothing.
    assert people(links + links) == people(links)


def test_a_shared_device_does_not_merge_two_users() -> None:
    links = [
        ("anonymous_id:a1", "user_id:alice", 1),
        ("anonymous_id:a2", "user_id:bob", 2),
        ("anonymous_id:a1", "device_id:family-ipad", 3),
        ("anonymous_id:a2", "device_id:family-ipad", 4),
        ("anonymous_id:a1", "phone:13800000000", 5),
    ]
    groups = people(links)
    alice = next(g for g in groups if "user_id:alice" in g)
    bob = next(g for g in groups if "user_id:bob" in g)
    assert alice != bob
    assert {"anonymous_id:a1", "device_id:family-ipad", "phone:13800000000"} <= alice  # first seen with Alice
    assert bob == {"user_id:bob", "anonymous_id:a2"}


def test_a_check_in_kiosk_shared_by_guests_links_nobody() -> None:
    # A salon's tablet signs in guests who give only a phone: no limit would stop it joining
    # three of them, so a device seen with two people's phones is shared and links nobody.
    links = [
        ("device_id:kiosk-bj001-01", "phone:13800000001", 1),
        ("device_id:kiosk-bj001-01", "phone:13800000002", 2),
        ("anonymous_id:ticket-1", "phone:13800000001", 3),
    ]
    groups = people(links)
    assert {"phone:13800000001", "anonymous_id:ticket-1"} in groups
    assert {"phone:13800000002"} in groups and {"device_id:kiosk-bj001-01"} in groups
    # One phone on a personal device is nothing special.
    assert {"device_id:my-phone", "phone:13800000003"} in people(
        [("device_id:my-phone", "phone:13800000003", 1)]
    )


def test_the_surviving_id_is_the_earliest_identifier() -> None:
    before = anchors([("anonymous_id:a", "device_id:d", 5), ("user_id:u", "phone:13800000000", 7)])
    # Seen at the same time: the higher-priority identifier (device over anonymous id) anchors.
    assert sorted(before.values()) == ["device_id:d", "user_id:u"]
    # A login joins the two: the union keeps the older person's id, the other redirects.
    after = anchors(
        [
            ("anonymous_id:a", "device_id:d", 5),
            ("user_id:u", "phone:13800000000", 7),
            ("anonymous_id:a", "user_id:u", 9),
        ]
    )
    assert list(after.values()) == ["device_id:d"]


def test_identifiers_seen_alone_are_people_of_their_own() -> None:
    groups = people([("user_id:u", "anonymous_id:a", 1)], singles=["email:x@example.com", "user_id:u"])
    assert groups == frozenset(
        {frozenset({"user_id:u", "anonymous_id:a"}), frozenset({"email:x@example.com"})}
    )


def test_excluded_links_split_people() -> None:
    links = [
        ("user_id:u", "anonymous_id:a", 1),
        ("anonymous_id:a", "device_id:d", 2),
        ("device_id:d", "phone:1", 3),
    ]
    graph = graph_of(links)
    together = stitch(graph, TYPES)
    assert len(together.anchors) == 1
    excluded = np.array([False, True, False])  # an operator said anonymous a ↔ device d is wrong
    apart = stitch(graph, TYPES, excluded=excluded)
    assert len(apart.anchors) == 2
