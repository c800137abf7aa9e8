# labctl-host-step: copy-from-guest 1

<#
.SYNOPSIS
    Copies a file from a guest to the Hyper-V host over PowerShell Direct.

.DESCRIPTION
    Copies a file from a guest to the Hyper-V host over PowerShell Direct (Copy-VMFile only copies host ->
    guest): e.g. an image tar saved in one guest (image-save), to be copied into the others. Runs on the host.
    A destination that already holds the same bytes (same length and SHA-256) is left alone. The copy goes
    to <Destination>.partial first and is renamed when complete.

.PARAMETER VMName
    The guest to copy from.

.PARAMETER Credential
    The guest's Administrator credential, for New-PSSession -VMName.

.PARAMETER Path
    The file in the guest.

.PARAMETER Destination
    The file's full path on the host (a file path, not a folder).

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Path, Destination,
    Size in bytes).

.NOTES
    A labctl host step, run on the Hyper-V host with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $VMName,

    [Parameter(Mandatory = $true)]
    [pscredential] $Credential,

    # The file in the guest.
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Path,

    # The file on the host (a file path, not a folder).
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Destination
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
# Copy-Item over a session reports progress per chunk; nobody sees it and it slows the copy down.
$ProgressPreference = 'SilentlyContinue'

if (Test-Path -LiteralPath $Destination -PathType Container) {
    throw "Destination $Destination is a folder: give the file's full path on the host."
}

$session = $null
try {
    try {
        $session = New-PSSession -VMName $VMName -Credential $Credential
    } catch {
        throw "Cannot open PowerShell Direct to VM $($VMName): $($_.Exception.Message) Is the VM running " +
            'with a healthy heartbeat, and is the guest Administrator password right?'
    }

    $remoteLength = Invoke-Command -Session $session -ArgumentList $Path -ScriptBlock {
        param([string] $File)
        if (Test-Path -LiteralPath $File -PathType Leaf) { (Get-Item -LiteralPath $File).Length } else { $null }
    }
    if ($null -eq $remoteLength) {
        throw "$Path is not a file in VM $($VMName): check the path (image-save writes " +
            'C:\labctl\images\<repo>-<tag>.tar).'
    }

    $upToDate = $false
    if ((Test-Path -LiteralPath $Destination -PathType Leaf) -and
        (Get-Item -LiteralPath $Destination).Length -eq $remoteLength) {
        # Same length: compare content too (hashing both sides is cheaper than copying gigabytes again).
        $remoteHash = Invoke-Command -Session $session -ArgumentList $Path -ScriptBlock {
            param([string] $File)
            (Get-FileHash -LiteralPath $File -Algorithm SHA256).Hash
        }
        $upToDate = (Get-FileHash -LiteralPath $Destination -Algorithm SHA256).Hash -eq $remoteHash
    }

    $changed = $false
    if (-not $upToDate) {
        $folder = Split-Path -Path $Destination -Parent
        if ($folder -and -not (Test-Path -LiteralPath $folder -PathType Container)) {
            $null = New-Item -Path $folder -ItemType Directory -Force
        }
        # Copy under a temporary name and rename when complete: an interrupted copy must not be taken for
        # the finished file.
        $partial = "$Destination.partial"
        if (Test-Path -LiteralPath $partial) {
            Remove-Item -LiteralPath $partial -Force
        }
        Copy-Item -FromSession $session -LiteralPath $Path -Destination $partial
        $copied = (Get-Item -LiteralPath $partial).Length
        if ($copied -ne $remoteLength) {
            throw "Copying $Path from VM $VMName gave $copied bytes, expected $($remoteLength): check the " +
                "host's free space."
        }
        if (Test-Path -LiteralPath $Destination) {
            Remove-Item -LiteralPath $Destination -Force
        }
        Move-Item -LiteralPath $partial -Destination $Destination
        $changed = $true
    }

    [pscustomobject]@{
        Step         = 'copy-from-guest'
        Changed      = $changed
        RebootNeeded = $false
        Facts        = [pscustomobject]@{
            Path        = $Path
            Destination = $Destination
            Size        = [int64]$remoteLength
        }
    }
} finally {
    if ($session) {
        Remove-PSSession -Session $session
    }
}
