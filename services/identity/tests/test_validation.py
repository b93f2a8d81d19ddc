"""Unit tests of identity's validation rules (sections 3.2.1, 3.2.2, 3.2.4)."""

from __future__ import annotations

import pytest
from identity import validation as v
from servicekit.errors import InvalidArgument


@pytest.mark.notice("3.2.2")
@pytest.mark.parametrize("raw", ["a@example.com", " Ada.Lovelace+portal@Example.COM "])
def test_valid_email_addresses_are_normalised(raw: str) -> None:
    assert "@" in v.email(raw) and v.email(raw) == v.email(raw).strip()


@pytest.mark.notice("3.2.2")
@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@", "@example.com", "a b@example.com"])
def test_invalid_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        v.email(raw)
    assert raw not in refused.value.message or not raw


@pytest.mark.notice("3.2.2")
def test_phone_numbers_are_stored_in_e164() -> None:
    assert v.phone("020 7946 0018", "GB") == "+442079460018"
    assert v.phone("+33 1 23 45 67 89", "GB") == "+33123456789"
    assert v.phone("", "GB") == ""
    with pytest.raises(InvalidArgument):
        v.phone("12", "GB")


@pytest.mark.notice("3.2.1")
def test_countries_are_iso_3166_alpha_2() -> None:
    assert v.country("gb") == "GB"
    for bad in ("XX", "GBR", "1", ""):
        with pytest.raises(InvalidArgument):
            v.country(bad)


@pytest.mark.notice("3.2.1")
def test_usernames_are_unicode_normalised_and_case_insensitive() -> None:
    assert v.username_key("ＡＤＡ") == v.username_key("ada")  # fullwidth letters fold to ASCII
    assert v.username_key("Straße") == v.username_key("STRASSE")
    for bad in ("ab", "x" * 65, "has space", "semi;colon"):
        with pytest.raises(InvalidArgument):
            v.username(bad)


@pytest.mark.notice("3.2.4")
@pytest.mark.rule("R-SEC-2")
def test_passwords_need_twelve_characters_and_must_not_be_common() -> None:
    assert v.password("tulip orbit gravel")
    with pytest.raises(InvalidArgument):
        v.password("tulip orbit")  # 11 characters
    with pytest.raises(InvalidArgument):
        v.password("x" * 12)  # long enough, trivially guessable
    with pytest.raises(InvalidArgument):
        v.password("Password1234")  # among the most common
    with pytest.raises(InvalidArgument):
        v.password("Lovelace2024", ("ada", "Lovelace"))  # built from the person's own name


def test_text_fields_are_limited_and_refuse_control_characters() -> None:
    assert v.text("company", "  Acme  ") == "Acme"
    with pytest.raises(InvalidArgument):
        v.text("company", "x" * 101)
    with pytest.raises(InvalidArgument):
        v.text("company", "bad\x00byte")
    with pytest.raises(InvalidArgument):
        v.text("company", "   ")
    assert v.text("company", "", required=False) == ""
