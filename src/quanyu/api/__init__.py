"""HTTP layer: the Segment-compatible tracking API and the management API under /api/v1."""

from quanyu.api.app import create_app

__all__ = ["create_app"]
