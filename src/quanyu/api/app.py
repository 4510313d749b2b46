"""The application factory: no module-level engines, everything hangs off `app.state`."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from quanyu import __version__
from quanyu.api import errors
from quanyu.api.cors import PublicCors
from quanyu.api.routes import (
    ads,
    collect,
    connect,
    events,
    forms,
    imports,
    journeys,
    messaging,
    pipeline,
    profiles,
    qr,
    quarantine,
    segments,
    sources,
    tracker,
    tracking,
    webhooks_in,
)
from quanyu.platform import Platform
from quanyu.segments.schedule import run_schedule
from quanyu.settings import Settings

_HOME = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>Quanyu 全域</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>全域 Quanyu</h1><p>全渠道客户数据与营销平台 · omnichannel customer data &amp; marketing platform</p>
<ul><li><a href="/docs">API 文档 / API docs (OpenAPI)</a></li>
<li><code>POST /v1/batch</code> Segment 兼容采集 / Segment-compatible collection</li></ul></body></html>"""


def _segment_schedule(platform: Platform, stop: threading.Event) -> threading.Thread | None:
    """The thread refreshing segment membership every QUANYU_SEGMENT_REFRESH_SECONDS (0: none)."""
    s = platform.settings
    if not s.segment_refresh_seconds:
        return None
    thread = threading.Thread(
        target=run_schedule,
        args=(stop, s.segment_refresh_seconds, lambda: platform.warehouse, platform.segments,
              lambda: [w.id for w in platform.workspaces.all()], s.segment_timeout_seconds),
        name="quanyu-segments",
        daemon=True,
    )  # fmt: skip
    thread.start()
    return thread


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    settings = settings or Settings()
    platform = platform or Platform(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform.committer.start()
        worker = None
        if settings.pipeline_enabled:
            worker = threading.Thread(
                target=platform.pipeline.run,
                args=(stop, settings.pipeline_interval_seconds),
                name="quanyu-pipeline",
                daemon=True,
            )
            worker.start()
        schedule = _segment_schedule(platform, stop)
        journeys = None
        if settings.journeys_enabled:
            journeys = threading.Thread(
                target=platform.journeys.run_forever,
                args=(stop, lambda: platform.warehouse, settings.journey_interval_seconds),
                name="quanyu-journeys",
                daemon=True,
            )
            journeys.start()
        yield
        stop.set()
        if worker is not None:
            worker.join(timeout=60)
        if schedule is not None:
            schedule.join(timeout=60)
        if journeys is not None:
            journeys.join(timeout=60)
        platform.close()

    app = FastAPI(
        title="Quanyu 全域 API",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.platform = platform
    errors.install(app)
    app.add_middleware(PublicCors)  # browsers on other origins post to /v1/*
    for module in (
        collect,
        connect,
        sources,
        pipeline,
        events,
        quarantine,
        profiles,
        segments,
        journeys,
        messaging,
        tracking,
        tracker,
        qr,
        imports,
        ads,
        webhooks_in,
        forms,
    ):
        app.include_router(module.router)

    @app.get("/healthz", operation_id="health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(_HOME)

    return app
