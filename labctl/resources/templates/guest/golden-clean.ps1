# labctl-step: golden-clean 1

<#
.SYNOPSIS
    Removes what is specific to the build lab and to this machine before a golden image is generalized.

.DESCRIPTION
    Runs in a golden image's build VM after labctl's container-host bootstrap (features, Docker, base
    images) and before sysprep. What every VM made from the image must get fresh, or that belongs to the
    build lab, goes; what the image is for stays:

    - the lab's answer files: %WINDIR%\Panther\unattend.xml and Panther\Unattend\, the Sysprep folder's
      unattend.xml, %SystemDrive%\unattend.xml (implicit answer-file search locations, Microsoft Learn
      "Windows Setup Automation Overview"); labctl's own copies in C:\labctl (the Docker zip, image tars);
    - Docker's TLS material in %ProgramData%\docker\certs.d (the lab's CA, the server's certificate and
      key; docker-tls) and the 'labctl Docker TLS' firewall rule;
    - daemon.json's tlsverify/tlscacert/tlscert/tlskey keys and every tcp:// entry of "hosts" (dockerd would
      not start with TLS files that are gone; the named pipe, dockerd's default on Windows, stays). The file
      is rewritten only when it holds one of them, so a build lab without TLS leaves it byte for byte as
      labctl writes it for a lab with the same container network, and a guest made from the image finds it
      unchanged;
    - the engine's ID: %ProgramData%\docker\engine-id (Docker 23 and later keep the daemon ID there) and the
      older trust key %ProgramData%\docker\config\key.json it was derived from (moby/moby#43555; clones that
      keep it share one ID, moby/moby#13278); dockerd makes a new one at its next start;
    - the container networks: Docker's network store %ProgramData%\docker\network\files\local-kv.db and the
      Host Network Service's %ProgramData%\Microsoft\Windows\HNS\HNS.data (networks, endpoints, the nat
      network's subnet and MAC pool); HNS starts empty and dockerd creates its "nat" network again at first
      start (the cleanup Microsoft documents for a container host's networking:
      MicrosoftDocs/Virtualization-Documentation, windows-server-container-tools/CleanupContainerHostNetworking).

    Kept: the Windows features, Docker's binaries, its service (Automatic, stopped now), the machine PATH,
    the rest of daemon.json, and the images in Docker's data root. The docker and hns services are stopped
    first so that neither rewrites its store afterwards. A second run finds nothing left to remove.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Removed (paths and settings removed) and Kept (what the
    image keeps). No Step/Changed.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param()
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$removed = [System.Collections.Generic.List[string]]::new()
$kept = [System.Collections.Generic.List[string]]::new()
$dockerRoot = Join-Path -Path $env:ProgramData -ChildPath 'docker'
$utf8NoBom = New-Object System.Text.UTF8Encoding $false

# --- services: stopped, so neither writes its store again ---------------------------------------------------
foreach ($name in 'docker', 'hns') {
    $service = Get-Service -Name $name -ErrorAction SilentlyContinue
    if ($service -and $service.Status -ne 'Stopped') {
        Stop-Service -Name $name -Force
    }
}

function Remove-Path {
    # Removes a file or folder when it exists and records it.
    param(
        [Parameter(Mandatory = $true)]
        [string] $Path
    )
    if (Test-Path -LiteralPath $Path) {
        Remove-Item -LiteralPath $Path -Recurse -Force
        $removed.Add($Path)
    }
}

# --- answer files and labctl's copies -------------------------------------------------------------------------
Remove-Path -Path (Join-Path -Path $env:SystemRoot -ChildPath 'Panther\unattend.xml')
Remove-Path -Path (Join-Path -Path $env:SystemRoot -ChildPath 'Panther\Unattend')
Remove-Path -Path (Join-Path -Path $env:SystemRoot -ChildPath 'System32\Sysprep\unattend.xml')
Remove-Path -Path (Join-Path -Path $env:SystemDrive -ChildPath 'unattend.xml')
Remove-Path -Path (Join-Path -Path $env:SystemDrive -ChildPath 'labctl')

# --- Docker's TLS material and identity -----------------------------------------------------------------------
Remove-Path -Path (Join-Path -Path $dockerRoot -ChildPath 'certs.d')
Remove-Path -Path (Join-Path -Path $dockerRoot -ChildPath 'engine-id')
Remove-Path -Path (Join-Path -Path $dockerRoot -ChildPath 'config\key.json')
$rule = Get-NetFirewallRule -Name 'labctl Docker TLS' -ErrorAction SilentlyContinue
if ($rule) {
    Remove-NetFirewallRule -Name 'labctl Docker TLS'
    $removed.Add('firewall rule labctl Docker TLS')
}

# --- daemon.json: TLS keys and tcp:// hosts out, the rest as it is ----------------------------------------------
$configPath = Join-Path -Path $dockerRoot -ChildPath 'config\daemon.json'
if (Test-Path -LiteralPath $configPath -PathType Leaf) {
    $config = ConvertFrom-Json -InputObject ([System.IO.File]::ReadAllText($configPath))
    $dropped = @()
    foreach ($key in 'tlsverify', 'tlscacert', 'tlscert', 'tlskey', 'tls') {
        if ($config.PSObject.Properties[$key]) {
            $config.PSObject.Properties.Remove($key)
            $dropped += $key
        }
    }
    $hosts = $config.PSObject.Properties['hosts']
    if ($hosts) {
        $local = @($hosts.Value | Where-Object { [string]$_ -notlike 'tcp://*' })
        $tcp = @($hosts.Value | Where-Object { [string]$_ -like 'tcp://*' })
        if ($tcp.Count -gt 0) {
            if ($local.Count -gt 0) { $config.hosts = [string[]]$local }
            else { $config.PSObject.Properties.Remove('hosts') }
            $dropped += @($tcp | ForEach-Object { "hosts $_" })
        }
    }
    if ($dropped.Count -gt 0) {
        [System.IO.File]::WriteAllText($configPath, (ConvertTo-Json -InputObject $config -Depth 8), $utf8NoBom)
        foreach ($item in $dropped) { $removed.Add("daemon.json $item") }
    }
    $kept.Add("$configPath (without TLS settings)")
}

# --- container networks: regenerated at the next start ----------------------------------------------------------
Remove-Path -Path (Join-Path -Path $dockerRoot -ChildPath 'network\files\local-kv.db')
Remove-Path -Path (Join-Path -Path $env:ProgramData -ChildPath 'Microsoft\Windows\HNS\HNS.data')

# --- what the image keeps ---------------------------------------------------------------------------------------
$features = @(Get-WindowsFeature -Name 'Containers', 'Hyper-V' |
    Where-Object { $_.InstallState -eq 'Installed' } | ForEach-Object { "feature $($_.Name)" })
foreach ($feature in $features) { $kept.Add($feature) }
$dockerd = Join-Path -Path $env:ProgramFiles -ChildPath 'docker\dockerd.exe'
if (Test-Path -LiteralPath $dockerd -PathType Leaf) {
    $kept.Add($dockerd)
    $kept.Add('service docker (Automatic)')
}
$imageStore = Join-Path -Path $dockerRoot -ChildPath 'image'
if (Test-Path -LiteralPath $imageStore) { $kept.Add("$imageStore (the base images)") }

[pscustomobject]@{
    Removed = [string[]]$removed.ToArray()
    Kept    = [string[]]$kept.ToArray()
}
