"""The web tracker: the script (/js/quanyu.js, and the Segment snippet's URL) and the project
settings analytics.js reads. Public like the collection API: the write key is in every page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quanyu.api.deps import PlatformDep
from quanyu.api.responses import JSONBytes
from quanyu.errors import NotFound, Unauthorized
from quanyu.platform import Platform
from quanyu.tracker import CACHE_CONTROL, MEDIA_TYPE, etag_matches, script, settings_for

router = APIRouter(tags=["tracker 网站采集"])

_SCRIPT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/javascript": {}}, "description": "quanyu.js"},
    304: {"description": "Not modified"},
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown write key"}}


def _known(platform: Platform, write_key: str) -> None:
    """404 (not 401) for an unknown key: these are plain GETs of a resource named by the key."""
    try:
        platform.write_keys.resolve(write_key)
    except Unauthorized as exc:
        raise NotFound("写入密钥不存在 / unknown write key", code="write_key_not_found") from exc


def _script_response(request: Request) -> Response:
    js = script()
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": js.etag, "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("if-none-match"), js.etag):
        return Response(status_code=304, headers=headers)
    return Response(js.body, media_type=MEDIA_TYPE, headers=headers)


@router.get("/js/quanyu.js", operation_id="tracker_script", response_class=Response, responses=_SCRIPT)
def tracker_script(request: Request) -> Response:
    """The tracker; load it with the snippet in docs/connectors-web-tracker.md."""
    return _script_response(request)


@router.get(
    "/analytics.js/v1/{write_key}/analytics.min.js",
    operation_id="tracker_script_segment",
    response_class=Response,
    responses={**_SCRIPT, **_UNKNOWN},
)
def tracker_script_segment(write_key: str, request: Request, platform: PlatformDep) -> Response:
    """The same script at the path Segment's snippet loads (point its CDN host here); the
    script reads the write key from this URL."""
    _known(platform, write_key)
    return _script_response(request)


@router.get("/v1/projects/{write_key}/settings", operation_id="tracker_settings", responses=_UNKNOWN)
def tracker_settings(write_key: str, request: Request, platform: PlatformDep) -> JSONBytes:
    """Segment-style project settings: where to send events (`integrations.Quanyu`) and the plan."""
    _known(platform, write_key)
    base = platform.settings.public_url or str(request.base_url)
    body: dict[str, Any] = settings_for(write_key, base)
    return JSONBytes(body, headers={"Cache-Control": "public, max-age=300"})
