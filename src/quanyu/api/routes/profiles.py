"""People: find a profile, read it, its cross-channel timeline, merge history and links;
unmerge wrongly joined identifiers; rebuild the identity graph."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from quanyu.api.deps import Caller, PlatformDep
from quanyu.errors import InvalidInput
from quanyu.identity import lookup as people
from quanyu.identity.declared_types import TypeDeclaration
from quanyu.identity.probable import decide, reviews, run_matching
from quanyu.identity.resolve import detach, rebuild, unmerge
from quanyu.profiles.materialise import refresh
from quanyu.profiles.tags import add_tag, remove_tag
from quanyu.profiles.view import profile_view, search

router = APIRouter(prefix="/api/v1", tags=["profiles 用户"])


class IdentifierRef(BaseModel):
    type: str = Field(examples=["phone"])
    value: str = Field(examples=["13800001234"])
    scope: str = Field(default="", description="app id, for scoped types such as wechat_openid")


class LinkRef(BaseModel):
    a: str = Field(description="identifier key, e.g. phone:13800001234")
    b: str


class UnmergeRequest(BaseModel):
    identifiers: list[IdentifierRef] = Field(
        default_factory=list, max_length=100, description="identifiers that are not this person"
    )
    links: list[LinkRef] = Field(default_factory=list, max_length=100, description="links that are wrong")
    reason: str = Field(default="", max_length=500)


@router.get("/profiles/lookup", operation_id="lookup_profile")
def lookup_profile(
    caller: Caller, platform: PlatformDep, type: str, value: str, scope: str = ""
) -> dict[str, Any]:
    """The person an identifier belongs to (404 `profile_not_found` when nobody has it)."""
    types = platform.identifier_types.types_for(caller.workspace_id)
    return people.lookup(platform.warehouse, caller.workspace_id, type, value, scope, types)


class SearchRequest(BaseModel):
    filters: dict[str, Any] | None = Field(
        default=None,
        description='conditions on traits and computed fields, e.g. {"all": [{"field": "revenue", "op": ">=", '
        '"value": 1000}]}',
    )
    tags: list[str] = Field(default_factory=list, max_length=20)
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


class TagRequest(BaseModel):
    tag: str = Field(min_length=1, max_length=64, examples=["高价值 VIP"])


@router.post("/profiles/search", operation_id="search_profiles")
def search_profiles(body: SearchRequest, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Profiles matching trait / computed-field conditions and holding every given tag."""
    return search(platform.warehouse, caller.workspace_id, body.filters, tags=body.tags, limit=body.limit,
                  cursor=body.cursor)  # fmt: skip


