"""Small helpers every surface's handlers use to shape PowerShell output: enums, GUIDs, times, lists,
CIM type names. No surface's state: the engine's own vocabulary.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from hvsim.powershell.values import PSEnum


def enum(type_name: str, table: dict[str, int], name: str) -> PSEnum:
    return PSEnum(type_name, name, table[name])


def guid(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def when(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, tz=_dt.UTC)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def name_of(value: Any) -> str:
    return value.name if isinstance(value, PSEnum) else str(value)


def cimv2(cls: str) -> list[str]:
    """The type names of a root/cimv2 CIM instance (Win32_*)."""
    return [f"Microsoft.Management.Infrastructure.CimInstance#root/cimv2/{cls}",
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/cimv2/CIM_ManagedSystemElement",
            "Microsoft.Management.Infrastructure.CimInstance", "System.Object"]
