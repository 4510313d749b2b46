"""Profiles (用户画像): one materialised row per person, with traits, computed traits, RFM and tags.

refresh(warehouse, ws)                      # every profile of the workspace
refresh(warehouse, ws, ["prof_…"], rules)   # just these (and merged-away ids)
profile_view(warehouse, ws, "prof_…")       # one profile as a dict
search(warehouse, ws, {"all": [...]}, tags=["高价值"])
add_tag / remove_tag                        # manual tags (an append-only log)
"""

from quanyu.profiles.computed import Commerce
from quanyu.profiles.conditions import Condition, Match, TagRule, parse_match, parse_rule, parse_rules
from quanyu.profiles.identifiers import REACH, Reach
from quanyu.profiles.materialise import RefreshResult, refresh
from quanyu.profiles.rfm import SEGMENT_LABELS
from quanyu.profiles.tags import add_tag, profile_tags, remove_tag
from quanyu.profiles.traits import DEFAULT_SOURCE_PRIORITY, TraitPrecedence
from quanyu.profiles.view import profile_view, search

__all__ = [
    "DEFAULT_SOURCE_PRIORITY",
    "REACH",
    "SEGMENT_LABELS",
    "Commerce",
    "Condition",
    "Match",
    "Reach",
    "RefreshResult",
    "TagRule",
    "TraitPrecedence",
    "add_tag",
    "parse_match",
    "parse_rule",
    "parse_rules",
    "profile_tags",
    "profile_view",
    "refresh",
    "remove_tag",
    "search",
]
