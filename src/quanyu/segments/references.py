"""Segments that use other segments (`{"segment": "seg_…"}`): finding the references, and
refusing unknown ones and cycles before a definition is saved.

Paths are written as the compiler writes them (`conditions[2].not.segment`), so an error names
the node a person has to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from quanyu.errors import InvalidInput
from quanyu.segments.definition import Condition, Definition, Group, NotCondition, SegmentCondition


@dataclass(frozen=True)
class Reference:
    path: str  # of the `segment` key, e.g. "conditions[1].conditions[0].segment"
    segment_id: str


def references(definition: Group) -> list[Reference]:
    """Every `{"segment": id}` node of a definition, in document order."""
    return list(_walk(definition, ""))


def _walk(node: Condition, path: str) -> Iterator[Reference]:
    if isinstance(node, Group):
        for i, child in enumerate(node.conditions):
            yield from _walk(child, f"{path}{'.' if path else ''}conditions[{i}]")
    elif isinstance(node, NotCondition):
        yield from _walk(node.not_, f"{path}.not")
    elif isinstance(node, SegmentCondition):
        yield Reference(f"{path}.segment", node.segment)


def check_references(
    definition: Definition, current: Callable[[str], Definition | None], own_id: str | None = None
) -> None:
    """Refuse a definition (400, with the path of the node) that names a segment the workspace
    does not have, or that would lead back to `own_id` (A uses B uses A).

    `current(id)` is a live segment's current definition, None for unknown or deleted ones; a
    saved segment's definition is read as it would be with the new one saved in its place."""
    for ref in references(definition):
        if ref.segment_id == own_id:
            raise _cycle(ref, [own_id, own_id])
        if current(ref.segment_id) is None:
            raise InvalidInput(
                f"未知分群 / unknown segment {ref.segment_id!r} at {ref.path}",
                code="unknown_segment",
                details=[{"path": ref.path, "message": f"unknown segment {ref.segment_id!r}"}],
            )
        if own_id is not None:
            chain = _path_to(ref.segment_id, own_id, current, [own_id], set())
            if chain is not None:
                raise _cycle(ref, chain)


def _path_to(
    start: str, goal: str, current: Callable[[str], Definition | None], trail: list[str], seen: set[str]
) -> list[str] | None:
    """The chain of segment ids from `trail` through `start` to `goal`, if there is one (each
    segment is visited once: shared sub-segments cost nothing twice)."""
    if start == goal:
        return [*trail, start]
    if start in seen:
        return None
    seen.add(start)
    found = current(start)
    for ref in references(found) if found is not None else []:
        chain = _path_to(ref.segment_id, goal, current, [*trail, start], seen)
        if chain is not None:
            return chain
    return None


def _cycle(ref: Reference, chain: list[str]) -> InvalidInput:
    loop = " → ".join(chain)
    return InvalidInput(
        f"分群循环引用 / segments would refer to each other in a cycle at {ref.path}: {loop}",
        code="segment_cycle",
        details=[{"path": ref.path, "message": f"cycle: {loop}", "cycle": chain}],
    )


def users_of(segment_id: str, live: dict[str, Definition]) -> list[str]:
    """Ids of the live segments whose current definition names `segment_id` directly."""
    return sorted(sid for sid, d in live.items() if any(r.segment_id == segment_id for r in references(d)))
