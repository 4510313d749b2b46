"""The web tracker quanyu.js (an analytics.js-compatible subset) and its Segment-style settings.

网站采集脚本 quanyu.js 及其 Segment 风格的配置。The script is a static, hand-written file
shipped as package data; it is read once and served with an ETag so browsers revalidate cheaply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

MEDIA_TYPE = "text/javascript; charset=utf-8"
# The URL is stable (snippets hard-code it), so caches keep it for an hour, then revalidate by
# ETag; a new release reaches every page within that hour.
CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class TrackerScript:
    body: bytes
    etag: str
    version: str


@cache
def script() -> TrackerScript:
    """quanyu.js as served, with its strong ETag and the VERSION it reports in context.library."""
    body = files("quanyu.tracker").joinpath("static/quanyu.js").read_bytes()
    found = re.search(rb"var VERSION = '([^']+)'", body)
    version = found.group(1).decode() if found else "0"
    return TrackerScript(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', version)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or any listed tag (weak comparison: W/ prefixes ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def settings_for(write_key: str, base_url: str) -> dict[str, Any]:
    """The project settings analytics.js fetches (`/v1/projects/<writeKey>/settings`).

    `apiHost` is host plus path without the scheme and `protocol` the scheme, as in Segment's
    own settings; `base_url` is where this server is reached (public_url, or the request's URL).
    Nothing about the source beyond its (already public) write key is disclosed.
    """
    parts = urlsplit(base_url.rstrip("/"))
    return {
        "integrations": {
            "Quanyu": {
                "apiKey": write_key,
                "apiHost": f"{parts.netloc}{parts.path}/v1",
                "protocol": parts.scheme or "https",
                "library": {"name": "quanyu.js", "version": script().version},
                "scriptUrl": f"{base_url.rstrip('/')}/js/quanyu.js",
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }
