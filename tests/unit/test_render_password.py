"""Unattend password encoding."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from labctl.render import decode_unattend_password, encode_unattend_password


def test_known_vector() -> None:
    # base64(UTF-16LE("P@ssw0rd" + "AdministratorPassword")), as Windows SIM writes it.
    expected = base64.b64encode("P@ssw0rdAdministratorPassword".encode("utf-16-le")).decode()
    assert encode_unattend_password("P@ssw0rd") == expected
    assert expected.startswith("UABAAHMAcwB3ADAAcgBkAEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIA")


def test_password_kind_suffix() -> None:
    value = encode_unattend_password(SecretStr("Secret1!"), "Password")
    assert base64.b64decode(value).decode("utf-16-le") == "Secret1!Password"


def test_round_trip_unicode() -> None:
    for pw in ["Pä55wörd€", "", "with space & <xml>"]:
        assert decode_unattend_password(encode_unattend_password(pw)).get_secret_value() == pw


def test_decode_rejects_wrong_suffix_without_echo() -> None:
    value = encode_unattend_password("hunter2", "Password")
    with pytest.raises(ValueError) as info:
        decode_unattend_password(value, "AdministratorPassword")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError):
        decode_unattend_password("not base64!")


def test_unknown_kind() -> None:
    with pytest.raises(ValueError):
        encode_unattend_password("x", "UserPassword")  # type: ignore[arg-type]
