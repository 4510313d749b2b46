"""WeChat official account (微信公众号) message push: signatures, safe-mode (AES) decryption,
XML parsing and normalisation to Segment `track` messages. Pure functions, no I/O.

The shape follows the demo generator's official-account events (`oa_who`): the openid is the
`anonymousId` and a `wechat_openid` identifier scoped to the app id in `context.externalIds`,
so identity resolution treats pushed and generated events alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from quanyu import __version__

# WeChat's pushes are a few hundred bytes; anything near this is not from WeChat.
MAX_BODY_BYTES = 64 * 1024
LIBRARY = {"name": "quanyu-wechat-oa", "version": __version__}
_NAMESPACE = uuid.UUID("0c6b1d7e-3f0a-4d55-9a57-776563686174")
_BLOCK = 32  # WeChat pads PKCS#7 to 32 bytes, not AES's 16


class WeChatError(ValueError):
    """A push that is not a valid, authentic WeChat message (`code` says why)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def signature(*parts: str) -> str:
    """sha1 of the lexicographically sorted concatenation of `parts` (token, timestamp, nonce[, Encrypt])."""
    # WeChat's protocol fixes SHA-1 here; it is theirs to change.
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324


def check_signature(given: str | None, *parts: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).lower(), signature(*parts))


def decrypt(aes_key: str, app_id: str, encrypted: str) -> bytes:
    """Decrypt a safe-mode `Encrypt` value; returns the inner XML after checking the app id."""
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise WeChatError(
            "wechat_bad_ciphertext", "密文或 EncodingAESKey 无效 / invalid Encrypt or aes_key"
        ) from None
    if len(key) != 32 or not data or len(data) % 16:
        raise WeChatError("wechat_bad_ciphertext", "密文或 EncodingAESKey 无效 / invalid Encrypt or aes_key")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise WeChatError("wechat_bad_ciphertext", "解密失败 / decryption failed (bad padding)")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise WeChatError("wechat_bad_ciphertext", "解密失败 / decryption failed (too short)")
    (length,) = struct.unpack(">I", plain[16:20])
    xml, tail = plain[20 : 20 + length], plain[20 + length :]
    if len(xml) != length:
        raise WeChatError("wechat_bad_ciphertext", "解密失败 / decryption failed (bad length)")
    if not hmac.compare_digest(tail, app_id.encode()):
        raise WeChatError("wechat_wrong_app_id", "AppID 不匹配 / the message is for another app id")
    return xml


def parse_xml(body: bytes) -> dict[str, str]:
    """The flat `<xml>` document WeChat pushes, as tag -> text. No DTDs, no entities, size-capped."""
    if len(body) > MAX_BODY_BYTES:
        raise WeChatError(
            "wechat_too_large", f"消息超过 {MAX_BODY_BYTES} 字节 / message exceeds {MAX_BODY_BYTES} bytes"
        )
    try:
        # Checked and parsed as decoded text, so no other declared encoding can hide a DTD.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WeChatError("wechat_bad_xml", "XML 不是 UTF-8 / XML is not UTF-8") from None
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise WeChatError("wechat_dtd_refused", "不接受 DTD / entity 声明 / DTDs and entities are refused")
    try:
        # No DTD can reach the parser (refused above), so no entity expansion: defusedxml's job.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise WeChatError("wechat_bad_xml", f"XML 无效 / invalid XML: {exc}") from None
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt for a message Quanyu sent (template message job finished)."""

    kind: str  # "delivered" | "failed"
    provider_id: str
    detail: dict[str, Any]


def receipt(fields: dict[str, str]) -> Receipt | None:
    if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH":
        return None
    msg_id = fields.get("MsgID") or fields.get("MsgId")
    if not msg_id:
        return None
    status = fields.get("Status", "")
    return Receipt("delivered" if status == "success" else "failed", str(msg_id), {"status": status})


def message_id(fields: dict[str, str], app_id: str) -> str:
    """Deterministic, so WeChat's retries of one push carry the same messageId (the pipeline drops repeats)."""
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    sender = fields.get("FromUserName", "")
    if msg_id:
        key = f"{app_id}/{sender}/msg/{msg_id}"
    else:
        key = f"{app_id}/{sender}/{fields.get('CreateTime', '')}/{fields.get('MsgType', '')}/{fields.get('Event', '')}"
    return str(uuid.uuid5(_NAMESPACE, key))


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def event_of(fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The Segment event name and properties for one push."""
    msg_type = fields.get("MsgType", "")
    if msg_type != "event":
        props: dict[str, Any] = {"msg_type": msg_type, "msg_id": fields.get("MsgId")}
        if msg_type == "text":
            props["content"] = fields.get("Content", "")
        return "Message Received", props
    event = fields.get("Event", "")
    key = fields.get("EventKey") or ""
    match event.upper():
        case "SUBSCRIBE":
            qr = key.startswith("qrscene_")
            props = {
                "scene": key.removeprefix("qrscene_") if qr else None,
                "scene_type": "qr_code" if qr else "other",
            }
            if fields.get("Ticket"):
                props["ticket"] = fields["Ticket"]
            return "Official Account Followed", props
        case "SCAN":
            return "QR Scanned", {"scene": key, "ticket": fields.get("Ticket")}
        case "UNSUBSCRIBE":
            return "Official Account Unfollowed", {}
        case "CLICK":
            return "Menu Clicked", {"key": key}
        case "VIEW":
            return "Menu Link Opened", {"url": key}
        case "LOCATION":
            return "Location Reported", {
                "latitude": _float(fields.get("Latitude")),
                "longitude": _float(fields.get("Longitude")),
                "precision": _float(fields.get("Precision")),
            }
        case "TEMPLATESENDJOBFINISH":
            return "Template Message Finished", {
                "msg_id": fields.get("MsgID") or fields.get("MsgId"),
                "status": fields.get("Status"),
            }
    return "WeChat Event", {"event": event, "event_key": key or None}


def normalise(fields: dict[str, str], app_id: str) -> dict[str, Any]:
    """One push as a Segment `track` message, shaped like the generator's official-account events."""
    openid = fields.get("FromUserName", "")
    if not openid:
        raise WeChatError("wechat_bad_message", "缺少 FromUserName / FromUserName is missing")
    name, props = event_of(fields)
    message: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": message_id(fields, app_id),
        "anonymousId": openid,
        "properties": {"app_id": app_id, **{k: v for k, v in props.items() if v is not None}},
        "context": {
            "library": LIBRARY,
            "externalIds": [
                {
                    "id": openid,
                    "type": "wechat_openid",
                    "collection": "users",
                    "encoding": "none",
                    "app_id": app_id,
                }
            ],
        },
    }
    created = fields.get("CreateTime", "")
    if created.isdigit():
        message["timestamp"] = datetime.fromtimestamp(int(created), UTC).isoformat()
    return message
