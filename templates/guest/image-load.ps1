# labctl-step: image-load 1
# Loads an image from a tar that labctl copied into the guest (C:\labctl\images\<repo>-<tag>.tar), unless
# the guest already has the image: faster than pulling the same layers from the registry again.
param(
    # The pattern keeps docker from reading the name as an option (a leading '-').
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string] $Image,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Path
)
$ErrorActionPreference = 'Stop'

function Invoke-NativeCommand {
    # Runs a native program; returns its exit code and its stdout and stderr lines.
    # $ErrorActionPreference does not apply to native programs: their exit code says whether they worked.
    # Windows PowerShell 5.1 also turns each redirected stderr line into an error record, which 'Stop'
    # would make terminating on the first warning, so this function collects both streams under
    # 'Continue' (its own scope only) and leaves the verdict to the caller.
    param(
        [Parameter(Mandatory = $true)]
        [string] $FilePath,

        [string[]] $ArgumentList = @()
    )
    $ErrorActionPreference = 'Continue'
    # Windows PowerShell 5.1 passes embedded double quotes to native programs unescaped and drops empty
    # arguments: escape them the way the MSVC / Go command-line parsers read them back.
    $escaped = @(foreach ($argument in $ArgumentList) {
            if ([string]::IsNullOrEmpty($argument)) { '""'; continue }
            $text = $argument -replace '(\\*)"', '$1$1\"'
            if ($text -match '\s') {
                # PowerShell wraps an argument holding whitespace in quotes; a trailing backslash would
                # escape the closing quote, so double it.
                $text = $text -replace '(\\+)$', '$1$1'
            }
            $text
        })
    $stdout = [System.Collections.Generic.List[string]]::new()
    $stderr = [System.Collections.Generic.List[string]]::new()
    & $FilePath @escaped 2>&1 | ForEach-Object {
        if ($_ -is [System.Management.Automation.ErrorRecord]) { $stderr.Add($_.ToString()) }
        else { $stdout.Add([string]$_) }
    }
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $stdout.ToArray(); Error = $stderr.ToArray() }
}

function Get-DockerPath {
    # docker-install puts docker.exe in Program Files\docker. Call it by full path: this session's PATH may
    # predate docker-install's machine PATH change. Fall back to PATH for a docker installed elsewhere.
    $path = Join-Path -Path $env:ProgramFiles -ChildPath 'docker\docker.exe'
    if (Test-Path -LiteralPath $path -PathType Leaf) { return $path }
    $found = Get-Command -Name 'docker.exe' -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if ($found) { return $found.Path }
    throw "docker.exe is not installed in this guest (not at $path, not on PATH): run the docker-install step first."
}

function Invoke-Docker {
    # docker with these arguments: its stdout lines, or a terminating error carrying what docker said.
    param(
        [Parameter(Mandatory = $true)]
        [string[]] $ArgumentList
    )
    $result = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList $ArgumentList
    if ($result.ExitCode -ne 0) {
        throw "docker $($ArgumentList -join ' ') failed (exit code $($result.ExitCode)): " +
            "$(($result.Error + $result.Output) -join ' ')"
    }
    $result.Output
}

function Get-DockerImage {
    # Name, Id, Size (bytes) and OsVersion of a local image, or $null when the guest does not have it.
    param(
        [Parameter(Mandatory = $true)]
        [string] $Name
    )
    $result = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList 'image', 'inspect', '--format',
        '{{.Id}}|{{.Size}}|{{.OsVersion}}', $Name
    if ($result.ExitCode -ne 0) {
        # "No such image" is an answer; anything else (the daemon not running) is a failure.
        if (($result.Error -join ' ') -match 'No such (image|object)') { return $null }
        throw "docker image inspect $Name failed (exit code $($result.ExitCode)): $($result.Error -join ' '). " +
            'Is the docker service running (Get-Service docker)?'
    }
    $fields = ($result.Output -join '').Split('|')
    [pscustomobject]@{ Name = $Name; Id = $fields[0]; Size = [int64]$fields[1]; OsVersion = $fields[2] }
}

$changed = $false
$found = Get-DockerImage -Name $Image
if ($null -eq $found) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        throw "Image $Image is not in this guest and its tar $Path is missing: labctl copies the tar in " +
            '(Copy-VMFile) before this step; check that copy, or pull the image instead (image-pull step).'
    }
    $said = Invoke-Docker -ArgumentList 'load', '--input', $Path
    $changed = $true
    $found = Get-DockerImage -Name $Image
    if ($null -eq $found) {
        # docker load names what it loaded ("Loaded image: repo:tag"): the tar holds another image.
        throw "docker load --input $Path did not give $Image (docker said: $(@($said) -join ' ')); the tar " +
            'holds another image: delete it on the host so labctl saves it again.'
    }
}

[pscustomobject]@{
    Step         = 'image-load'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        Id = $found.Id
    }
}
