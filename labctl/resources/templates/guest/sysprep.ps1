# labctl-step: sysprep 1

<#
.SYNOPSIS
    Generalizes the guest with sysprep and its answer file; on success the guest shuts itself down.

.DESCRIPTION
    Writes UnattendXml to %WINDIR%\System32\Sysprep\unattend-labctl.xml and runs
    sysprep.exe /generalize /oobe /shutdown /mode:vm /quiet /unattend:<that file>
    (Microsoft Learn, "Sysprep Command-Line Options": /mode:vm generalizes a VHD for VMs of the same
    hypervisor; /quiet shows no dialog, which would wait forever over PowerShell Direct). On success sysprep
    exits 0 and Windows shuts down: labctl waits for the VM to be Off. On a refusal sysprep exits non-zero
    and the guest keeps running; the reasons are in %WINDIR%\System32\Sysprep\Panther\setuperr.log (where
    sysprep logs its generalize pass; Microsoft Learn, "Windows Setup Log Files and Event Logs"), e.g. a
    pending reboot or servicing operation, or the image reached the number of times it may be generalized.
    Only the lines this run added are returned. Nothing is checked beforehand: sysprep's own validation is
    the judge, and its words reach the user.

    The answer file is checked to be XML with an <unattend> root before anything is written. It must hold no
    password (labctl's generalize.xml.j2 holds none): sysprep caches it in %WINDIR%\Panther.

.PARAMETER UnattendXml
    The answer file's text (labctl renders templates/unattend/generalize.xml.j2).

.OUTPUTS
    System.Management.Automation.PSCustomObject: ExitCode (sysprep's) and Errors (the setuperr.log lines
    of this run). No Step/Changed.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $UnattendXml
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# labctl-include: native.ps1

try {
    $document = [xml]$UnattendXml
} catch {
    throw "UnattendXml is not XML ($($_.Exception.Message)); sysprep would refuse it."
}
if ($document.DocumentElement.LocalName -ne 'unattend') {
    throw "UnattendXml's root element is <$($document.DocumentElement.LocalName)>, not <unattend>."
}

$sysprepDir = Join-Path -Path $env:SystemRoot -ChildPath 'System32\Sysprep'
$sysprepExe = Join-Path -Path $sysprepDir -ChildPath 'sysprep.exe'
$answerFile = Join-Path -Path $sysprepDir -ChildPath 'unattend-labctl.xml'
$errorLog = Join-Path -Path $sysprepDir -ChildPath 'Panther\setuperr.log'
if (-not (Test-Path -LiteralPath $sysprepExe -PathType Leaf)) {
    throw "$sysprepExe is not there: this guest cannot be generalized."
}

# setuperr.log keeps earlier runs' lines: report only what this run adds.
$before = 0
if (Test-Path -LiteralPath $errorLog -PathType Leaf) {
    $before = @(Get-Content -LiteralPath $errorLog).Count
}

$utf8NoBom = New-Object System.Text.UTF8Encoding $false
[System.IO.File]::WriteAllText($answerFile, $UnattendXml, $utf8NoBom)

$run = Invoke-NativeCommand -FilePath $sysprepExe -ArgumentList '/generalize', '/oobe', '/shutdown', '/mode:vm',
    '/quiet', "/unattend:$answerFile"

$errors = @()
if (Test-Path -LiteralPath $errorLog -PathType Leaf) {
    $errors = @(Get-Content -LiteralPath $errorLog | Select-Object -Skip $before |
        Where-Object { -not [string]::IsNullOrWhiteSpace($_) })
}

[pscustomobject]@{
    ExitCode = $run.ExitCode
    Errors   = [string[]]$errors
}
