"""The simulator's SSH keys, made once per state directory and reused: a host key and one client key.

``STATE/ssh/ssh_host_ed25519_key`` is the host key (the name sshd gives it). ``STATE/ssh/client_ed25519`` is
the client key labctl logs in with: OpenSSH private key format, owner-only (0600), its public half in
``client_ed25519.pub``; that public key is the only one the server accepts. Ed25519, because Windows' sshd
offers it by default and ``ssh-keygen -t ed25519`` is the key OpenSSH's documentation suggests.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hvsim.core.files import make_private, replace_private

HOST_KEY_FILE = "ssh_host_ed25519_key"
CLIENT_KEY_FILE = "client_ed25519"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's fingerprint of a public key: ``SHA256:`` and the unpadded base64 of sha256(key blob),
    as ``ssh-keygen -lf`` prints it (sshkey.c sshkey_fingerprint_raw + fingerprint_b64)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_line(key: paramiko.PKey, comment: str = "") -> str:
    """The authorized_keys / ``.pub`` line of a key: ``ssh-ed25519 AAAA... comment``."""
    return f"{key.get_name()} {key.get_base64()}" + (f" {comment}" if comment else "")


def _make_key(path: Path, comment: str) -> None:
    private = Ed25519PrivateKey.generate()
    data = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption())
    replace_private(path, data)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    replace_private(path.with_name(path.name + ".pub"), public + f" {comment}\n".encode("ascii"))


def _load(path: Path, comment: str) -> paramiko.Ed25519Key:
    if not path.is_file():
        _make_key(path, comment)
    return paramiko.Ed25519Key(filename=str(path))


@dataclass(frozen=True)
class SshKeys:
    """The host key (private), the client key file and the one authorized public key."""

    host_key: paramiko.PKey
    client_key_path: Path
    authorized_key: paramiko.PKey

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def __repr__(self) -> str:
        return f"SshKeys(host={self.host_fingerprint}, client={self.client_key_path})"


def ensure_keys(folder: Path, hostname: str = "simulated-host") -> SshKeys:
    """Load the keys in ``folder`` (owner-only), making the missing ones."""
    folder.mkdir(parents=True, exist_ok=True)
    make_private(folder, folder=True)
    host_key = _load(folder / HOST_KEY_FILE, f"root@{hostname} (SIMULATED host key)")
    client_path = folder / CLIENT_KEY_FILE
    client_key = _load(client_path, f"labctl@{hostname} (client key of a SIMULATED host)")
    return SshKeys(host_key, client_path, client_key)
