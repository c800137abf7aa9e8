# labctl-step: remove-answer-file 1

<#
.SYNOPSIS
    Deletes the answer file (C:\Windows\Panther\unattend.xml) once setup has used it.

.DESCRIPTION
    The answer file holds the encoded Administrator password: delete it once setup has used it. A guest
    without one is left alone (Changed = $false).

.OUTPUTS
    System.Management.Automation.PSCustomObject: Changed, RebootNeeded. No Step, no Facts.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param()
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$path = Join-Path -Path $env:SystemRoot -ChildPath 'Panther\unattend.xml'
$changed = $false
if (Test-Path -Path $path) {
    Remove-Item -Path $path -Force
    $changed = $true
}
[pscustomobject]@{ Changed = $changed; RebootNeeded = $false }
