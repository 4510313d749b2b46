"""Hosted H5 forms: `GET /f/{source_id}` serves the page, `POST /f/{source_id}` takes a submission
(application/x-www-form-urlencoded, from the page; JSON answers with `Accept: application/json`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from quanyu.api.bodies import read_limited
from quanyu.api.deps import get_platform
from quanyu.api.errors import error_body
from quanyu.api.responses import JSONBytes
from quanyu.collect.messages import Envelope
from quanyu.collect.sources import SourceInfo
from quanyu.connectors import forms
from quanyu.errors import Forbidden, InvalidInput, NotFound
from quanyu.journeys.policy import record_consent
from quanyu.platform import Platform

router = APIRouter(tags=["forms 表单"])

MAX_BODY_BYTES = 64 * 1024
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Missing, forged or expired form token (form_token_invalid, form_expired)"},
    404: {"description": "No enabled form source with this id"},
    409: {"description": "The form source's settings are incomplete (form_not_configured)"},
    422: {"description": "Invalid fields: the page again with the errors, or {code: invalid_form, details}"},
}


def _form(platform: Platform, source_id: str) -> tuple[SourceInfo, forms.FormConfig]:
    source = platform.sources.by_id(source_id)
    if source is None or source.type != "form":
        raise NotFound(f"表单不存在 / form {source_id} not found", code="source_not_found")
    return source, forms.parse_config(source.id, source.settings)


def _key(platform: Platform) -> bytes:
    return platform.vault.derive(b"quanyu-forms")


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers=forms.SECURITY_HEADERS)


@router.get("/f/{source_id}", operation_id="form_page", response_class=HTMLResponse, responses=_RESPONSES)
def form_page(source_id: str, request: Request) -> HTMLResponse:
    """The form, with a fresh signed token; UTM parameters in the URL are kept for the submission."""
    platform = get_platform(request)
    _, config = _form(platform, source_id)
    token = forms.issue_token(_key(platform), source_id)
    return _html(forms.render_form(config, token, forms.action_url(source_id, request.query_params)))


@router.post("/f/{source_id}", operation_id="form_submit", response_class=HTMLResponse, responses=_RESPONSES)
async def form_submit(source_id: str, request: Request) -> Response:
    """Validate a submission; store an identify and a `Form Submitted` event and, when the box
    is ticked, the consent with the exact wording shown."""
    platform = get_platform(request)
    source, config = await run_in_threadpool(_form, platform, source_id)
    wants_json = "application/json" in request.headers.get("accept", "")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidInput("须以表单编码提交 / submit as application/x-www-form-urlencoded",
                           code="invalid_content_type")  # fmt: skip
    raw = parse_qs(
        (await read_limited(request, MAX_BODY_BYTES)).decode("utf-8", "replace"), keep_blank_values=True
    )
    posted = {k: v[0] for k, v in raw.items()}
    action = forms.action_url(source_id, request.query_params)
    if forms.is_bot(posted):
        # Look like a success so the bot learns nothing; nothing is stored.
        return _done(config, wants_json)
    key = _key(platform)
    try:
        nonce = forms.check_token(key, source_id, posted.get(forms.TOKEN_FIELD, ""))
    except Forbidden as err:
        if wants_json:
            raise
        # The person keeps what they typed, with a fresh token to submit again.
        page = forms.render_form(config, forms.issue_token(key, source_id), action, posted, alert=err.message,
                                 consent=posted.get(forms.CONSENT_FIELD) == "yes")  # fmt: skip
        return _html(page, 403)
    sub = forms.read_submission(config, posted, request.query_params)
    if sub.errors:
        if wants_json:
            body = error_body(
                "invalid_form", "表单内容有误 / some fields are invalid", {"errors": sub.errors}
            )
            return JSONBytes(body, 422)
        page = forms.render_form(config, posted.get(forms.TOKEN_FIELD, ""), action, posted, sub.errors,
                                 consent=sub.consent)  # fmt: skip
        return _html(page, 422)
    at = datetime.now(UTC)
    future, _ = platform.intake.accept(source, forms.messages(config, sub, nonce, at), None, Envelope())
    await asyncio.wrap_future(future)
    evidence = {"user_agent": request.headers.get("user-agent", "")[:300],
                "ip": request.client.host if request.client else None}  # fmt: skip
    records = forms.consent_records(config, sub, nonce, at, evidence)
    if records:
        await run_in_threadpool(_record, platform, source.workspace_id, records)
    return _done(config, wants_json, consent_recorded=len(records))


def _record(platform: Platform, workspace_id: str, records: list[Any]) -> None:
    with platform.engine.begin() as conn:
        record_consent(conn, workspace_id, records)


def _done(config: forms.FormConfig, wants_json: bool, consent_recorded: int = 0) -> Response:
    if wants_json:
        return JSONBytes(
            {"success": True, "message": config.success_message, "consent_recorded": consent_recorded}
        )
    return _html(forms.render_done(config))
