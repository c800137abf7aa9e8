"""Where secrets come from, decided without touching them; and the simulator's generated guest password.

Guest Administrator password, in order:
  1. ``guest_password_env: VAR`` when VAR is set in the environment;
  2. ``guest_password_from: keyring`` / ``prompt``;
  3. ``host: sim`` only: a password generated once and kept in ``.labctl/<lab>/guest-password`` (mode 0600)
     beside the lab file, so ``labctl up`` on the simulator never needs input. The caller reads/writes that
     file; ``sim_guest_password`` only decides (keep the existing one, or make a new one).
A real host with none of these is an error: a generated password for real machines would be lost with the
lab directory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping
from random import Random

from pydantic import SecretStr

from labctl.errors import SecretError
from labctl.lab.model import ResolvedLab, SecretSource

GENERATED_PASSWORD_FILE = "guest-password"  # noqa: S105 - a file name, not a password
# No characters that need escaping in XML, PowerShell or cmd, and none that look alike (l/1, O/0).
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER = "abcdefghijkmnopqrstuvwxyz"
_DIGITS = "23456789"
_SYMBOLS = "-_.+=#@%"


def guest_password_source(lab: ResolvedLab, env: Mapping[str, str]) -> SecretSource:
    """The source to use for the guests' Administrator password now (see the module docstring)."""
    src = lab.guest_password
    if src.kind == "env" and src.name and env.get(src.name):
        return src
    if src.kind in ("keyring", "prompt"):
        return src
    if lab.host.kind == "sim" or src.fallback == "generated":
        return SecretSource(kind="generated", name=GENERATED_PASSWORD_FILE)
    name = src.name or "LABCTL_GUEST_PASSWORD"
    raise SecretError(f"the guest password variable {name} is not set",
                      hint=f"export {name}=... (Windows complexity rules apply), or set "
                      "guest_password_from: keyring | prompt in the lab file")


def generate_password(length: int = 20, rng: Random | None = None) -> str:
    """A random password meeting Windows' complexity rules (all four character classes)."""
    pick = rng.choice if rng is not None else secrets.choice
    classes = [_UPPER, _LOWER, _DIGITS, _SYMBOLS]
    chars = [pick(c) for c in classes]
    alphabet = "".join(classes)
    chars += [pick(alphabet) for _ in range(max(length, 8) - len(chars))]
    # Shuffle so the class order is not predictable.
    order = list(range(len(chars)))
    if rng is not None:
        rng.shuffle(order)
    else:
        for i in range(len(order) - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            order[i], order[j] = order[j], order[i]
    return "".join(chars[i] for i in order)


def copy_password(master: str, lab: str, copy: int) -> str:
    """Copy ``copy``'s own guest password, derived from the lab's guest password (HMAC-SHA256 of the lab and copy
    under it): the same every run, different for every copy, never stored, and no copy's password reveals
    another's or the master's."""
    digest = hmac.new(master.encode("utf-8"), f"labctl copy password/{lab.lower()}/{copy}".encode(),
                      hashlib.sha256).digest()
    # A Random seeded with the 256-bit digest only picks characters: the secret is the digest.
    return generate_password(16, rng=Random(int.from_bytes(digest, "big")))


def sim_guest_password(existing: str | None, rng: Random | None = None) -> tuple[SecretStr, bool]:
    """The simulator's guest password: the stored one if usable, else a new one. Returns (password, is_new);
    when is_new the caller stores it (mode 0600) in ``<state_dir>/guest-password``."""
    if existing is not None:
        value = existing.strip()
        if value and not password_problems(value):
            return SecretStr(value), False
    return SecretStr(generate_password(rng=rng)), True


def password_problems(password: str, username: str = "Administrator") -> list[str]:
    """Why Windows' default password policy would refuse ``password`` (never includes the password)."""
    out = []
    if len(password) < 8:
        out.append("shorter than 8 characters")
    classes = sum(any(ch in cls for ch in password) for cls in
                  (string.ascii_uppercase, string.ascii_lowercase, string.digits))
    classes += any(not ch.isalnum() for ch in password)
    if classes < 3:
        out.append("needs three of: upper case, lower case, digits, symbols")
    if username and len(username) >= 3 and username.lower() in password.lower():
        out.append("contains the user name")
    return out
