# labctl-step: docker-install 3

<#
.SYNOPSIS
    Installs Docker from the static Windows zip and starts the docker service.

.DESCRIPTION
    Installs Docker from the static Windows zip (download.docker.com/win/static/stable/x86_64) that labctl
    copied into the guest, configures it with daemon.json, registers and starts the docker service, and
    waits until the daemon answers. Runs after container-features (and its restart).

    Checks before acting: a rerun with the same zip and daemon.json changes nothing. The installed zip's
    SHA-256 is recorded in Program Files\docker\labctl-docker-zip.sha256; another zip is expanded over it (the
    service is stopped first). It throws, before changing anything, when the Containers feature is not
    Installed, when DaemonJson is not a JSON object or names TLS files that do not exist (run docker-tls
    first), or when a docker service runs another installation's dockerd.exe (version 3: version 2 found
    that only after stopping the service and replacing its binaries, PATH and daemon.json).

.PARAMETER ZipPath
    The docker zip in the guest (labctl copies it to C:\labctl\docker-<version>.zip with Copy-VMFile). Not
    needed when the same zip is installed already.

.PARAMETER Sha256
    The zip's expected SHA-256 (64 hex digits).

.PARAMETER DaemonJson
    The text of %ProgramData%\docker\config\daemon.json, written as UTF-8 without a byte order mark.

