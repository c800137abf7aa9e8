# labctl-host-step: bcdboot 1

<#
.SYNOPSIS
    Makes a freshly applied Windows image bootable on UEFI (Generation 2 VMs): bcdboot to its EFI partition.

.DESCRIPTION
    Runs `bcdboot <WindowsPath> /s <SystemPartition> /f UEFI` on the host, for a VHDX that labctl has mounted,
    partitioned (GPT: EFI system, MSR, Windows) and applied an image to with Expand-WindowsImage. bcdboot copies
    the boot manager from that Windows into the EFI system partition and writes its boot configuration (BCD)
    store there (Microsoft Learn, "BCDBoot Command-Line Options"). Without it the VM's firmware finds no boot
    loader on the disk. A non-zero exit code is reported, never thrown: labctl names the image and the step and
    shows bcdboot's own lines.

.PARAMETER WindowsPath
    The Windows folder of the applied image, e.g. W:\Windows.

.PARAMETER SystemPartition
    The drive letter of the EFI system partition, e.g. S: (with its colon).

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded, ExitCode (bcdboot's), Output (its
    lines, stdout and stderr together) and Facts (WindowsPath, SystemPartition).

.NOTES
    A labctl host step, run on the Hyper-V host with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    # The applied image's Windows folder (W:\Windows).
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $WindowsPath,

    # The EFI system partition's drive (S:).
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z]:$')]
    [string] $SystemPartition
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

if (-not (Test-Path -LiteralPath $WindowsPath -PathType Container)) {
    throw "$WindowsPath is not a folder: apply the image (Expand-WindowsImage) before bcdboot."
}

# bcdboot writes its messages to stdout and stderr; 2>&1 keeps both, in order, as text lines. A native
# program's failure is its exit code, not an error record: with 'Stop' a stderr line would throw instead.
$ErrorActionPreference = 'Continue'
$lines = @(bcdboot.exe $WindowsPath /s $SystemPartition /f UEFI 2>&1 | ForEach-Object { "$_" })
$exitCode = $LASTEXITCODE
$ErrorActionPreference = 'Stop'

[pscustomobject]@{
    Step         = 'bcdboot'
    Changed      = ($exitCode -eq 0)
    RebootNeeded = $false
    ExitCode     = $exitCode
    Output       = $lines
    Facts        = [pscustomobject]@{
        WindowsPath     = $WindowsPath
        SystemPartition = $SystemPartition
    }
}
