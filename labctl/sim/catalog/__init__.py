"""The cmdlet catalog: real cmdlets' parameter sets, kept as data (catalog/data/*.json).

Each data file maps a cmdlet name to its spec, taken from the cmdlet's reference page
(MicrosoftDocs/windows-powershell-docs). Format of one entry::

    "Get-VM": {
      "type": "Microsoft.HyperV.PowerShell.Commands.GetVM",   # implementing .NET class
      "module": "Hyper-V",
      "aliases": [],                                          # command aliases (Restore-VMCheckpoint)
      "default_set": "Name",
      "should_process": false,                                # adds -WhatIf/-Confirm
      "parameters": {
        "Name": {
          "type": "string[]",          # see TYPES below
          "aliases": ["VMName"],
          "sets": {"Name": {"position": 0, "mandatory": false, "pipeline": "value,property"}}
          # "sets": {"*": {...}} means every set
        },
        ...
      }
    }

TYPES: string, string[], int32, int64, uint64, uint32, byte, bool, switch, double, guid, guid[],
datetime, timespan, hashtable, object, object[], scriptblock, pscredential, securestring,
enum:<DotNetType>=A|B|C (names; values are their positions unless written A:2|B:3),
set:<type>=a|b  (ValidateSet on a base type), and any other name ending in [] or not is an
object type (e.g. "Microsoft.HyperV.PowerShell.VirtualMachine[]").
Common parameters (Verbose, Debug, ErrorAction, WarningAction, InformationAction, ErrorVariable,
WarningVariable, InformationVariable, OutVariable, OutBuffer, PipelineVariable) are added by the
loader; WhatIf/Confirm when should_process is true.
"""

from labctl.sim.catalog.spec import Catalog, CmdletSpec, ParamSetSpec, ParamSpec, load_catalog

__all__ = ["Catalog", "CmdletSpec", "ParamSetSpec", "ParamSpec", "load_catalog"]
