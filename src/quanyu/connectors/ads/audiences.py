"""Audience files for ad platforms (人群包 / 号码包): a segment's members as hashed phones or
device ids, for custom audiences and lookalikes (腾讯广告 DMP, 巨量引擎云图/DMP, 百度观星盘,
小红书聚光 …).

Each value is normalised first, the way the platforms normalise before they hash, so the
hashes match theirs:

- phone: an 11-digit mainland mobile (`+86`, `0086`, spaces and dashes removed); numbers that
  are not mainland mobiles are left out (the platforms' phone packages are mainland only);
- device_id: IDFA upper case (its native iOS form, `6D92078A-8246-4BA4-AE5B-76104861E7DC`);
  IMEI, MEID, OAID and Android ID lower case. A value shaped like a UUID is taken for an IDFA
  (`device_case=auto`); Huawei OAIDs share that shape, so for a list of Android devices only
  pass `device_case=lower` (or `upper` to force IDFA handling).

then hashed with MD5 or SHA-256 (UTF-8 bytes, lowercase hex), deduplicated and sorted, one per
line (`txt`) or as a one-column CSV with a header. Raw values never leave this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from quanyu.errors import InvalidInput
from quanyu.identity.identifiers import is_junk, normalise_phone
from quanyu.warehouse.base import Warehouse

ID_TYPES = ("phone", "device_id")
HASHES = ("md5", "sha256")
FORMATS = ("txt", "csv")
DEVICE_CASES = ("auto", "upper", "lower")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
_SPACES = re.compile(r"\s+")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def audience_phone(value: str) -> str | None:
    """An 11-digit mainland mobile, or None."""
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact.startswith(("+", "00")) and not compact.lstrip("+").removeprefix("00").startswith("86"):
        # Another country's number (`+1 415 555 0100`); without its `+1` it would look like a
        # mainland mobile, and hash as somebody else's.
        return None
    phone = normalise_phone(value)
    return phone if phone is not None and _MAINLAND_MOBILE.match(phone) else None


def audience_device(value: str, case: str = "auto") -> str | None:
    """A device id as the platforms hash it: IDFA upper case, other ids lower case."""
    text = _SPACES.sub("", value)
    if not text or is_junk(text):  # the zeroed IDFA of limited ad tracking, placeholders
        return None
    upper = case == "upper" or (case == "auto" and _UUID.match(text) is not None)
    return text.upper() if upper else text.lower()


def normaliser(id_type: str, device_case: str = "auto") -> Callable[[str], str | None]:
    if id_type == "phone":
        return audience_phone
    return lambda value: audience_device(value, device_case)


def hashed(value: str, algorithm: str) -> str:
    data = value.encode()
    if algorithm == "md5":
        # MD5 is what the platforms ask for here; it identifies, it protects nothing.
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Audience:
    body: bytes
    count: int  # distinct hashed values in the file
    members: int  # segment members
    matched: int  # members with at least one usable value

    @property
    def match_rate(self) -> float:
        return round(self.matched / self.members, 4) if self.members else 0.0


def check(id_type: str, hash_: str, format_: str, device_case: str = "auto") -> None:
    for name, value, allowed in (("id_type", id_type, ID_TYPES), ("hash", hash_, HASHES),
                                 ("format", format_, FORMATS), ("device_case", device_case, DEVICE_CASES)):  # fmt: skip
        if value not in allowed:
            raise InvalidInput(f"{name} 只能是 {' | '.join(allowed)} / {name} must be one of {', '.join(allowed)}",
                               code="invalid_audience_request")  # fmt: skip


def render(values: Iterable[tuple[str, str]], id_type: str, hash_: str, format_: str, members: int,
           device_case: str = "auto") -> Audience:  # fmt: skip
    """The file from (profile_id, raw value) pairs."""
    check(id_type, hash_, format_, device_case)
    normalise = normaliser(id_type, device_case)
    out: set[str] = set()
    matched: set[str] = set()
    for profile_id, raw in values:
        value = normalise(raw) if raw else None
        if value is None:
            continue
        out.add(hashed(value, hash_))
        matched.add(profile_id)
    lines = sorted(out)
    header = [f"{id_type}_{hash_}"] if format_ == "csv" else []
    text = "".join(f"{line}\n" for line in [*header, *lines])
    return Audience(text.encode(), len(lines), members, len(matched))


def build(warehouse: Warehouse, workspace_id: str, segment_id: str, id_type: str, hash_: str, format_: str,
          device_case: str = "auto") -> Audience:  # fmt: skip
    """The segment's current members' identifiers of `id_type`, as an audience file."""
    check(id_type, hash_, format_, device_case)
    members = warehouse.table("segment_members")
    mine = members.filter(members.workspace_id == workspace_id, members.segment_id == segment_id)
    nodes = warehouse.table("identity_nodes")
    theirs = nodes.filter(nodes.workspace_id == workspace_id, nodes.id_type == id_type)
    held = theirs.semi_join(mine, theirs.profile_id == mine.profile_id).select("profile_id", "value")
    count = int(warehouse.execute(mine.count().as_table()).column(0)[0].as_py())
    rows = warehouse.execute(held).to_pylist()
    return render(((r["profile_id"], r["value"]) for r in rows), id_type, hash_, format_, count, device_case)