@router.get("/profiles/{profile_id}", operation_id="get_profile")
def get_profile(profile_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """A person: identifiers, merged traits with their sources, computed traits, RFM and tags
    (an id that merged away answers with its survivor)."""
    who = people.profile(platform.warehouse, caller.workspace_id, profile_id)
    view = profile_view(platform.warehouse, caller.workspace_id, who["profile_id"]) or {}
    return {
        **who,
        "traits": view.get("traits", {}),
        "trait_sources": view.get("trait_sources", {}),
        "computed": view.get("computed", {}),
        "rfm": view.get("rfm"),
        "reachable_channels": view.get("reachable_channels", []),
        "tags": view.get("tags", []),
        "updated_at": view.get("updated_at"),
    }


@router.post("/profiles/{profile_id}/tags", operation_id="add_profile_tag")
def add_profile_tag(
    profile_id: str, body: TagRequest, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Tag a person by hand (adding a tag they hold is a no-op)."""
    tags = add_tag(platform.warehouse, caller.workspace_id, profile_id, body.tag, f"token:{caller.token_id}")
    return {"profile_id": profile_id, "tags": tags}


@router.delete("/profiles/{profile_id}/tags/{tag}", operation_id="remove_profile_tag")
def remove_profile_tag(profile_id: str, tag: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Remove a manual tag (404 when not held; 409 `rule_tag` when a rule gives it)."""
    tags = remove_tag(platform.warehouse, caller.workspace_id, profile_id, tag, f"token:{caller.token_id}")
    return {"profile_id": profile_id, "tags": tags}


@router.get("/profiles/{profile_id}/timeline", operation_id="profile_timeline")
def profile_timeline(
    profile_id: str,
    caller: Caller,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> dict[str, Any]:
    """Every event of the person across channels, with products, amounts and coupons."""
    return people.timeline(platform.warehouse, caller.workspace_id, profile_id, cursor, limit, order)


@router.get("/profiles/{profile_id}/history", operation_id="profile_history")
def profile_history(profile_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Merges and splits of this person, newest first, each explained."""
    return people.history(platform.warehouse, caller.workspace_id, profile_id)


@router.get("/profiles/{profile_id}/links", operation_id="profile_links")
def profile_links(profile_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Link review: the links holding the person together, with the record each came from."""
    return people.links_of(platform.warehouse, caller.workspace_id, profile_id)


@router.post("/profiles/{profile_id}/unmerge", operation_id="unmerge_profile")
def unmerge_profile(
    profile_id: str, body: UnmergeRequest, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Split wrongly joined people: name identifiers that are not this person, or wrong links.
    The decision is permanent: later data and rebuilds never join them through those links."""
    wh, ws = platform.warehouse, caller.workspace_id
    if not body.identifiers and not body.links:
        raise InvalidInput(
            "请指定标识或关联 / give identifiers or links to unmerge", code="nothing_to_unmerge"
        )
    pid = people.resolve_id(wh, ws, profile_id)
    actor = f"token:{caller.token_id}"
    types = platform.identifier_types.types_for(ws)
    if body.identifiers:
        keys = [people.identifier_key(types, ref.type, ref.value, ref.scope) for ref in body.identifiers]
        result = detach(wh, ws, pid, keys, actor, body.reason, types)
    else:
        result = unmerge(wh, ws, [(link.a, link.b) for link in body.links], actor, body.reason, types)
    refresh(wh, ws, result.touched_profiles)
    return {"profile_id": pid, "result": result.public(), "profiles": result.touched_profiles}


class MatchRequest(BaseModel):
    threshold: float = Field(default=0.95, gt=0, lt=1, description="merge pairs at or above this probability")
    review_threshold: float = Field(
        default=0.6, gt=0, lt=1, description="queue pairs from here up to threshold"
    )
    auto_merge: bool = Field(
        default=True, description="false: nothing merges on its own, every pair is queued"
    )


class DecisionRequest(BaseModel):
    decision: str = Field(pattern="^(merge|reject)$")


@router.post("/identity/match", operation_id="match_profiles")
def match_profiles(body: MatchRequest, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Probabilistic matching (Splink) of people by name, birthday, address and partial phone:
    pairs above `threshold` merge, borderline pairs go to the review queue."""
    if body.review_threshold > body.threshold:
        raise InvalidInput("review_threshold 不能高于 threshold / review_threshold must not exceed threshold",
                           code="invalid_threshold")  # fmt: skip
    types = platform.identifier_types.types_for(caller.workspace_id)
    run = run_matching(platform.warehouse, caller.workspace_id, body.threshold, body.review_threshold, types,
                       auto_merge=body.auto_merge)  # fmt: skip
    if run.stitch is not None:
        refresh(platform.warehouse, caller.workspace_id, run.stitch.touched_profiles)
    return run.public()


@router.get("/identity/reviews", operation_id="list_match_reviews")
def list_reviews(
    caller: Caller,
    platform: PlatformDep,
    status: Annotated[str, Query(pattern="^(pending|merged|rejected|all)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The review queue: borderline pairs with their match probability and weight."""
    return reviews(platform.warehouse, caller.workspace_id, status, limit)


@router.post("/identity/reviews/{review_id}", operation_id="decide_match_review")
def decide_review(
    review_id: str, body: DecisionRequest, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Merge or reject a queued pair (409 `review_decided` when already decided)."""
    out = decide(
        platform.warehouse, caller.workspace_id, review_id, body.decision, f"token:{caller.token_id}"
    )
    if out["profiles"]:
        refresh(platform.warehouse, caller.workspace_id, out["profiles"])
    return out


@router.get("/identity/types", operation_id="list_identifier_types")
def list_identifier_types(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Identifier types of the workspace: built-ins and declared ones, strongest first."""
    return {"items": platform.identifier_types.list(caller.workspace_id)}


@router.put("/identity/types/{name}", operation_id="declare_identifier_type")
def declare_identifier_type(
    name: str, body: TypeDeclaration, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Declare (or change) one of the workspace's own identifier types; events carry it in
    `context.externalIds` as `{"type": name, "id": value}`. Rebuild to apply it to past events."""
    return platform.identifier_types.declare(caller.workspace_id, name, body)


@router.post("/identity/rebuild", operation_id="rebuild_identity")
def rebuild_identity(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Recompute every person of the workspace from its events (the incremental pipeline keeps
    people current; this is the repair and re-configuration path)."""
    types = platform.identifier_types.types_for(caller.workspace_id)
    result = rebuild(platform.warehouse, caller.workspace_id, types).public()
    refresh(platform.warehouse, caller.workspace_id)
    return result
