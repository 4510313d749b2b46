"""Comparisons: a person-matching spec compiled into Splink's settings when a match runs.

Each comparison is a list of levels from most to least alike, each with a prior m and u.
Fuzzy levels read the `*_fz` twins of a column (one byte per character, see
`person_text.fold_characters`); exact levels read the values themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator

from quanyu.identity.match_spec import ComparisonName, PersonMatchSpec, Rule


def blocking_rule(rule: Rule) -> BlockingRuleCreator:
    return block_on(*rule)


def splink_settings(spec: PersonMatchSpec, blocking_rules: Iterable[Rule], records: int) -> SettingsCreator:
    """Splink settings for a dedupe of `records` records under `spec`.

    Until estimated, the share of pairs that match assumes each record has about one duplicate.
    Lists too small to train on are also too small for term frequencies: in ten records, a name
    two of them share looks as common as 王伟.
    """
    frequencies = records >= spec.min_records_to_train
    return SettingsCreator(
        link_type="dedupe_only",
        probability_two_random_records_match=min(0.5, 1 / max(records - 1, 1)),
        comparisons=[_COMPARISONS[name](spec, frequencies) for name in spec.comparisons],
        blocking_rules_to_generate_predictions=[blocking_rule(r) for r in blocking_rules],
        max_iterations=spec.em_max_iterations,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def _levels(name: str, levels: list[ComparisonLevelCreator]) -> ComparisonCreator:
    return cl.CustomComparison(
        comparison_levels=list[ComparisonLevelCreator | dict[str, Any]](levels), output_column_name=name
    )


def _custom(sql: str, label: str) -> ComparisonLevelCreator:
    return cll.CustomLevel(sql, label_for_charts=label)


def _prior(level: ComparisonLevelCreator, m: float, u: float) -> ComparisonLevelCreator:
    """Starting values for a level: how often matches (m) and non-matches (u) land on it.

    Measured on a million generated records (`bench/dedupe.py`) and rounded. Training
    replaces them when the list is large enough to learn from; a level that random pairs
    never reach (two records sharing a phone) keeps its prior u.
    """
    return level.configure(m_probability=m, u_probability=u)


def _adjusted(level: ComparisonLevelCreator, column: str, frequencies: bool) -> ComparisonLevelCreator:
    """An exact level weighed by how common the value is (王伟 says less than 欧阳娜娜)."""
    return level.configure(tf_adjustment_column=column) if frequencies else level


def _one_digit_off(column: str) -> ComparisonLevelCreator:
    """One character differs between values of equal length (a mistyped digit). Hamming, not
    Levenshtein: seven times cheaper in DuckDB, and digits are rarely dropped, mostly mistyped."""
    sql = (
        f"CASE WHEN length({column}_l) = length({column}_r)"
        f" THEN hamming({column}_l, {column}_r) <= 1 ELSE false END"
    )
    return _custom(sql, "one character differs")


def _name(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    exact = "name_key_l = name_key_r AND coalesce(surname_l, '') = coalesce(surname_r, '')"
    one_apart = "levenshtein(name_fz_l, name_fz_r) <= 1"
    return _levels(
        "name",
        [
            cll.NullLevel("name_key"),
            _prior(_adjusted(_custom(exact, "exact"), "name_key", frequencies), 0.79, 3e-4),
            _prior(_custom("name_key_l = name_key_r", "surname and given name swapped"), 0.05, 2e-5),
            # One character apart says more in 张建国 than in 王伟, where it is 王 and nothing else.
            _prior(
                _custom(
                    f"{one_apart} AND least(length(name_fz_l), length(name_fz_r)) >= 3", "one character apart"
                ),
                0.1,
                1e-3,
            ),
            _prior(_custom(one_apart, "one character apart, two-character names"), 0.03, 0.01),
            _prior(cll.JaroWinklerLevel("name_fz", 0.9), 0.012, 2e-4),
            _prior(cll.JaroWinklerLevel("name_fz", 0.75), 0.003, 2e-3),
            _prior(cll.ExactMatchLevel("surname"), 0.003, 0.02),
            _prior(cll.ExactMatchLevel("given_name"), 0.001, 1e-3),
            _prior(cll.ElseLevel(), 0.01, 0.97),
        ],
    )


def _birth_date(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    swapped = (
        "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)"
        " AND substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2)"
        " AND substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)"
    )
    year_month = "substr(birth_date_l, 1, 7) = substr(birth_date_r, 1, 7)"
    exact = _adjusted(cll.ExactMatchLevel("birth_date"), "birth_date", frequencies)
    return _levels(
        "birth_date",
        [
            cll.NullLevel("birth_date"),
            _prior(exact, 0.92, 5e-5),
            _prior(_one_digit_off("birth_date"), 0.06, 1.5e-3),
            _prior(_custom(swapped, "day and month swapped"), 0.008, 1e-5),
            _prior(_custom(year_month, "same year and month"), 0.009, 1e-3),
            _prior(cll.ElseLevel(), 0.003, 0.998),
        ],
    )


def _email(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    user = "split_part(email_l, '@', 1) = split_part(email_r, '@', 1)"
    return _levels(
        "email",
        [
            cll.NullLevel("email"),
            _prior(cll.ExactMatchLevel("email"), 0.93, 1e-6),
            _prior(_custom(user, "same user name"), 0.02, 1e-5),
            _prior(cll.JaroWinklerLevel("email", 0.88), 0.01, 0.015),
            _prior(cll.ElseLevel(), 0.04, 0.985),
        ],
    )


def _national_id(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    return _levels(
        "national_id",
        [
            cll.NullLevel("national_id"),
            _prior(cll.ExactMatchLevel("national_id"), 0.95, 1e-7),
            _prior(cll.LevenshteinLevel("national_id", 1), 0.03, 1e-6),
            _prior(cll.ElseLevel(), 0.02, 1.0),
        ],
    )


def _street_number(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    return _levels(
        "street_number",
        [
            cll.NullLevel("street_number"),
            _prior(cll.ExactMatchLevel("street_number"), 0.9, 0.02),
            _prior(cll.ElseLevel(), 0.1, 0.98),
        ],
    )


def _contact(spec: PersonMatchSpec, frequencies: bool) -> ComparisonCreator:
    """Phone, address, postcode, district, city and region as one comparison, finest first.

    They are one fact at different grains: a shared address implies a shared postcode, and a
    family shares its home and often its phone. Counted as independent evidence, a phone and
    an address shared by two sisters would outweigh everything their names and birth dates
    say against a match.
    """
    cols = [c for c in spec.contact_columns if c not in ("address_fz", "phone", "phone_prefix3")]
    unknown = " OR ".join(f"coalesce({', '.join(f'{c}_{s}' for c in cols)}) IS NULL" for s in "lr")
    levels: list[ComparisonLevelCreator] = [
        _custom(unknown, "no phone or place on one side").configure(is_null_level=True)
    ]
    home = "address" if "address" in cols else "postcode" if "postcode" in cols else None
    if "phone_last4" in cols:
        levels += _phone_levels(home)
    if "address" in cols:
        levels.append(_prior(cll.ExactMatchLevel("address"), 0.1, 1e-6))
    if "postcode" in cols:
        levels.append(_prior(cll.ExactMatchLevel("postcode"), 0.1, 1e-4))
    if "address" in cols:  # one fuzzy level: Jaro-Winkler is the costliest test of a pair
        levels.append(_prior(cll.JaroWinklerLevel("address_fz", 0.85), 0.05, 1e-3))
    if "district" in cols:
        same_city = " AND coalesce(city_l = city_r, true)" if "city" in cols else ""
        levels.append(_prior(_custom(f"district_l = district_r{same_city}", "same district"), 0.05, 0.018))
    if "city" in cols:
        levels.append(_prior(cll.ExactMatchLevel("city"), 0.01, 0.09))
    if "region" in cols:
        levels.append(_prior(cll.ExactMatchLevel("region"), 0.005, 0.2))
    return _levels("contact", [*levels, _prior(cll.ElseLevel(), 0.005, 0.89)])


def _phone_levels(home: str | None) -> list[ComparisonLevelCreator]:
    def same() -> ComparisonLevelCreator:
        return cll.ExactMatchLevel("phone")

    def partial() -> ComparisonLevelCreator:
        digits = cll.And(cll.ExactMatchLevel("phone_prefix3"), cll.ExactMatchLevel("phone_last4"))
        return cll.Or(digits, _one_digit_off("phone"))

    levels = []
    if home is not None:
        levels += [
            _prior(cll.And(same(), cll.ExactMatchLevel(home)), 0.3, 1e-6).configure(
                label_for_charts=f"same phone and {home}"
            ),
            _prior(cll.And(partial(), cll.ExactMatchLevel(home)), 0.1, 1e-6).configure(
                label_for_charts=f"masked or mistyped phone, same {home}"
            ),
        ]
    return [
        *levels,
        _prior(same(), 0.35, 1e-6).configure(label_for_charts="same phone"),
        _prior(partial(), 0.15, 1e-5).configure(label_for_charts="masked or mistyped phone"),
    ]


_COMPARISONS: dict[ComparisonName, Callable[[PersonMatchSpec, bool], ComparisonCreator]] = {
    "name": _name,
    "birth_date": _birth_date,
    "email": _email,
    "national_id": _national_id,
    "street_number": _street_number,
    "contact": _contact,
}
