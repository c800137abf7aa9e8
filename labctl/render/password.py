"""Unattend password encoding: PlainText=false values are base64(UTF-16LE(password + suffix)).

The suffix is the element name: "AdministratorPassword" for UserAccounts/AdministratorPassword and
"Password" for LocalAccounts/LocalAccount/Password and AutoLogon/Password. This hides the password from a
casual look only; it is not encryption, so rendered answer files are secrets too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import SecretStr

PasswordKind = Literal["AdministratorPassword", "Password"]


def encode_unattend_password(password: str | SecretStr,
                             kind: PasswordKind = "AdministratorPassword") -> str:
    """The <Value> for a PlainText=false password element of ``kind``."""
    if kind not in ("AdministratorPassword", "Password"):
        raise ValueError(f"kind must be AdministratorPassword or Password, not {kind!r}")
    raw = password.get_secret_value() if isinstance(password, SecretStr) else password
    return base64.b64encode((raw + kind).encode("utf-16-le")).decode("ascii")


def decode_unattend_password(value: str, kind: PasswordKind = "AdministratorPassword") -> SecretStr:
    """Inverse of ``encode_unattend_password``; ValueError (without the value) if it is not one."""
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not base64 of UTF-16LE text") from None
    if not text.endswith(kind):
        raise ValueError(f"the decoded value does not end with {kind!r}")
    return SecretStr(text[: -len(kind)])
