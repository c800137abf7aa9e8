"""The cmdlet catalog: real cmdlets' parameter sets, kept as data (powershell/catalog/data/*.json).

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
          "validate": ["NotNullOrEmpty"],   # validation attributes, see VALIDATE below
          "sets": {"Name": {"position": 0, "mandatory": false, "pipeline": "value,property"}}
          # "sets": {"*": {...}} means every set
        },
        ...
      }
    }

TYPES: string, string[], char, uri, version, int16, uint16, int32, int64, uint64, uint32, byte, bool,
switch, double, single, guid, guid[], datetime, timespan, hashtable, object, object[], psobject,
scriptblock, pscredential, securestring,
enum:<DotNetType>=A|B|C (names; values are their positions unless written A:2|B:3; the order is the
enum's own, as error messages list it), flags:<DotNetType>=A:1|B:2 ([Flags] enum: "A,B" accepted),
set:<type>=a|b  (ValidateSet on a base type), and any other name ending in [] or not is an
object type (e.g. "Microsoft.HyperV.PowerShell.VirtualMachine[]").
Any type may end in [] (an array: a scalar argument is wrapped); a value type may end in ? (Nullable: it
takes $null). hvsim.powershell.binding parses them.
VALIDATE (the parameter's attributes, checked in this order when an argument binds, before the
mandatory parameter's null/empty check): NotNull, NotNullOrEmpty, Range:<min>:<max> ([ValidateRange]),
AllowNull, AllowEmptyString, AllowEmptyCollection (relax that mandatory check). ValidateSet is a set: type.
Record only attributes the real cmdlet declares (a transcript or its source shows them).
Common parameters (Verbose, Debug, ErrorAction, WarningAction, InformationAction, ErrorVariable,
WarningVariable, InformationVariable, OutVariable, OutBuffer, PipelineVariable) are added by the
loader; WhatIf/Confirm when should_process is true.
"""

from hvsim.powershell.catalog.spec import Catalog, CmdletSpec, ParamSetSpec, ParamSpec, load_catalog

__all__ = ["Catalog", "CmdletSpec", "ParamSetSpec", "ParamSpec", "load_catalog"]
