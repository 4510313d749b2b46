"""Deterministic stitching: identifiers linked by shared records → one component per person.

The graph's nodes are normalised identifiers; a link says two identifiers were seen on the same
record (event, order, form). People are the connected components, with one rule on top: a
person never holds more identifiers of a type than the type allows (one user_id, five devices,
…). When a link would break that, the lowest-priority link is dropped instead of collapsing
two people into one.

Speed comes from doing the common case in bulk: plain connected components (scipy) first; only
the few components that break a limit (shared devices, hubs) are re-stitched link by link, in
a canonical order (strongest link first, then earliest, then by content hash), so the result
depends on the set of links and never on the order they arrived in.

Profile ids are minted from each component's *anchor*: its earliest-seen identifier (ties: the
higher priority, then the content hash). When two people merge, the anchor of the union is one
of the two anchors, so one id survives and the other redirects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from quanyu.identity.identifiers import IdentifierType


@dataclass(frozen=True)
class Graph:
    """Identifiers as integer nodes, links as integer pairs (the string→int mapping done)."""

    keys: pa.Array  # node → identifier key ("phone:13800000000")
    types: np.ndarray  # node → index into the type table
    first_seen: np.ndarray  # node → earliest time seen (int64, e.g. epoch micros)
    src: np.ndarray  # link → node
    dst: np.ndarray  # link → node
    seen: np.ndarray  # link → earliest time the link was seen


@dataclass(frozen=True)
class Stitched:
    labels: np.ndarray  # node → component number (0..n_components-1)
    anchors: np.ndarray  # component → anchor node
    rejected: np.ndarray  # indices of links dropped to keep the per-type limits
    restitched_components: int  # components that needed the link-by-link pass
    shared: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # hub nodes


def build_graph(
    a_keys: pa.Array,
    a_types: np.ndarray,
    b_keys: pa.Array,
    b_types: np.ndarray,
    seen: np.ndarray,
    extra_keys: pa.Array | None = None,
    extra_types: np.ndarray | None = None,
    extra_seen: np.ndarray | None = None,
) -> Graph:
    """Map link endpoints (identifier keys) to integer nodes.

    `extra_*` are identifiers seen without a partner (a record with a single identifier): they
    are nodes of their own.
    """
    parts = [a_keys, b_keys] + ([extra_keys] if extra_keys is not None else [])
    chunks = [c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    all_keys = pa.chunked_array([c.cast(pa.large_string()) for c in chunks], type=pa.large_string())
    codes, uniques = pd.factorize(pd.array(all_keys, dtype="string[pyarrow]"), use_na_sentinel=False)
    n_links = len(a_keys)
    src = codes[:n_links].astype(np.int64, copy=False)
    dst = codes[n_links : 2 * n_links].astype(np.int64, copy=False)
    type_parts = [a_types, b_types] + ([extra_types] if extra_types is not None else [])
    seen_parts = [seen, seen] + ([extra_seen] if extra_seen is not None else [])
    all_types = np.concatenate(type_parts).astype(np.int16, copy=False)
    all_seen = np.concatenate(seen_parts).astype(np.int64, copy=False)
    n_nodes = len(uniques)
    node_types = np.empty(n_nodes, dtype=np.int16)
    node_types[codes] = all_types  # one type per key (the key starts with its type)
    node_first = np.full(n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(node_first, codes, all_seen)
    keys = pa.array(uniques)  # zero-copy: the factorized uniques are Arrow already
    return Graph(keys, node_types, node_first, src, dst, np.asarray(seen, dtype=np.int64))


def stitch(graph: Graph, types: Sequence[IdentifierType], excluded: np.ndarray | None = None) -> Stitched:
    """Connected components under the per-type limits. `excluded` marks links an operator
    said are wrong (unmerge): they never connect anything."""
    n = len(graph.types)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return Stitched(empty, empty, empty, 0)
    limits = np.array([t.max_per_profile for t in types], dtype=np.int64)
    priorities = np.array([t.priority for t in types], dtype=np.int64)
    shared = _shared_nodes(graph, types, priorities, excluded)
    if len(shared):
        is_shared = np.zeros(n, dtype=bool)
        is_shared[shared] = True
        hub_links = is_shared[graph.src] | is_shared[graph.dst]
        excluded = hub_links if excluded is None else excluded | hub_links
    keep = None if excluded is None else ~excluded
    src, dst = (graph.src, graph.dst) if keep is None else (graph.src[keep], graph.dst[keep])
    labels = _components(n, src, dst)

    # Which components break a limit? Count identifiers per (component, type) in one pass.
    over = _jit(_over_limit)(labels, graph.types, np.minimum(limits, 254), int(labels.max()) + 1)
    rejected = np.empty(0, dtype=np.int64)
    bad = np.flatnonzero(over)
    if len(bad):
        labels, rejected = _restitch(graph, keep, labels, bad, limits, priorities)
    labels = _renumber(labels)
    return Stitched(labels, _anchors(graph, labels, priorities), rejected, len(bad), shared)


def _shared_nodes(
    graph: Graph, types: Sequence[IdentifierType], priorities: np.ndarray, excluded: np.ndarray | None
) -> np.ndarray:
    """Identifiers of a type with `max_shared`, seen with more than that many distinct
    identifiers of one stronger type (a salon's check-in tablet shared by its guests).

    Cheap in the common case: only nodes with more links than the threshold can qualify, so
    distinct neighbours are counted just for those few.
    """
    caps = np.array([t.max_shared if t.max_shared is not None else -1 for t in types], dtype=np.int64)
    if not (caps >= 0).any() or len(graph.src) == 0:
        return np.empty(0, dtype=np.int64)
    src, dst = graph.src, graph.dst
    if excluded is not None:
        src, dst = src[~excluded], dst[~excluded]
    n = len(graph.types)
    has_cap = (caps >= 0)[graph.types]
    # Degrees of capped nodes only: one count over the link ends that are capped nodes.
    ends = np.concatenate([src[has_cap[src]], dst[has_cap[dst]]])
    degree = np.bincount(ends, minlength=n)
    lowest = int(caps[caps >= 0].min())
    over = np.flatnonzero(degree > lowest)
    over = over[degree[over] > caps[graph.types[over]]]
    if len(over) == 0:
        return np.empty(0, dtype=np.int64)
    candidate = np.zeros(n, dtype=bool)
    candidate[over] = True
    # Only the few links at a candidate, each seen from the candidate's side.
    touch = candidate[src] | candidate[dst]
    src, dst = src[touch], dst[touch]
    node = np.concatenate([src, dst])
    other = np.concatenate([dst, src])
    mine = candidate[node] & (priorities[graph.types[other]] > priorities[graph.types[node]])
    node, other = node[mine], other[mine]
    pairs = np.unique(node.astype(np.int64) * n + other)
    node, other = pairs // n, pairs % n
    n_types = len(types)
    counted, idx = np.unique(node, return_inverse=True)
    per_type = np.zeros((len(counted), n_types), dtype=np.int64)
    np.add.at(per_type, (idx.reshape(-1), graph.types[other]), 1)
    return counted[per_type.max(axis=1, initial=0) > caps[graph.types[counted]]]


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    matrix = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(matrix, directed=False)
    return labels.astype(np.int64, copy=False)


def _restitch(
    graph: Graph,
    keep: np.ndarray | None,
    labels: np.ndarray,
    bad: np.ndarray,
    limits: np.ndarray,
    priorities: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Inside the components that break a limit, take links in canonical order and refuse any
    that would break one: strongest first (the weaker end's priority, then the stronger end's),
    then earliest, then by a content hash of the endpoints.

    Only the links of the over-limit components are sorted and walked (a few percent of the
    graph); the walk itself is compiled (`_walk`), since it is inherently one link at a time.
    """
    in_bad = np.zeros(labels.max() + 1, dtype=bool)
    in_bad[bad] = True
    touches_bad = in_bad[labels[graph.src]]
    links = np.flatnonzero(touches_bad if keep is None else keep & touches_bad)
    nodes = np.flatnonzero(in_bad[labels])
    local = np.full(len(labels), -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    src, dst = local[graph.src[links]], local[graph.dst[links]]
    ps, pd_ = priorities[graph.types[graph.src[links]]], priorities[graph.types[graph.dst[links]]]
    weak, strong = np.minimum(ps, pd_), np.maximum(ps, pd_)
    node_hash = _hash_keys(graph.keys, nodes)
    hs, hd = node_hash[src], node_hash[dst]
    tiebreak = np.minimum(hs, hd) * np.uint64(0x9E3779B97F4A7C15) ^ np.maximum(hs, hd)
    order = np.lexsort((tiebreak, graph.seen[links], -strong, -weak))
    roots, refused = _jit(_walk)(
        src[order], dst[order], graph.types[nodes].astype(np.int64), limits.astype(np.int64)
    )
    new_labels = labels.copy()
    new_labels[nodes] = labels.max() + 1 + roots
    return new_labels, np.sort(links[order][refused])


_Kernel = TypeVar("_Kernel", bound=Callable[..., Any])


@functools.cache
def _jit(kernel: _Kernel) -> _Kernel:
    """A loop that numpy cannot express in bulk, compiled by numba on first use and cached on
    disk, so importing this module (every CLI command does) does not pay for numba."""
    from numba import njit

    return cast(_Kernel, njit(cache=True, nogil=True)(kernel))


def _over_limit(labels: np.ndarray, node_types: np.ndarray, limits: np.ndarray, n_labels: int) -> np.ndarray:
    """Components holding more identifiers of some type than its limit. Counts saturate at
    limit + 1 in one byte per (component, type): limits are at most 100, and a byte table is
    an eighth of the memory a bincount over (component, type) pairs would touch."""
    n_types = len(limits)
    counts = np.zeros((n_labels, n_types), dtype=np.uint8)
    over = np.zeros(n_labels, dtype=np.bool_)
    for v in range(len(labels)):
        label, t = labels[v], node_types[v]
        c = counts[label, t]
        if c <= limits[t]:
            counts[label, t] = c + 1
            if c + 1 > limits[t]:
                over[label] = True
    return over


def _walk(
    src: np.ndarray, dst: np.ndarray, node_types: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the links in order, refusing a link whose union would hold more
    identifiers of some type than its limit. Returns each node's root and the positions of
    the refused links. Compiled: this loop is the one part of stitching that cannot be done
    in bulk, and in Python it cost more than scipy's whole connected-components pass."""
    n, n_types = len(node_types), len(limits)
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    counts = np.zeros((n, n_types), dtype=np.int64)
    for v in range(n):
        counts[v, node_types[v]] = 1
    refused = np.empty(len(src), dtype=np.int64)
    n_refused = 0
    for i in range(len(src)):
        ru = src[i]
        while parent[ru] != ru:
            parent[ru] = parent[parent[ru]]  # path halving
            ru = parent[ru]
        rv = dst[i]
        while parent[rv] != rv:
            parent[rv] = parent[parent[rv]]
            rv = parent[rv]
        if ru == rv:
            continue
        over = False
        for t in range(n_types):
            if counts[ru, t] + counts[rv, t] > limits[t]:
                over = True
                break
        if over:
            refused[n_refused] = i
            n_refused += 1
            continue
        if size[ru] < size[rv]:
            ru, rv = rv, ru
        parent[rv] = ru
        size[ru] += size[rv]
        for t in range(n_types):
            counts[ru, t] += counts[rv, t]
    for v in range(n):
        r = v
        while parent[r] != r:
            r = parent[r]
        parent[v] = r
    return parent, refused[:n_refused]


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Close the gaps left by re-stitched components: 0..n-1, in a linear pass (no sort)."""
    used = np.zeros(int(labels.max()) + 1 if len(labels) else 0, dtype=bool)
    used[labels] = True
    return (np.cumsum(used) - 1)[labels]


def _anchors(graph: Graph, labels: np.ndarray, priorities: np.ndarray) -> np.ndarray:
    """Per component, its earliest-seen node, then the higher priority, then the smaller key."""
    # One int64 per node orders by (first_seen, -priority); times are micros, so a span of
    # centuries still fits.
    base = graph.first_seen.min() if len(graph.first_seen) else 0
    rank = (graph.first_seen - base) * 256 + (255 - np.clip(priorities[graph.types], 0, 255))
    n_components = int(labels.max()) + 1 if len(labels) else 0
    anchors, best, tied_labels = _jit(_earliest)(labels, rank, n_components)
    if tied_labels.any():  # ties: the smaller key wins, whatever the arrival order
        tied = np.flatnonzero(tied_labels[labels] & (rank == best[labels]))
        winners: dict[int, tuple[str, int]] = {}
        for node, key in zip(tied.tolist(), graph.keys.take(pa.array(tied)).to_pylist(), strict=True):
            label = int(labels[node])
            if label not in winners or key < winners[label][0]:
                winners[label] = (key, node)
        for label, (_, node) in winners.items():
            anchors[label] = node
    return anchors


def _earliest(
    labels: np.ndarray, rank: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component, the node of lowest rank, that rank, and whether another node ties it."""
    best = np.full(n_components, np.iinfo(np.int64).max, dtype=np.int64)
    anchors = np.zeros(n_components, dtype=np.int64)
    tied = np.zeros(n_components, dtype=np.bool_)
    for v in range(len(labels)):
        label, r = labels[v], rank[v]
        if r < best[label]:
            best[label], anchors[label], tied[label] = r, v, False
        elif r == best[label]:
            tied[label] = True
    return anchors, best, tied


def _hash_keys(keys: pa.Array, nodes: np.ndarray) -> np.ndarray:
    values = keys.take(pa.array(nodes)).to_numpy(zero_copy_only=False)
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)
