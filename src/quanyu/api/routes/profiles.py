"""People: find a profile, read it, its cross-channel timeline, merge history and links;
unmerge wrongly joined identifiers; rebuild the identity graph."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from quanyu.api.deps import Caller, PlatformDep
from quanyu.errors import InvalidInput
from quanyu.identity import lookup as people
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.resolve import detach, rebuild, unmerge

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
    return people.lookup(platform.warehouse, caller.workspace_id, type, value, scope)


@router.get("/profiles/{profile_id}", operation_id="get_profile")
def get_profile(profile_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """A person: identifiers (an id that merged away answers with its survivor)."""
    return people.profile(platform.warehouse, caller.workspace_id, profile_id)


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
    if body.identifiers:
        types = IdentifierTypes()
        keys = []
        for ref in body.identifiers:
            found = types.identify(ref.type, ref.value, ref.scope) if ref.type in types else None
            if found is None:
                raise InvalidInput(
                    f"无效的标识 / invalid identifier {ref.type}:{ref.value}", code="invalid_identifier"
                )
            keys.append(found.key)
        result = detach(wh, ws, pid, keys, actor, body.reason)
    else:
        result = unmerge(wh, ws, [(link.a, link.b) for link in body.links], actor, body.reason)
    return {"profile_id": pid, "result": result.public(), "profiles": result.touched_profiles}


@router.post("/identity/rebuild", operation_id="rebuild_identity")
def rebuild_identity(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Recompute every person of the workspace from its events (the incremental pipeline keeps
    people current; this is the repair and re-configuration path)."""
    return rebuild(platform.warehouse, caller.workspace_id).public()
