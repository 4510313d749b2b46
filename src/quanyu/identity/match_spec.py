"""The person-matching spec: which comparisons, blocking rules and training rules a match uses.

A spec is data (a frozen pydantic model, JSON-storable, versioned) chosen from the standardised
columns a list has (`person_spec`); `comparisons.splink_settings` compiles it into Splink's
settings at the moment a match runs.

Blocking rules are conjunctions of columns or fixed SQL snippets over the standardised columns
(never user text). Each one must catch duplicates the others miss while keeping the candidate
pairs of a million records in the low millions: contact points alone (phone, email, national
id), a birth date with a surname initial, a masked phone's digits with a surname initial, a
name with a postcode or district.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

ComparisonName = Literal["name", "birth_date", "contact", "email", "national_id", "street_number"]
Rule = tuple[str, ...]

NAME_COLUMNS = ("surname", "given_name", "name_key", "name_fz")
PHONE_COLUMNS = ("phone", "phone_prefix3", "phone_last4")
PLACE_COLUMNS = ("address", "address_fz", "postcode", "district", "city", "region")

# Which standardised columns each comparison reads (any one present enables `contact`).
COMPARISON_COLUMNS: dict[ComparisonName, tuple[str, ...]] = {
    "name": NAME_COLUMNS,
    "birth_date": ("birth_date",),
    "email": ("email",),
    "national_id": ("national_id",),
    "street_number": ("street_number",),
    "contact": PHONE_COLUMNS + PLACE_COLUMNS,
}

# In order of value; the rules are taken while their pairs fit `max_pairs_per_record` in all
# (`scoring.affordable_rules`), so broad rules (a name alone) serve small lists only.
_INITIALS = (  # first letters of surname and given name, in either order: swaps block together
    "least(substr(surname, 1, 1), substr(given_name, 1, 1))",
    "greatest(substr(surname, 1, 1), substr(given_name, 1, 1))",
)
BLOCKING_RULES: tuple[Rule, ...] = (
    ("phone",),
    ("email",),
    ("national_id",),
    ("birth_date", *_INITIALS),
    ("birth_date", "phone_last4"),
    ("phone_prefix3", "phone_last4", "substr(surname, 1, 1)"),
    ("name_fz", "phone_last4"),
    ("name_key", "postcode"),
    ("address", "substr(surname, 1, 1)"),
    ("birth_date", "postcode"),
    ("name_key", "district", "substr(birth_date, 1, 3)"),
    ("name_key", "street_number"),
    ("birth_date", "district"),
    ("name_key", "city"),
    ("name_key",),
    ("birth_date",),
)
# EM needs pairs that are mostly, but not all, matches; each comparison is trained by a rule
# that does not block on it. Personal identifiers come first: pairs sharing only a phone or an
# address include families (one surname, one home, different people), which would teach EM
# that a different given name is common among matches.
TRAINING_RULES: tuple[Rule, ...] = (
    ("email",),
    ("national_id",),
    ("phone", "birth_date"),
    ("phone", "name_key"),
    ("name_key", "birth_date"),
    ("name_key", "postcode"),
    ("birth_date", "postcode"),
    ("phone",),
    ("name_key",),
    ("birth_date",),
)
# Rules that rarely admit a false match, for the prior: how many pairs are matches at all.
DETERMINISTIC_RULES: tuple[Rule, ...] = (
    ("name_key", "birth_date"),
    ("name_key", "phone"),
    ("name_key", "email"),
    ("national_id",),
)


class PersonMatchSpec(BaseModel):
    """What a match compares, how it finds candidate pairs and how it trains. Plain data."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = 1
    comparisons: tuple[ComparisonName, ...]
    contact_columns: tuple[str, ...] = ()  # the phone and place columns present
    blocking_rules: tuple[Rule, ...]
    training_rules: tuple[Rule, ...]
    deterministic_rules: tuple[Rule, ...]
    # Share of true matches the deterministic rules are expected to find.
    deterministic_recall: float = 0.7
    # Candidate pairs per record all blocking rules together may generate (before repeats).
    max_pairs_per_record: float = 5.0
    # Smaller lists keep the levels' priors: too few pairs to learn m and u from.
    min_records_to_train: int = 1000
    u_max_pairs: float = 5e5
    em_max_pairs: float = 5e5
    em_max_iterations: int = 10
    seed: int = 42


def rule_columns(rule: Rule) -> set[str]:
    """The standardised columns a rule reads (`substr(surname, 1, 1)` reads `surname`)."""
    return {word for part in rule for word in re.findall(r"[a-z_0-9]+", part)} & _COLUMN_NAMES


_COLUMN_NAMES = frozenset(c for cols in COMPARISON_COLUMNS.values() for c in cols)


def person_spec(columns: Iterable[str]) -> PersonMatchSpec:
    """The spec for a table with these standardised columns (see `person_records.standardise`)."""
    present = set(columns)
    comparisons: list[ComparisonName] = [
        name
        for name, needed in COMPARISON_COLUMNS.items()
        if (present & set(needed) if name == "contact" else set(needed) <= present)
    ]
    usable = [r for r in BLOCKING_RULES if rule_columns(r) <= present]
    return PersonMatchSpec(
        comparisons=tuple(comparisons),
        contact_columns=tuple(c for c in COMPARISON_COLUMNS["contact"] if c in present),
        blocking_rules=tuple(usable),
        training_rules=tuple(r for r in TRAINING_RULES if rule_columns(r) <= present),
        deterministic_rules=tuple(r for r in DETERMINISTIC_RULES if rule_columns(r) <= present),
    )


def trained_by(rule: Rule, spec: PersonMatchSpec) -> set[ComparisonName]:
    """The comparisons an EM session blocked on `rule` estimates: those not reading its columns."""
    read = rule_columns(rule)
    return {c for c in spec.comparisons if not read & set(_comparison_columns(c, spec))}


def _comparison_columns(name: ComparisonName, spec: PersonMatchSpec) -> tuple[str, ...]:
    return spec.contact_columns if name == "contact" else COMPARISON_COLUMNS[name]
