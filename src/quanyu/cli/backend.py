"""Where CLI commands act: a running server's API, or the data directory directly.

When `quanyu serve` holds the data directory (DuckDB allows one writer) commands go through
its API; otherwise they open the stores themselves.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

from quanyu.errors import InvalidInput, QuanyuError
from quanyu.identity import lookup as people
from quanyu.identity.resolve import rebuild
from quanyu.platform import Platform
from quanyu.server import running_server
from quanyu.settings import Settings
from quanyu.warehouse.browser import list_events
from quanyu.warehouse.events import EventFilter


class Backend(Protocol):
    def create_source(self, name: str, type_: str, settings: dict[str, Any]) -> dict[str, Any]: ...
    def list_sources(self) -> list[dict[str, Any]]: ...
    def pipeline_status(self) -> dict[str, Any]: ...
    def pipeline_run(self) -> dict[str, Any]: ...
    def quarantine_list(self, status: str, limit: int) -> dict[str, Any]: ...
    def quarantine_replay(self, ids: list[int]) -> dict[str, Any]: ...
    def events(self, params: dict[str, Any]) -> dict[str, Any]: ...
    def profile_lookup(self, id_type: str, value: str, scope: str) -> dict[str, Any]: ...
    def profile(self, profile_id: str) -> dict[str, Any]: ...
    def profile_part(self, profile_id: str, part: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def identity_rebuild(self) -> dict[str, Any]: ...
    def identity_match(
        self, threshold: float, review_threshold: float, auto_merge: bool
    ) -> dict[str, Any]: ...
    def segment_preview(self, definition: dict[str, Any], sample: int) -> dict[str, Any]: ...
    def segment_create(self, name: str, description: str, definition: dict[str, Any]) -> dict[str, Any]: ...
    def segment_list(self) -> list[dict[str, Any]]: ...
    def segment(self, segment_id: str) -> dict[str, Any]: ...
    def segment_refresh(self, segment_id: str | None) -> dict[str, Any]: ...
    def segment_members(self, segment_id: str, limit: int, cursor: str | None) -> dict[str, Any]: ...
    def segment_export(self, segment_id: str, format_: str) -> bytes: ...
    def segment_export_webhook(self, segment_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def journey_create(self, definition: dict[str, Any], publish: bool) -> dict[str, Any]: ...
    def journey_list(self) -> list[dict[str, Any]]: ...
    def journey(self, journey_id: str) -> dict[str, Any]: ...
    def journey_action(self, journey_id: str, action: str) -> dict[str, Any]: ...
    def journey_stats(self, journey_id: str) -> dict[str, Any]: ...
    def journeys_run(self, advance_seconds: float | None) -> dict[str, Any]: ...
    def journey_enroll(self, journey_id: str, profile_ids: list[str]) -> dict[str, Any]: ...
    def channel_create(
        self, type_: str, name: str, settings: dict[str, Any], default: bool
    ) -> dict[str, Any]: ...
    def channel_list(self) -> list[dict[str, Any]]: ...
    def channel_types(self) -> list[dict[str, Any]]: ...
    def messaging_policy(self, changes: dict[str, Any] | None) -> dict[str, Any]: ...
    def kill_switch(self, on: bool) -> dict[str, Any]: ...
    def consent_record(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def consent(self, subject: str) -> dict[str, Any]: ...
    def import_file(
        self, kind: str, params: dict[str, Any], data: bytes, progress: Any = None
    ) -> dict[str, Any]: ...
    def close(self) -> None: ...


class ApiError(QuanyuError):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.status = status


class ApiBackend:
    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            raise InvalidInput(
                f"服务 {url} 正在运行，需要管理令牌 / a server is running at {url}: "
                "pass --token or set QUANYU_API_TOKEN"
            )
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300)

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(
                503, "unreachable", f"无法连接 {self.url} / cannot reach {self.url}: {exc}"
            ) from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
                raise ApiError(
                    resp.status_code,
                    body.get("code", "error"),
                    body.get("message", resp.text),
                    body.get("details"),
                )
            except ValueError:
                raise ApiError(resp.status_code, "error", resp.text) from None
        return resp

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return self._send(method, path, **kw).json()

    def import_file(
        self, kind: str, params: dict[str, Any], data: bytes, progress: Any = None
    ) -> dict[str, Any]:
        query = [(k, v) for k, v in params.items() if v is not None and k != "map"]
        query += [("map", pair) for pair in params.get("map") or []]
        return self._call("POST", f"/api/v1/imports/{quote(kind)}", params=query, content=data,
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    def create_source(self, name: str, type_: str, settings: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/api/v1/sources", json={"name": name, "type": type_, "settings": settings})

    def list_sources(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/sources")

    def pipeline_status(self) -> dict[str, Any]:
        return self._call("GET", "/api/v1/pipeline/status")

    def pipeline_run(self) -> dict[str, Any]:
        return self._call("POST", "/api/v1/pipeline/run")

    def quarantine_list(self, status: str, limit: int) -> dict[str, Any]:
        return self._call("GET", "/api/v1/quarantine", params={"status": status, "limit": limit})

    def quarantine_replay(self, ids: list[int]) -> dict[str, Any]:
        return self._call("POST", "/api/v1/quarantine/replay", json={"ids": ids})

    def events(self, params: dict[str, Any]) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", "/api/v1/events", params=clean)

    def profile_lookup(self, id_type: str, value: str, scope: str) -> dict[str, Any]:
        return self._call(
            "GET", "/api/v1/profiles/lookup", params={"type": id_type, "value": value, "scope": scope}
        )

    def profile(self, profile_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/profiles/{quote(profile_id, safe='')}")

    def profile_part(self, profile_id: str, part: str, params: dict[str, Any]) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", f"/api/v1/profiles/{quote(profile_id, safe='')}/{part}", params=clean)

    def identity_rebuild(self) -> dict[str, Any]:
        return self._call("POST", "/api/v1/identity/rebuild")

    def identity_match(self, threshold: float, review_threshold: float, auto_merge: bool) -> dict[str, Any]:
        body = {"threshold": threshold, "review_threshold": review_threshold, "auto_merge": auto_merge}
        return self._call("POST", "/api/v1/identity/match", json=body)

    def segment_preview(self, definition: dict[str, Any], sample: int) -> dict[str, Any]:
        return self._call(
            "POST", "/api/v1/segments/preview", json={"definition": definition, "sample": sample}
        )

    def segment_create(self, name: str, description: str, definition: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "description": description, "definition": definition}
        return self._call("POST", "/api/v1/segments", json=body)

    def segment_list(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/segments")["items"]

    def segment(self, segment_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/segments/{quote(segment_id, safe='')}")

    def segment_refresh(self, segment_id: str | None) -> dict[str, Any]:
        if segment_id is None:
            return self._call("POST", "/api/v1/segments/refresh")
        return self._call("POST", f"/api/v1/segments/{quote(segment_id, safe='')}/refresh")

    def segment_members(self, segment_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._call("GET", f"/api/v1/segments/{quote(segment_id, safe='')}/members", params=params)

    def segment_export(self, segment_id: str, format_: str) -> bytes:
        path = f"/api/v1/segments/{quote(segment_id, safe='')}/members"
        return self._send("GET", path, params={"format": format_}).content

    def segment_export_webhook(self, segment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/segments/{quote(segment_id, safe='')}/export/webhook", json=body)

    def journey_create(self, definition: dict[str, Any], publish: bool) -> dict[str, Any]:
        return self._call("POST", "/api/v1/journeys", json=definition, params={"publish": publish})

    def journey_list(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/journeys")["items"]

    def journey(self, journey_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/journeys/{quote(journey_id, safe='')}")

    def journey_action(self, journey_id: str, action: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/journeys/{quote(journey_id, safe='')}/{action}")

    def journey_stats(self, journey_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/journeys/{quote(journey_id, safe='')}/stats")

    def journeys_run(self, advance_seconds: float | None) -> dict[str, Any]:
        params = {"advance_seconds": advance_seconds} if advance_seconds else {}
        return self._call("POST", "/api/v1/journeys/run", params=params)

    def journey_enroll(self, journey_id: str, profile_ids: list[str]) -> dict[str, Any]:
        path = f"/api/v1/journeys/{quote(journey_id, safe='')}/enroll"
        return self._call("POST", path, json={"profile_ids": profile_ids})

    def channel_create(
        self, type_: str, name: str, settings: dict[str, Any], default: bool
    ) -> dict[str, Any]:
        body = {"type": type_, "name": name, "settings": settings, "default": default}
        return self._call("POST", "/api/v1/channels", json=body)

    def channel_list(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/channels")["items"]

    def channel_types(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/channels/types")["items"]

    def messaging_policy(self, changes: dict[str, Any] | None) -> dict[str, Any]:
        if changes is None:
            return self._call("GET", "/api/v1/messaging/policy")
        return self._call("PATCH", "/api/v1/messaging/policy", json=changes)

    def kill_switch(self, on: bool) -> dict[str, Any]:
        return self._call("POST", "/api/v1/messaging/kill-switch", json={"on": on})

    def consent_record(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/api/v1/consent", json=body)

    def consent(self, subject: str) -> dict[str, Any]:
        return self._call("GET", "/api/v1/consent", params={"subject": subject})

    def close(self) -> None:
        self.http.close()


class LocalBackend:
    def __init__(self, settings: Settings, workspace_id: str | None) -> None:
        self.platform = Platform(settings)
        self.workspace_id = workspace_id or _only_workspace(self.platform)

    def import_file(
        self, kind: str, params: dict[str, Any], data: bytes, progress: Any = None
    ) -> dict[str, Any]:
        from quanyu.connectors.imports import catalog
        from quanyu.connectors.imports.importer import parse_mapping, run_import

        fmt = catalog.find(kind, params.get("platform"))
        source = self.platform.sources.get(self.workspace_id, params["source_id"])
        options = {k: params[k] for k in ("event_name", "platform") if params.get(k)}
        report = run_import(
            self.platform, source, fmt, data, encoding=params.get("encoding") or "auto",
            timezone=params.get("timezone"), options=options, mapping=parse_mapping(params.get("map") or []),
            dry_run=bool(params.get("dry_run")), skip_bad=bool(params.get("skip_bad")), progress=progress,
        )  # fmt: skip
        result = report.public()
        if report.written and params.get("process", True):
            # Nothing else drains this data directory's queue while no server runs.
            if progress is not None:
                progress("process", 0, 0)
            result["pipeline"] = self.platform.pipeline.drain().public()
        return result

    def create_source(self, name: str, type_: str, settings: dict[str, Any]) -> dict[str, Any]:
        created = self.platform.sources.create(self.workspace_id, name, type_, settings)
        return {**created.source.public(), "write_key": created.write_key}

    def list_sources(self) -> list[dict[str, Any]]:
        return [s.public() for s in self.platform.sources.list(self.workspace_id)]

    def pipeline_status(self) -> dict[str, Any]:
        from quanyu.pipeline.status import pipeline_status

        pending = self.platform.pipeline.identity_pending()
        return pipeline_status(self.platform.queue, self.platform.quarantine, self.workspace_id, pending)

    def pipeline_run(self) -> dict[str, Any]:
        return self.platform.pipeline.drain().public()

    def quarantine_list(self, status: str, limit: int) -> dict[str, Any]:
        entries = self.platform.quarantine.list(
            self.workspace_id, status=None if status == "all" else status, limit=limit
        )
        return {"items": [e.public() for e in entries]}

    def quarantine_replay(self, ids: list[int]) -> dict[str, Any]:
        return self.platform.intake.replay(self.workspace_id, ids)

    def events(self, params: dict[str, Any]) -> dict[str, Any]:
        flt = EventFilter(
            self.workspace_id,
            params.get("user_id"),
            params.get("anonymous_id"),
            params.get("event"),
            params.get("type"),
            params.get("source_id"),
        )
        return list_events(self.platform.warehouse, flt, params.get("cursor"), int(params.get("limit") or 20))

    def profile_lookup(self, id_type: str, value: str, scope: str) -> dict[str, Any]:
        types = self.platform.identifier_types.types_for(self.workspace_id)
        return people.lookup(self.platform.warehouse, self.workspace_id, id_type, value, scope, types)

    def profile(self, profile_id: str) -> dict[str, Any]:
        return people.profile(self.platform.warehouse, self.workspace_id, profile_id)

    def profile_part(self, profile_id: str, part: str, params: dict[str, Any]) -> dict[str, Any]:
        wh, ws = self.platform.warehouse, self.workspace_id
        if part == "timeline":
            return people.timeline(wh, ws, profile_id, params.get("cursor"), int(params.get("limit") or 50),
                                   params.get("order") or "desc")  # fmt: skip
        if part == "history":
            return people.history(wh, ws, profile_id)
        return people.links_of(wh, ws, profile_id)

    def identity_rebuild(self) -> dict[str, Any]:
        from quanyu.profiles.materialise import refresh

        types = self.platform.identifier_types.types_for(self.workspace_id)
        result = rebuild(self.platform.warehouse, self.workspace_id, types).public()
        refresh(self.platform.warehouse, self.workspace_id)
        return result

    def identity_match(self, threshold: float, review_threshold: float, auto_merge: bool) -> dict[str, Any]:
        from quanyu.identity.probable import run_matching
        from quanyu.profiles.materialise import refresh

        types = self.platform.identifier_types.types_for(self.workspace_id)
        run = run_matching(self.platform.warehouse, self.workspace_id, threshold, review_threshold, types,
                           auto_merge=auto_merge)  # fmt: skip
        if run.stitch is not None:
            refresh(self.platform.warehouse, self.workspace_id, run.stitch.touched_profiles)
        return run.public()

    def segment_preview(self, definition: dict[str, Any], sample: int) -> dict[str, Any]:
        from quanyu.segments.preview import preview

        p = self.platform
        return preview(p.warehouse, p.segments, self.workspace_id, definition, sample=sample,
                       timeout=p.settings.segment_timeout_seconds)  # fmt: skip

    def segment_create(self, name: str, description: str, definition: dict[str, Any]) -> dict[str, Any]:
        from quanyu.segments.saved import SegmentCreate

        body = SegmentCreate(name=name, description=description, definition=definition)
        return self.platform.segments.create(self.workspace_id, body, "cli", self.platform.warehouse)

    def segment_list(self) -> list[dict[str, Any]]:
        return self.platform.segments.all(self.workspace_id)

    def segment(self, segment_id: str) -> dict[str, Any]:
        return self.platform.segments.get(self.workspace_id, segment_id)

    def segment_refresh(self, segment_id: str | None) -> dict[str, Any]:
        from quanyu.segments.membership import refresh_membership, refresh_workspace

        p, timeout = self.platform, self.platform.settings.segment_timeout_seconds
        if segment_id is None:
            return refresh_workspace(p.warehouse, p.segments, self.workspace_id, timeout=timeout)
        return refresh_membership(
            p.warehouse, p.segments, self.workspace_id, segment_id, timeout=timeout
        ).public()

    def segment_members(self, segment_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        from quanyu.segments.membership import members_page

        self.platform.segments.current(self.workspace_id, segment_id)
        return members_page(self.platform.warehouse, self.workspace_id, segment_id, limit, cursor)

    def segment_export(self, segment_id: str, format_: str) -> bytes:
        from quanyu.segments.export import export

        self.platform.segments.current(self.workspace_id, segment_id)
        return export(self.platform.warehouse, self.workspace_id, segment_id, format_)

    def segment_export_webhook(self, segment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from quanyu.segments.webhook_export import export_to_webhook

        self.platform.segments.current(self.workspace_id, segment_id)
        return export_to_webhook(self.platform.warehouse, self.workspace_id, segment_id, body["url"], body["secret"],
                                 batch_size=body["batch_size"], allow=body["allow"])  # fmt: skip

    # Journeys and messaging: what the routes of api/routes/journeys.py and messaging.py do,
    # with "cli" as the actor (the routes write "token:<id>").

    def _caller(self) -> Any:
        from quanyu.org.workspaces import TokenIdentity

        return TokenIdentity("cli", self.workspace_id, "admin")

    def journey_create(self, definition: dict[str, Any], publish: bool) -> dict[str, Any]:
        return self.platform.journeys.saved.create(self.workspace_id, definition, "cli", publish=publish)

    def journey_list(self) -> list[dict[str, Any]]:
        return self.platform.journeys.saved.all(self.workspace_id)

    def journey(self, journey_id: str) -> dict[str, Any]:
        return self.platform.journeys.saved.get(self.workspace_id, journey_id)

    def journey_action(self, journey_id: str, action: str) -> dict[str, Any]:
        saved = self.platform.journeys.saved
        act = {"publish": saved.publish, "pause": saved.pause, "archive": saved.archive}[action]
        return act(self.workspace_id, journey_id, "cli")

    def journey_stats(self, journey_id: str) -> dict[str, Any]:
        from quanyu.api.routes.journeys import stats

        return stats(journey_id, self._caller(), self.platform)

    def journeys_run(self, advance_seconds: float | None) -> dict[str, Any]:
        from datetime import timedelta

        from quanyu.journeys.clock import OffsetClock

        journeys = self.platform.journeys
        if advance_seconds:  # this process's clock only: the next command runs on real time again
            offset = self.platform.settings.journey_clock_offset_seconds + advance_seconds
            journeys.clock = OffsetClock(timedelta(seconds=offset))
        return journeys.run_once(self.platform.warehouse)

    def journey_enroll(self, journey_id: str, profile_ids: list[str]) -> dict[str, Any]:
        from quanyu.api.routes.journeys import EnrollRequest, enroll

        return enroll(journey_id, EnrollRequest(profile_ids=profile_ids), self._caller(), self.platform)

    def channel_create(
        self, type_: str, name: str, settings: dict[str, Any], default: bool
    ) -> dict[str, Any]:
        return self.platform.journeys.channels.create(self.workspace_id, name, type_, settings, default)

    def channel_list(self) -> list[dict[str, Any]]:
        return self.platform.journeys.channels.all(self.workspace_id)

    def channel_types(self) -> list[dict[str, Any]]:
        from quanyu.api.routes.messaging import channel_types

        return channel_types(self._caller())["items"]

    def messaging_policy(self, changes: dict[str, Any] | None) -> dict[str, Any]:
        policies = self.platform.journeys.policies
        if changes is None:
            return policies.get(self.workspace_id, fresh=True).public()
        return policies.update(self.workspace_id, changes).public()

    def kill_switch(self, on: bool) -> dict[str, Any]:
        return self.platform.journeys.policies.set_kill_switch(self.workspace_id, on, "cli").public()

    def consent_record(self, body: dict[str, Any]) -> dict[str, Any]:
        from datetime import UTC, datetime

        from quanyu.journeys.policy import ConsentInput, record_consent

        kind, subject = (
            ("profile", body["profile_id"]) if body.get("profile_id") else ("address", body["address"])
        )
        record = ConsentInput(kind, subject, body.get("channel", "*"), body.get("purpose", "marketing"),
                              bool(body["granted"]), body.get("source", "cli"), datetime.now(UTC),
                              {"actor": "cli"})  # fmt: skip
        with self.platform.engine.begin() as conn:
            record_consent(conn, self.workspace_id, [record])
        return self.consent(subject)

    def consent(self, subject: str) -> dict[str, Any]:
        from quanyu.api.routes.messaging import get_consent

        return get_consent(self._caller(), self.platform, subject)

    def close(self) -> None:
        self.platform.close()


def _only_workspace(platform: Platform) -> str:
    spaces = platform.workspaces.all()
    if not spaces:
        raise InvalidInput("数据目录尚未初始化 / data directory not initialised: run `quanyu init` first")
    if len(spaces) > 1:
        raise InvalidInput("存在多个工作空间，请用 --workspace 指定 / several workspaces: pass --workspace")
    return spaces[0].id


def open_backend(
    settings: Settings, api_url: str | None, token: str | None, workspace: str | None
) -> Backend:
    url = api_url or settings.api_url or running_server(settings.data_dir)
    if url:
        return ApiBackend(url, token or settings.api_token)
    return LocalBackend(settings, workspace)


def with_backend(
    fn: Any, data_dir: Any, api_url: str | None, token: str | None, workspace: str | None, as_json: bool,
    explain: Any = None,
) -> Any:  # fmt: skip
    """Run `fn(backend)` on the server (or the local files) and close it; a domain error ends
    the command with its message (through `explain` first, when given) and exit code 1."""
    from quanyu.cli.options import guard, settings_from

    with guard(as_json):
        backend = open_backend(settings_from(data_dir), api_url, token, workspace)
        try:
            return fn(backend)
        except QuanyuError as exc:
            if explain is None:
                raise
            raise explain(exc) from None
        finally:
            backend.close()
