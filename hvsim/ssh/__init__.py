"""SSH carrier of the simulator: PowerShell remoting over SSH (the ``powershell`` subsystem) on loopback."""

from hvsim.ssh.keys import SshKeys, ensure_keys, fingerprint, public_line
from hvsim.ssh.server import SUBSYSTEM, SshServer

__all__ = ["SUBSYSTEM", "SshKeys", "SshServer", "ensure_keys", "fingerprint", "public_line"]
