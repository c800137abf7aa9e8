"""The use case behind ``labctl status``: every VM as the host (and its guest) reports it."""

from __future__ import annotations

from labctl.app import classes
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, guest_password, open_lab
from labctl.engine.status import VmStatus, lab_status
from labctl.lab.model import ResolvedLab
from labctl.transport.base import Credential


def status(lab: ResolvedLab, *, guest: bool = True, prompt: Prompt | None = None) -> tuple[list[VmStatus], str, bool]:
    """Every VM's status as the host reports it (and the guest, over PowerShell Direct)."""
    if lab.is_class:
        return classes.status_class(lab, guest=guest, prompt=prompt)
    password = None
    if guest:
        try:
            password = guest_password(lab, prompt)
        except Exception:  # no password at hand: status still shows the host's view
            password = None
    with open_lab(lab, workers=1, prompt=prompt) as s:
        cred = (lambda vm: Credential(GUEST_ADMIN, password)) if password is not None else None
        return (lab_status(s.conn.transport, s.want, s.owner, cred, s.journal.snapshot()), s.conn.description,
                s.conn.simulated)
