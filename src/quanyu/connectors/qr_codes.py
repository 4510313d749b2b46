"""Parametric QR codes (带参二维码) of an official account: create them through WeChat's API,
render the PNG here, and keep what each scene stands for (campaign, store, guide, channel), so
every scan and follow through a code is attributed to it.

WeChat's request (`POST /cgi-bin/qrcode/create?access_token=…`):

- temporary: `{"expire_seconds": 2592000, "action_name": "QR_STR_SCENE",
  "action_info": {"scene": {"scene_str": "store_sh001"}}}` (at most 30 days);
- permanent: `{"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": …}}}`
  (an account has at most 100,000).

The answer holds `ticket`, `expire_seconds` and `url` (the content the code encodes); the PNG is
rendered locally from `url`, so nothing is fetched from WeChat's image service. The source
needs `app_id` and `app_secret` (a secret setting); `api_base_url` may point elsewhere (tests).
"""

from __future__ import annotations

import io
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import qrcode
from qrcode.image.pure import PyPNGImage
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from quanyu.channels.wechat import tokens
from quanyu.collect.sources import Sources
from quanyu.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from quanyu.store.engine import reading
from quanyu.store.models import QrScene

_Q = QrScene.__table__
MAX_TEMPORARY_SECONDS = 30 * 24 * 3600
# WeChat allows 1–64 characters; printable, no spaces, so a scene survives every hop (EventKey).
_SCENE = re.compile(r"^[\x21-\x7e]{1,64}$")
DEFAULT_API = "https://api.weixin.qq.com"


