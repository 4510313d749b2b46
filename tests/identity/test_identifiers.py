"""Identifier normalisation, junk values and workspace-declared types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.errors import InvalidInput
from quanyu.identity.identifiers import JUNK_VALUES, Identifier, IdentifierTypes

TYPES = IdentifierTypes()


@pytest.mark.parametrize(
    "raw",
    [
        "13800001234",
        "+86 138 0000 1234",
        "008613800001234",
        "86-138-0000-1234",
        "138 0000 1234",
        "１３８００００１２３４",
    ],
)
def test_mainland_mobiles_have_one_canonical_form(raw: str) -> None:
    assert TYPES.identify("phone", raw) == Identifier("phone", "13800001234")


def test_masked_phones_are_partial_evidence_never_a_merge_key() -> None:
    masked = TYPES.identify("phone", "138****1234")
    assert masked == Identifier("phone_masked", "138****1234")
    assert not TYPES.get("phone_masked").links
    assert TYPES.identify("phone", "138xxxx1234") == Identifier("phone_masked", "138****1234")


def test_other_numbers_keep_their_country_code_and_garbage_is_refused() -> None:
    assert TYPES.identify("phone", "+44 20 7946 0958") == Identifier("phone", "+442079460958")
    # A US number whose digits look like a mainland mobile stays a US number.
    assert TYPES.identify("phone", "+1 415 555 0100") == Identifier("phone", "+14155550100")
    assert TYPES.identify("phone", "0014155550100") == Identifier("phone", "+14155550100")
    for raw in ("12345", "phone", "1380000123", "2380000123x"):
        assert TYPES.identify("phone", raw) is None


def test_emails_are_case_folded_and_checked() -> None:
    assert TYPES.identify("email", "  Li.Wei@Example.COM ") == Identifier("email", "li.wei@example.com")
    assert TYPES.identify("email", "not-an-email") is None


@pytest.mark.parametrize(
    "junk",
    ["null", "undefined", "0", "guest", "anonymous", "", "  ", "11111111111", "00000000", "游客", "NULL"],
)
@pytest.mark.parametrize("type_name", ["user_id", "anonymous_id", "device_id", "member_card", "phone"])
def test_junk_values_never_become_identifiers(junk: str, type_name: str) -> None:
    assert TYPES.identify(type_name, junk) is None


@pytest.mark.parametrize(
    "placeholder", ["00000000-0000-0000-0000-000000000000", "02:00:00:00:00:00", "9774D56D682E549C"]
)
def test_placeholder_device_ids_are_junk(placeholder: str) -> None:
    """A zeroed IDFA (ad tracking limited), Android's fixed MAC, the ANDROID_ID of a faulty batch."""
    assert TYPES.identify("device_id", placeholder) is None
    assert TYPES.identify("device_id", "7936D536-243D-4570-AC1E-EA1F265974A7") is not None


def test_openids_are_scoped_to_their_app() -> None:
    oa = TYPES.identify("wechat_openid", "oAbC123", scope="wx_oa_1")
    other_app = TYPES.identify("wechat_openid", "oAbC123", scope="wx_oa_2")
    assert oa is not None and other_app is not None and oa.key != other_app.key
    assert TYPES.identify("wechat_openid", "oAbC123") is None  # without its app id it can't be compared
    unionid = TYPES.identify("wechat_unionid", "uX1", scope="ignored")
    assert unionid is not None and unionid.key == "wechat_unionid:uX1"


def test_custom_types_are_declared_per_workspace() -> None:
    types = IdentifierTypes([IdentifierTypes.custom("loyalty_no", 88, 2, "积分卡号", blocklist=["NA-0"])])
    assert types.identify("loyalty_no", " LX-42 ") == Identifier("loyalty_no", "LX-42")
    assert types.identify("loyalty_no", "na-0") is None
    with pytest.raises(InvalidInput):
        IdentifierTypes([IdentifierTypes.custom("Bad Name", 1, 1)])
    with pytest.raises(InvalidInput):
        TYPES.get("loyalty_no")  # another workspace does not have it


def test_non_string_values_are_handled() -> None:
    assert TYPES.identify("user_id", 42) == Identifier("user_id", "42")
    assert TYPES.identify("user_id", True) is None
    assert TYPES.identify("user_id", None) is None
    assert TYPES.identify("user_id", {"a": 1}) is None
    assert TYPES.identify("user_id", "x" * 300) is None


@given(
    st.sampled_from(["user_id", "phone", "email", "device_id", "member_card", "anonymous_id"]),
    st.text(max_size=40),
)
def test_normalising_twice_changes_nothing(type_name: str, raw: str) -> None:
    first = TYPES.identify(type_name, raw)
    if first is not None:
        assert TYPES.identify(first.type, first.value) == first
        assert first.value.casefold() not in JUNK_VALUES


def test_digits_of_other_scripts_are_not_a_phone() -> None:
    from quanyu.identity.identifiers import normalise_phone

    assert normalise_phone("١٣٨٠٠٠٠١٢٣٤") is None  # Arabic-Indic digits
    assert normalise_phone("１３８００００１２３４") == "13800001234"  # full-width: NFKC makes them ASCII
