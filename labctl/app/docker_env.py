"""The use case behind ``labctl env``: where a lab VM's Docker API over TLS is, and docker contexts for it.

It reads the lab journal only: nothing is sent to the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.app.classes import unit_of
from labctl.app.labfile import find_vm
from labctl.app.session import journal_path
from labctl.docker import context as docker_context
from labctl.docker.context import ContextResult
from labctl.engine.journal import Journal
from labctl.errors import LabctlError, LabUsageError
from labctl.lab.model import ResolvedLab


def docker_tls_entry(lab: ResolvedLab, vm_name: str) -> tuple[str, dict[str, Any]]:
    """(the VM's name as the lab spells it, its journal ``docker_tls`` record); LabUsageError if it has none."""
    vm = find_vm(lab, vm_name)
    lab = unit_of(lab, vm.name)  # a lab with copies: the copy's own journal
    path = journal_path(lab)
    try:
        record = Journal.open(path, lab.name).vm(vm.name).get("docker_tls") if path.exists() else None
    except (OSError, ValueError) as exc:  # unreadable or another lab's journal: say which file
        raise LabctlError(f"cannot read the lab journal {path}: {exc}",
                          hint="labctl up rewrites it; labctl status shows what the host has") from exc
    if not record:
        if not getattr(vm, "docker_tls", False):
            raise LabUsageError(f"{vm.name} has no Docker API over TLS: the lab does not ask for it",
                                field="docker_tls",
                                hint=f"set docker_tls: true for {vm.name} (or in defaults) in {lab.source}, "
                                     "then run labctl up")
        raise LabUsageError(f"{vm.name} has no Docker API over TLS yet: labctl up has not published it",
                            field="docker_tls", hint=f"run labctl up {lab.source} (it finishes the docker stage)")
    cert_path = Path(str(record.get("cert_path", "")))
    if not (cert_path / "cert.pem").is_file():
        raise LabUsageError(f"the client certificate of lab {lab.name} is missing from {cert_path}",
                            field="docker_tls", hint=f"run labctl up {lab.source} to make it again")
    return vm.name, dict(record)


def docker_host(record: dict[str, Any]) -> str:
    """DOCKER_HOST for a VM's journal ``docker_tls`` record: tcp://<host>:<NAT-mapped port>."""
    return f"tcp://{record['host']}:{int(record['port'])}"


def write_context(lab: ResolvedLab, vm_name: str) -> tuple[ContextResult, str]:
    """Create or update the docker context labctl-<lab>-<vm> for the VM's Docker API; (result, DOCKER_HOST)."""
    name, record = docker_tls_entry(lab, vm_name)
    host = docker_host(record)
    return docker_context.write_context(lab.name, name, host, Path(str(record["cert_path"]))), host


def remove_context(lab: ResolvedLab, vm_name: str) -> ContextResult:
    """Remove the docker context labctl made for the VM (the lab file may have dropped the VM since)."""
    try:
        name = lab.vm(vm_name).name
    except KeyError:
        name = vm_name
    return docker_context.remove_context(lab.name, name)