.PARAMETER TimeoutSeconds
    How long to wait for the daemon to answer `docker version` once the service runs.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (ClientVersion,
    ServerVersion, ServiceStatus, NatSubnet: the subnet of docker's nat network).

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $ZipPath,

    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[0-9A-Fa-f]{64}$')]
    [string] $Sha256,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $DaemonJson,

    [Parameter(Mandatory = $true)]
    [ValidateRange(1, 86400)]
    [int] $TimeoutSeconds
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
# Expand-Archive in Windows PowerShell 5.1 is several times slower while it reports progress.
$ProgressPreference = 'SilentlyContinue'

# labctl-include: native.ps1

$installDir = Join-Path -Path $env:ProgramFiles -ChildPath 'docker'
$dockerExe = Join-Path -Path $installDir -ChildPath 'docker.exe'
$dockerdExe = Join-Path -Path $installDir -ChildPath 'dockerd.exe'
# Which zip the binaries came from: a rerun with the same zip does nothing, a new zip upgrades.
$marker = Join-Path -Path $installDir -ChildPath 'labctl-docker-zip.sha256'
$configDir = Join-Path -Path $env:ProgramData -ChildPath 'docker\config'
$configPath = Join-Path -Path $configDir -ChildPath 'daemon.json'
# dockerd refuses a daemon.json that starts with a byte order mark.
$utf8NoBom = New-Object System.Text.UTF8Encoding $false
$changed = $false

# --- preconditions ------------------------------------------------------------------------------------
# dockerd needs the Containers feature active (installed and the guest restarted since).
$containers = Get-WindowsFeature -Name Containers
if ($null -eq $containers -or $containers.InstallState -ne 'Installed') {
    $state = if ($containers) { $containers.InstallState } else { 'unknown' }
    throw "The Containers feature is $state, not Installed: run the container-features step and restart " +
        'the guest before docker-install.'
}
try {
    $config = ConvertFrom-Json -InputObject $DaemonJson
} catch {
    throw "DaemonJson is not valid JSON ($($_.Exception.Message)); dockerd would not start with it."
}
if ($config -isnot [System.Management.Automation.PSCustomObject]) {
    throw 'DaemonJson is valid JSON but not an object ({ ... }); dockerd would not start with it.'
}
# dockerd fails to start when daemon.json names TLS files that are not there yet. A key daemon.json does not
# set is looked up by name: strict mode refuses $config.$key for a property the object lacks.
foreach ($key in 'tlscacert', 'tlscert', 'tlskey') {
    $file = $null
    $setting = if ($null -ne $config) { $config.PSObject.Properties[$key] } else { $null }
    if ($setting) { $file = $setting.Value }
    if ($file -and -not (Test-Path -LiteralPath $file -PathType Leaf)) {
        throw "daemon.json sets $key to '$file', which does not exist: run the docker-tls step before docker-install."
    }
}

# A docker service of another installation runs other binaries and reads the same default daemon.json:
# refuse before touching anything of it (its service, its binaries, its configuration).
$existing = Get-Service -Name docker -ErrorAction SilentlyContinue
if ($existing) {
    $serviceInfo = Get-CimInstance -ClassName Win32_Service -Filter "Name='docker'"
    $servicePath = if ($serviceInfo) { [string]$serviceInfo.PathName } else { '' }
    if ($servicePath.IndexOf($dockerdExe, [System.StringComparison]::OrdinalIgnoreCase) -lt 0) {
        throw "The docker service runs $servicePath, not $dockerdExe. Remove that installation " +
            '(Stop-Service docker; dockerd --unregister-service) and run docker-install again.'
    }
}

# --- binaries -----------------------------------------------------------------------------------------
$installedSha = $null
if ((Test-Path -LiteralPath $dockerExe -PathType Leaf) -and (Test-Path -LiteralPath $dockerdExe -PathType Leaf) -and
    (Test-Path -LiteralPath $marker -PathType Leaf)) {
    $installedSha = [System.IO.File]::ReadAllText($marker).Trim()
}
$binariesChanged = $false
if ($installedSha -ne $Sha256) {
    if (-not (Test-Path -LiteralPath $ZipPath -PathType Leaf)) {
        throw "The docker zip $ZipPath is not in the guest: labctl copies it there with Copy-VMFile before this " +
            'step; check that copy (and the guest disk''s free space).'
    }
    $actual = (Get-FileHash -LiteralPath $ZipPath -Algorithm SHA256).Hash
    if ($actual -ne $Sha256) {
        throw "SHA-256 of $ZipPath is $actual, expected $($Sha256): the zip is damaged or not the version labctl " +
            'expects; delete it so labctl copies it again.'
    }
    # dockerd.exe cannot be replaced while the service runs it.
    $running = Get-Service -Name docker -ErrorAction SilentlyContinue
    if ($running -and $running.Status -ne 'Stopped') {
        Stop-Service -Name docker -Force
    }
    # The zip holds docker\docker.exe and docker\dockerd.exe: expanding into Program Files gives $installDir.
    Expand-Archive -LiteralPath $ZipPath -DestinationPath $env:ProgramFiles -Force
    foreach ($exe in $dockerExe, $dockerdExe) {
        if (-not (Test-Path -LiteralPath $exe -PathType Leaf)) {
            throw "$ZipPath holds no docker\$(Split-Path -Path $exe -Leaf): is it the Windows static docker zip?"
        }
    }
    [System.IO.File]::WriteAllText($marker, $Sha256.ToUpperInvariant(), $utf8NoBom)
    $binariesChanged = $true
    $changed = $true
}

# --- PATH ---------------------------------------------------------------------------------------------
# Machine-wide for new sessions (the docker service itself runs dockerd by full path), and for this
# process. GetEnvironmentVariable returns PATH expanded and SetEnvironmentVariable stores it as REG_SZ,
# the usual .NET round trip: entries stay valid, only their %SystemRoot% spelling is lost.
$machinePath = [Environment]::GetEnvironmentVariable('Path', 'Machine')
$machineEntries = @($machinePath -split ';' | ForEach-Object { $_.Trim().TrimEnd('\') })
if ($machineEntries -notcontains $installDir) {
    [Environment]::SetEnvironmentVariable('Path', ($machinePath.TrimEnd(';') + ';' + $installDir), 'Machine')
    $changed = $true
}
if (@($env:Path -split ';' | ForEach-Object { $_.Trim().TrimEnd('\') }) -notcontains $installDir) {
    $env:Path = $env:Path.TrimEnd(';') + ';' + $installDir
}

# --- daemon.json --------------------------------------------------------------------------------------
$configChanged = $false
$desired = $utf8NoBom.GetBytes($DaemonJson)
$present = $null
if (Test-Path -LiteralPath $configPath -PathType Leaf) {
    $present = [System.IO.File]::ReadAllBytes($configPath)
}
# Byte comparison, so a BOM or another encoding written by someone else counts as a difference.
if ($null -eq $present -or [Convert]::ToBase64String($present) -cne [Convert]::ToBase64String($desired)) {
    if (-not (Test-Path -LiteralPath $configDir -PathType Container)) {
        $null = New-Item -Path $configDir -ItemType Directory -Force
    }
    [System.IO.File]::WriteAllText($configPath, $DaemonJson, $utf8NoBom)
    $configChanged = $true
    $changed = $true
}

# --- service ------------------------------------------------------------------------------------------
$registered = $false
$service = Get-Service -Name docker -ErrorAction SilentlyContinue
if ($null -eq $service) {
    # Registers "docker" (Automatic start) running this dockerd.exe with the default daemon.json above.
    $result = Invoke-NativeCommand -FilePath $dockerdExe -ArgumentList '--register-service'
    if ($result.ExitCode -ne 0) {
        throw "dockerd --register-service failed (exit code $($result.ExitCode)): " +
            "$(($result.Error + $result.Output) -join ' ')"
    }
    $registered = $true
    $changed = $true
    $service = Get-Service -Name docker
}
if ([string]$service.StartType -ne 'Automatic') {
    Set-Service -Name docker -StartupType Automatic
    $changed = $true
}

try {
    if ($binariesChanged -or $configChanged -or $registered) {
        # dockerd reads daemon.json only when it starts.
        if ($service.Status -eq 'Running') {
            Restart-Service -Name docker -Force
        } else {
            Start-Service -Name docker
        }
        $changed = $true
    } elseif ($service.Status -ne 'Running') {
        Start-Service -Name docker
        $changed = $true
    }
} catch {
    throw "The docker service did not start: $($_.Exception.Message). Check $configPath and the Application " +
        'event log (source docker) in the guest.'
}

# --- wait for the daemon ------------------------------------------------------------------------------
# The service reports Running before dockerd listens on its pipe: poll `docker version`, which exits 0
# only when the daemon answered, for at most $TimeoutSeconds.
$clock = [System.Diagnostics.Stopwatch]::StartNew()
while ($true) {
    $answer = Invoke-NativeCommand -FilePath $dockerExe -ArgumentList 'version', '--format',
        '{{.Client.Version}}|{{.Server.Version}}'
    if ($answer.ExitCode -eq 0) { break }
    $status = (Get-Service -Name docker).Status
    if ($status -eq 'Stopped') {
        throw "dockerd stopped after starting: $(($answer.Error) -join ' '). Check $configPath and the " +
            'Application event log (source docker) in the guest.'
    }
    if ($clock.Elapsed.TotalSeconds -ge $TimeoutSeconds) {
        throw "docker did not answer within $TimeoutSeconds s (service $status): $(($answer.Error) -join ' ')"
    }
    Start-Sleep -Seconds 1
}
# Client|Server. Assigned field by field: a missing one stays $null (strict mode refuses an index past the
# end); any further field goes to $null.
$clientVersion, $serverVersion, $null = ($answer.Output -join '').Split('|')

# The nat network is the default network Windows containers join; its subnet must not overlap the lab's.
$natSubnet = $null
$nat = Invoke-NativeCommand -FilePath $dockerExe -ArgumentList 'network', 'inspect', '--format',
    '{{json .IPAM.Config}}', 'nat'
if ($nat.ExitCode -eq 0) {
    $ipam = @(ConvertFrom-Json -InputObject ($nat.Output -join "`n"))
    # 5.1's ConvertFrom-Json emits a JSON array as one object: ForEach-Object { $_ } unrolls it. An entry
    # without Subnet (or the null docker prints for no IPAM config) is skipped: strict mode refuses reading
    # a property it lacks.
    $natSubnet = $ipam | ForEach-Object { $_ } |
        Where-Object { $null -ne $_ -and $_.PSObject.Properties['Subnet'] -and $_.Subnet } |
        ForEach-Object { $_.Subnet } | Select-Object -First 1
}

[pscustomobject]@{
    Step         = 'docker-install'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        ClientVersion = $clientVersion
        ServerVersion = $serverVersion
        ServiceStatus = [string](Get-Service -Name docker).Status
        NatSubnet     = $natSubnet
    }
}
