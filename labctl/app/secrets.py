"""Where secrets come from: an environment variable, the OS keyring, a prompt, or (for the
embedded simulator only) a random password generated once and kept in the lab directory.

Secrets are returned wrapped in transport.base.Secret so they never show in logs or reprs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from labctl.errors import SecretError
from labctl.fsio import atomic_write
from labctl.lab.secrets import sim_guest_password
from labctl.secret import Secret

Prompt = Callable[[str], str]


def resolve_secret(kind: str, name: str | None, *, what: str, prompt: Prompt | None = None,
                   generated_path: Path | None = None) -> Secret:
    """The secret of ``what`` (e.g. "guest password") from its declared source."""
    if kind == "env":
        value = os.environ.get(name or "")
        if not value:
            raise SecretError(f"the {what} is read from the environment variable {name}, which is not set",
                              hint=f"export {name}=... (it is never read from the lab file)")
        return Secret(value)
    if kind == "keyring":
        try:
            import keyring
        except ImportError as exc:  # keyring is an optional extra
            raise SecretError(f"the {what} is to come from the OS keyring but the keyring package is "
                              "not installed", hint="pip install keyring") from exc
        service, _, user = (name or "labctl").partition(":")
        value = keyring.get_password(service, user or "default")
        if not value:
            raise SecretError(f"no {what} in the keyring under service {service!r}, user {user or 'default'!r}",
                              hint=f"keyring set {service} {user or 'default'}")
        return Secret(value)
    if kind == "prompt":
        if prompt is None:
            raise SecretError(f"the {what} must be typed at a prompt, but there is no terminal",
                              hint="use password_env or the keyring in CI")
        return Secret(prompt(f"{what.capitalize()}"))
    if kind == "generated":
        if generated_path is None:
            raise SecretError(f"no place to keep the generated {what}")
        existing = generated_path.read_text(encoding="utf-8") if generated_path.exists() else None
        generated, is_new = sim_guest_password(existing)
        if is_new:
            atomic_write(generated_path, generated.get_secret_value() + "\n", mode=0o600)
        return Secret(generated.get_secret_value())
    raise SecretError(f"no source is set for the {what}")
