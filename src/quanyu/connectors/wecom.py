"""WeCom (企业微信) external-contact callbacks (客户联系 → 接收事件服务器): the store guide –
customer relationship. Pure functions, no I/O.

WeCom callbacks are always encrypted with the official account's safe-mode scheme (the same
signature, AES-256-CBC and XML parsing, reused from `wechat_oa`), the receive id at the end of
the plaintext being the corp id. The customer is the `wecom_external_userid` identifier, the
guide (WeCom UserID) the event's `guide_id`, as in the demo generator's WeCom events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from quanyu import __version__
from quanyu.connectors.wechat_oa import MAX_BODY_BYTES, WeChatError, check_signature, decrypt, parse_xml

__all__ = [
    "MAX_BODY_BYTES",
    "WeChatError",
    "check_signature",
    "decrypt_echostr",
    "decrypt_message",
    "event_of",
    "message_id",
    "normalise",
    "parse_xml",
]

LIBRARY = {"name": "quanyu-wecom", "version": __version__}
_NAMESPACE = uuid.UUID("6f1f3c52-9a0e-4c8b-8d7e-7765636f6d21")

_CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "add_external_contact": ("WeCom Contact Added", {}),
    "add_half_external_contact": ("WeCom Contact Added", {"half": True}),
    "edit_external_contact": ("WeCom Contact Edited", {}),
    "del_external_contact": ("WeCom Contact Removed", {"by": "guide"}),
    "del_follow_user": ("WeCom Contact Removed", {"by": "customer"}),
}


def _decrypt(aes_key: str, corp_id: str, encrypted: str) -> bytes:
    try:
        return decrypt(aes_key, corp_id, encrypted)
    except WeChatError as err:
        if err.code == "wechat_wrong_app_id":
            raise WeChatError(
                "wecom_wrong_corp_id", "CorpID 不匹配 / the callback is for another corp id"
            ) from None
        raise


def decrypt_echostr(aes_key: str, corp_id: str, echostr: str) -> str:
    """The URL verification's plaintext answer (after the caller checked msg_signature)."""
    plain = _decrypt(aes_key, corp_id, echostr)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise WeChatError("wechat_bad_ciphertext", "解密失败 / decryption failed (not UTF-8)") from None


def decrypt_message(body: bytes, token: str, aes_key: str, corp_id: str, q: dict[str, str]) -> dict[str, str]:
    """The outer `<xml><Encrypt/>` envelope checked (msg_signature) and decrypted to its fields."""
    outer = parse_xml(body)
    encrypted = outer.get("Encrypt", "")
    if not encrypted or not check_signature(
        q.get("msg_signature"), token, q.get("timestamp", ""), q.get("nonce", ""), encrypted
    ):
        raise WeChatError("invalid_signature", "企业微信签名无效 / invalid WeCom signature")
    return parse_xml(_decrypt(aes_key, corp_id, encrypted))


def message_id(fields: dict[str, str], corp_id: str) -> str:
    """Deterministic, so WeCom's retries of one callback carry the same messageId."""
    parts = [corp_id] + [
        fields.get(k, "") for k in ("ExternalUserID", "UserID", "Event", "ChangeType", "CreateTime")
    ]
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def event_of(fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The Segment event name and properties for one callback."""
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    state = fields.get("State") or None
    base: dict[str, Any] = {
        "guide_id": fields.get("UserID") or None,
        "external_userid": fields.get("ExternalUserID") or None,
        "state": state,
        "scene": state,
        "welcome_code": fields.get("WelcomeCode") or None,
    }
    if event == "change_external_contact" and change in _CHANGES:
        name, extra = _CHANGES[change]
        return name, {**base, **extra}
    return "WeCom Event", {**base, "event": event, "change_type": change or None}


def normalise(fields: dict[str, str], corp_id: str) -> dict[str, Any]:
    """One callback as a Segment `track` message, shaped like the generator's WeCom events."""
    name, props = event_of(fields)
    external = fields.get("ExternalUserID", "")
    message: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": message_id(fields, corp_id),
        # No customer in the callback (a tag or group-chat change): the guide, else the corp.
        "anonymousId": external
        or (f"wecom_user:{corp_id}/{fields['UserID']}" if fields.get("UserID") else f"wecom_corp:{corp_id}"),
        "properties": {"corp_id": corp_id, **{k: v for k, v in props.items() if v is not None}},
        "context": {"library": LIBRARY},
    }
    if external:
        message["context"]["externalIds"] = [
            {"id": external, "type": "wecom_external_userid", "collection": "users", "encoding": "none"}
        ]
    created = fields.get("CreateTime", "")
    if created.isdigit():
        message["timestamp"] = datetime.fromtimestamp(int(created), UTC).isoformat()
    return message
