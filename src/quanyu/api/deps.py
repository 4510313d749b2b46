"""Typed dependencies: the platform of this app, and the caller's management token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from quanyu.errors import Unauthorized
from quanyu.org.workspaces import TokenIdentity
from quanyu.platform import Platform


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def require_token(request: Request, platform: PlatformDep) -> TokenIdentity:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "需要 Bearer 管理令牌 / a Bearer management token is required", code="missing_token"
        )
    return platform.workspaces.verify_token(token.strip())


Caller = Annotated[TokenIdentity, Depends(require_token)]