class QrCodes:
    def __init__(self, engine: Engine, sources: Sources) -> None:
        self.engine = engine
        self.sources = sources

    def create(self, workspace_id: str, source_id: str, scene: str, actor: str, *, permanent: bool = False,
               expire_seconds: int = MAX_TEMPORARY_SECONDS, campaign: str | None = None,
               store_id: str | None = None, guide_id: str | None = None, channel: str | None = None,
               note: str = "") -> dict[str, Any]:  # fmt: skip
        """Create the code at WeChat and record its scene; 409 for a scene already in use."""
        if not _SCENE.match(scene):
            raise InvalidInput("场景值须为 1–64 个可见字符 / scene must be 1–64 printable characters, no spaces",
                               code="invalid_scene")  # fmt: skip
        if not permanent and not 60 <= expire_seconds <= MAX_TEMPORARY_SECONDS:
            raise InvalidInput("临时二维码有效期 60 秒–30 天 / a temporary code lives 60 s to 30 days",
                               code="invalid_scene")  # fmt: skip
        source = self.sources.get(workspace_id, source_id)
        if source.type != "wechat_oa":
            raise InvalidInput(f"来源 {source_id} 不是公众号 / source {source_id} is not an official account",
                               code="invalid_source")  # fmt: skip
        with reading(self.engine) as conn:
            taken = conn.execute(select(_Q.c.id).where(_Q.c.workspace_id == workspace_id, _Q.c.source_id == source_id,
                                                       _Q.c.scene == scene)).first()  # fmt: skip
        if taken is not None:
            raise Conflict(f"场景值已存在 / scene {scene!r} already exists ({taken.id})", code="scene_taken")
        answer = self._ask_wechat(workspace_id, source_id, scene, permanent, expire_seconds)
        now = datetime.now(UTC)
        row = {"id": "qr_" + secrets.token_hex(8), "workspace_id": workspace_id, "source_id": source_id,
               "scene": scene, "kind": "permanent" if permanent else "temporary", "ticket": answer["ticket"],
               "url": answer["url"], "campaign": campaign, "store_id": store_id, "guide_id": guide_id,
               "channel": channel, "note": note, "created_at": now, "created_by": actor,
               "expires_at": None if permanent else now + timedelta(seconds=int(answer.get("expire_seconds")
                                                                                 or expire_seconds))}  # fmt: skip
        try:
            with self.engine.begin() as conn:
                conn.execute(_Q.insert().values(**row))
        except IntegrityError:
            raise Conflict(f"场景值已存在 / scene {scene!r} already exists", code="scene_taken") from None
        return _public(row)

    def _ask_wechat(self, workspace_id: str, source_id: str, scene: str, permanent: bool,
                    expire_seconds: int) -> dict[str, Any]:  # fmt: skip
        info = self.sources.get(workspace_id, source_id)
        secret = self.sources.secret_settings(workspace_id, source_id).get("app_secret")
        app_id = info.settings.get("app_id")
        if not app_id or not secret:
            raise InvalidInput("公众号来源需设置 app_id 与 app_secret / the source needs app_id and app_secret",
                               code="invalid_source")  # fmt: skip
        base = str(info.settings.get("api_base_url") or DEFAULT_API).rstrip("/")
        body: dict[str, Any] = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                                "action_info": {"scene": {"scene_str": scene}}}  # fmt: skip
        if not permanent:
            body["expire_seconds"] = expire_seconds
        with httpx.Client(timeout=10) as client:
            cache = tokens.shared(base, str(app_id), secret)
            fetch = tokens.oa_fetcher(client, base, str(app_id), secret)
            for _attempt in range(2):  # an expired token is fetched once more
                try:
                    token = cache.get(fetch)
                except tokens.TokenError as exc:
                    raise StorageUnavailable(f"微信令牌获取失败 / WeChat token: {exc.failure.error}",
                                             code="wechat_unavailable") from None  # fmt: skip
                reply = tokens.post_json(client, f"{base}/cgi-bin/qrcode/create", token, body)
                if isinstance(reply, tokens.Failure):
                    raise StorageUnavailable(
                        f"微信接口不可用 / WeChat API: {reply.error}", code="wechat_unavailable"
                    )
                code = tokens.errcode(reply)
                if code in tokens.OA_TOKEN_EXPIRED:
                    cache.invalidate(token)
                    continue
                if code != 0 or not reply.get("ticket") or not reply.get("url"):
                    raise InvalidInput(f"微信拒绝创建二维码 / WeChat refused the code: {code} {reply.get('errmsg')}",
                                       code="wechat_refused")  # fmt: skip
                return reply
        raise StorageUnavailable(
            "微信令牌反复失效 / WeChat kept refusing the token", code="wechat_unavailable"
        )

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(_Q).where(_Q.c.workspace_id == workspace_id).order_by(_Q.c.created_at)
            ).all()
        return [_public(r._mapping) for r in rows]

    def get(self, workspace_id: str, qr_id: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = conn.execute(select(_Q).where(_Q.c.workspace_id == workspace_id, _Q.c.id == qr_id)).first()
        if row is None:
            raise NotFound(f"二维码不存在 / QR code {qr_id} not found", code="qr_not_found")
        return _public(row._mapping)

    def png(self, workspace_id: str, qr_id: str, box_size: int = 8) -> bytes:
        """The code as a PNG, rendered here from the URL WeChat gave (nothing is downloaded)."""
        url = self.get(workspace_id, qr_id)["url"]
        image = qrcode.make(url, image_factory=PyPNGImage, box_size=box_size, border=4)
        out = io.BytesIO()
        image.save(out)
        return out.getvalue()

    def attribution(self, workspace_id: str, source_id: str | None = None) -> dict[str, dict[str, Any]]:
        """scene -> what it stands for (campaign, store_id, guide_id, channel, qr_id)."""
        stmt = select(_Q).where(_Q.c.workspace_id == workspace_id)
        if source_id is not None:
            stmt = stmt.where(_Q.c.source_id == source_id)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return {r.scene: {"qr_id": r.id, "campaign": r.campaign, "store_id": r.store_id, "guide_id": r.guide_id,
                          "channel": r.channel} for r in rows}  # fmt: skip


def _public(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": row["id"], "source_id": row["source_id"], "scene": row["scene"], "kind": row["kind"],
            "url": row["url"], "ticket": row["ticket"], "expires_at": iso(row["expires_at"]),
            "campaign": row["campaign"], "store_id": row["store_id"], "guide_id": row["guide_id"],
            "channel": row["channel"], "note": row["note"], "created_at": iso(row["created_at"]),
            "created_by": row["created_by"]}  # fmt: skip


def scans(warehouse: Any, workspace_id: str, scenes: list[str]) -> dict[str, dict[str, int]]:
    """Per scene: scans and follows through it, and the distinct people who did them."""
    from quanyu.warehouse.functions import json_text

    if not scenes:
        return {}
    pe = warehouse.table("person_events")
    scene = json_text(pe.properties, "$.scene")
    hits = pe.filter(pe.workspace_id == workspace_id, pe.event.isin(["QR Scanned", "Official Account Followed"]),
                     scene.isin(scenes))  # fmt: skip
    expr = hits.group_by(scene=scene).aggregate(
        scans=(hits.event == "QR Scanned").sum(), follows=(hits.event == "Official Account Followed").sum(),
        people=hits.profile_id.nunique(),
    )  # fmt: skip
    out = {s: {"scans": 0, "follows": 0, "people": 0} for s in scenes}
    for row in warehouse.execute(expr).to_pylist():
        out[row["scene"]] = {"scans": int(row["scans"] or 0), "follows": int(row["follows"] or 0),
                             "people": int(row["people"] or 0)}  # fmt: skip
    return out
