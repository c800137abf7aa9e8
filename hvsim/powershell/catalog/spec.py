"""Typed view of the catalog data and its loader."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"

# Windows PowerShell 5.1's ActionPreference has no Break (added in PowerShell 7).
COMMON_PARAMETERS: dict[str, dict[str, Any]] = {
    "Verbose": {"type": "switch", "aliases": ["vb"]},
    "Debug": {"type": "switch", "aliases": ["db"]},
    "ErrorAction": {
        "type": "enum:System.Management.Automation.ActionPreference="
        "SilentlyContinue|Stop|Continue|Inquire|Ignore|Suspend",
        "aliases": ["ea"],
    },
    "WarningAction": {
        "type": "enum:System.Management.Automation.ActionPreference="
        "SilentlyContinue|Stop|Continue|Inquire|Ignore|Suspend",
        "aliases": ["wa"],
    },
    "InformationAction": {
        "type": "enum:System.Management.Automation.ActionPreference="
        "SilentlyContinue|Stop|Continue|Inquire|Ignore|Suspend",
        "aliases": ["infa"],
    },
    "ErrorVariable": {"type": "string", "aliases": ["ev"]},
    "WarningVariable": {"type": "string", "aliases": ["wv"]},
    "InformationVariable": {"type": "string", "aliases": ["iv"]},
    "OutVariable": {"type": "string", "aliases": ["ov"]},
    "OutBuffer": {"type": "int32", "aliases": ["ob"]},
    "PipelineVariable": {"type": "string", "aliases": ["pv"]},
}
SHOULD_PROCESS_PARAMETERS: dict[str, dict[str, Any]] = {
    "WhatIf": {"type": "switch", "aliases": ["wi"]},
    "Confirm": {"type": "switch", "aliases": ["cf"]},
}


@dataclass(frozen=True)
class ParamSetSpec:
    """How a parameter takes part in one parameter set."""

    position: int | None = None
    mandatory: bool = False
    by_value: bool = False
    by_property: bool = False


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, type, aliases, membership per set (``"*"`` = all sets)."""

    name: str
    type: str
    aliases: tuple[str, ...] = ()
    sets: dict[str, ParamSetSpec] = field(default_factory=dict)
    common: bool = False
    # Validation attributes the parameter declares ("NotNullOrEmpty" for [ValidateNotNullOrEmpty()]).
    validate: tuple[str, ...] = ()

    def in_set(self, set_name: str) -> ParamSetSpec | None:
        return self.sets.get(set_name) or self.sets.get("*")

    @property
    def is_switch(self) -> bool:
        return self.type == "switch"


@dataclass(frozen=True)
class CmdletSpec:
    """A cmdlet: name, implementing type, parameter sets and parameters."""

    name: str
    type: str
    module: str
    default_set: str | None
    parameters: dict[str, ParamSpec]
    aliases: tuple[str, ...] = ()

    @property
    def set_names(self) -> list[str]:
        names: list[str] = []
        for p in self.parameters.values():
            for s in p.sets:
                if s != "*" and s not in names:
                    names.append(s)
        return names or ["__AllParameterSets"]


def _param(name: str, raw: dict[str, Any], common: bool = False) -> ParamSpec:
    sets: dict[str, ParamSetSpec] = {}
    for set_name, s in (raw.get("sets") or {"*": {}}).items():
        pipeline = str(s.get("pipeline", ""))
        sets[set_name] = ParamSetSpec(
            position=s.get("position"),
            mandatory=bool(s.get("mandatory", False)),
            by_value="value" in pipeline,
            by_property="property" in pipeline,
        )
    return ParamSpec(name, str(raw["type"]), tuple(raw.get("aliases", ())), sets, common,
                     tuple(raw.get("validate", ())))


def _cmdlet(name: str, raw: dict[str, Any]) -> CmdletSpec:
    params = {n: _param(n, p) for n, p in raw.get("parameters", {}).items()}
    for n, p in COMMON_PARAMETERS.items():
        params.setdefault(n, _param(n, p, common=True))
    if raw.get("should_process"):
        for n, p in SHOULD_PROCESS_PARAMETERS.items():
            params.setdefault(n, _param(n, p, common=True))
    return CmdletSpec(
        name=name,
        type=str(raw["type"]),
        module=str(raw.get("module", "")),
        default_set=raw.get("default_set"),
        parameters=params,
        aliases=tuple(raw.get("aliases", ())),
    )


class Catalog:
    """All cmdlets the simulated host knows, looked up case-insensitively, aliases included."""

    def __init__(self, specs: dict[str, CmdletSpec]) -> None:
        self.specs = specs
        self._index: dict[str, CmdletSpec] = {}
        for spec in specs.values():
            self._index[spec.name.lower()] = spec
            for alias in spec.aliases:
                self._index[alias.lower()] = spec

    def get(self, name: str) -> CmdletSpec | None:
        return self._index.get(name.lower())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._index

    def __len__(self) -> int:
        return len(self.specs)


@lru_cache(maxsize=1)
def load_catalog(data_dir: Path = DATA_DIR) -> Catalog:
    """Load every powershell/catalog/data/*.json file."""
    specs: dict[str, CmdletSpec] = {}
    for path in sorted(data_dir.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        for name, entry in raw.items():
            if name.startswith("$"):
                continue  # "$source" and other annotations
            if name in specs:
                raise ValueError(f"{path.name}: cmdlet {name} defined twice")
            specs[name] = _cmdlet(name, entry)
    return Catalog(specs)
