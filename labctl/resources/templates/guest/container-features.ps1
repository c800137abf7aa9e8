# labctl-step: container-features 1

<#
.SYNOPSIS
    Installs the Windows features a container host needs.

.DESCRIPTION
    Installs the Windows features a container host needs: Containers (every container host) and, for
    Hyper-V isolation, Hyper-V. Never restarts the guest: it reports RebootNeeded and labctl restarts it.
    Features already installed (or installed and waiting for a restart) are left alone.

.PARAMETER Features
    The features to install: Containers, and optionally Hyper-V.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Installed: the
    features in state Installed; Pending: those installed and waiting for a restart).

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('Containers', 'Hyper-V')]
    [string[]] $Features
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
# Install-WindowsFeature reports progress that nobody sees over PowerShell Direct; skipping it is faster.
$ProgressPreference = 'SilentlyContinue'

# ServerManager (Get-/Install-WindowsFeature) ships with Windows Server only.
if (-not (Get-Command -Name Get-WindowsFeature -ErrorAction SilentlyContinue)) {
    throw 'Get-WindowsFeature is not available: container hosts must run Windows Server 2019, 2022 or 2025 ' +
        '(the ServerManager module is missing on client editions).'
}

$wanted = @($Features | Select-Object -Unique)
$current = @(Get-WindowsFeature -Name $wanted)
# Names by ForEach-Object, not $current.Name: strict mode refuses that member access when nothing was found.
$currentNames = @($current | ForEach-Object { $_.Name })
$unknown = @($wanted | Where-Object { $currentNames -notcontains $_ })
if ($unknown.Count -gt 0) {
    throw "Windows feature(s) $($unknown -join ', ') are unknown to this server (Get-WindowsFeature returned nothing)."
}

# InstallState: Installed, InstallPending (installed, waiting for a restart), Available, Removed (payload
# deleted from the image: would need -Source), UninstallPending.
$removed = @($current | Where-Object { $_.InstallState -eq 'Removed' })
if ($removed.Count -gt 0) {
    throw "Feature(s) $($removed.Name -join ', ') have their payload removed from this image; install them " +
        'from installation media (Install-WindowsFeature -Source) or use an image that still has them.'
}
$toInstall = @($current | Where-Object { $_.InstallState -eq 'Available' -or $_.InstallState -eq 'UninstallPending' })

$changed = $false
$restartNeeded = $false
if ($toInstall.Count -gt 0) {
    $names = @($toInstall | ForEach-Object { $_.Name })
    try {
        # No -Restart: labctl owns the restart, so it can wait for the guest to come back.
        $result = Install-WindowsFeature -Name $names
    } catch {
        $hint = ''
        if ($names -contains 'Hyper-V') {
            $hint = ' Hyper-V inside a VM needs nested virtualization: on the Hyper-V host, with the VM off, ' +
                'run Set-VMProcessor -VMName <vm> -ExposeVirtualizationExtensions $true (lab file: nested: true).'
        }
        throw "Install-WindowsFeature -Name $($names -join ', ') failed: $($_.Exception.Message)$hint"
    }
    if (-not $result.Success) {
        throw "Install-WindowsFeature -Name $($names -join ', ') did not succeed (exit code $($result.ExitCode)); " +
            'see C:\Windows\Logs\DISM\dism.log in the guest.'
    }
    $changed = $true
    # RestartNeeded is Yes, No or Maybe.
    $restartNeeded = [string]$result.RestartNeeded -ne 'No'
}

# Report what Windows says now, not what was asked for.
$after = @(Get-WindowsFeature -Name $wanted)
$installed = [string[]]@($after | Where-Object { $_.InstallState -eq 'Installed' } | ForEach-Object { $_.Name })
$pending = [string[]]@($after | Where-Object { $_.InstallState -eq 'InstallPending' } | ForEach-Object { $_.Name })

[pscustomobject]@{
    Step         = 'container-features'
    Changed      = $changed
    RebootNeeded = ($pending.Count -gt 0) -or $restartNeeded
    Facts        = [pscustomobject]@{
        Installed = $installed
        Pending   = $pending
    }
}
