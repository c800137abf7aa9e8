"""PowerShell Direct rules shared by the remoting cmdlets and the host steps: can a session open, what a copy moves."""

from __future__ import annotations

from typing import Any

from hvsim.guest.errors import MSG_INVALID_CREDENTIAL, MSG_SESSION_ENDED, PROTO_EXC, PSDIRECT_EXC
from hvsim.guest.models.guest import Guest
from hvsim.powershell.cmdlet import CmdletContext
from hvsim.powershell.values import Credential

MIB = 1024**2


def credential_ok(guest: Guest, credential: Any) -> bool:
    if not isinstance(credential, Credential):
        return False
    return guest.authenticate(credential.username, credential.password.reveal())


def open_problem(ctx: CmdletContext, vm: Any, credential: Any) -> tuple[str, str] | None:
    """(message, exception type) when a PowerShell Direct session cannot open, else None."""
    ctx.spend(vm.name, "ps_direct_logon")
    guest: Guest = vm.guest
    if guest.ps_direct_refusal(ctx.world, vm) is not None:
        return MSG_SESSION_ENDED, PROTO_EXC
    if not credential_ok(guest, credential):
        return MSG_INVALID_CREDENTIAL, PSDIRECT_EXC
    return None


def modeled_size(data: bytes) -> int:
    """Bytes a real copy would move: a simulated image tar's modeled size, else the file's length."""
    from hvsim.docker.models.engine import read_image_archive

    if len(data) > 512 and data[257:262] == b"ustar":
        try:
            return int(read_image_archive(data)[0].size)
        except Exception:
            return len(data)
    return len(data)
