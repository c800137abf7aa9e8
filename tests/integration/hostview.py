"""The host as a person compares it before and after: one inventory for the tests and bench/ (no pytest)."""

from __future__ import annotations

import re
from typing import Any

from labctl.transport.base import Invocation, Pipeline, Transport

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LAB_ID = re.compile(r"([A-Za-z0-9-]+)-[0-9a-f]{12}(?=\\|$)")


def inventory(t: Transport) -> dict[str, list[str]]:
    """VMs (ids and names), switches, NATs and their mappings, host addresses, files and folders on C:, and
    which disks are attached to the host."""
    def names(cmd: str, prop: str, **params: Any) -> list[str]:
        return sorted(str(o.get(prop)) for o in t.invoke(Invocation(cmd, params)).objects())

    files = names("Get-ChildItem", "FullName", Path="C:\\", Recurse=True, File=True)
    disks = [f for f in files if f.lower().endswith((".vhd", ".vhdx"))]
    attached = sorted(str(o.get("Path")) for o in t.invoke(Pipeline.of(
        *[Invocation("Get-VHD", {"Path": d}) for d in disks])).objects() if o.get("Attached")) if disks else []
    return {
        "vms": names("Get-VM", "Id") + names("Get-VM", "Name"),
        "switches": names("Get-VMSwitch", "Name"),
        "nats": names("Get-NetNat", "Name"),
        "nat_mappings": names("Get-NetNatStaticMapping", "ExternalPort"),
        "addresses": names("Get-NetIPAddress", "IPAddress"),
        "files": files,
        "folders": names("Get-ChildItem", "FullName", Path="C:\\", Recurse=True, Directory=True),
        "attached_disks": attached,
    }


def shape(inv: dict[str, list[str]]) -> dict[str, list[str]]:
    """An inventory without what differs between two identical runs (VM ids, the lab id in paths)."""
    vms = [v for v in inv["vms"] if not _UUID.fullmatch(v)]
    out = {**inv, "vms": vms}
    return {k: sorted(_UUID.sub("<vm-id>", _LAB_ID.sub(r"\1-<id>", v)) for v in vals) for k, vals in out.items()}
