# labctl-step: image-pull 1
# Pulls the container images a container host needs, skipping those it already has. A pull of a
# servercore image takes minutes; docker's own progress is not streamed back, only the result.
param(
    # The pattern keeps docker from reading a name as an option (a leading '-').
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string[]] $Images
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
$facts = foreach ($image in $Images) {
    $found = Get-DockerImage -Name $image
    if ($null -eq $found) {
        $pull = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList 'pull', $image
        if ($pull.ExitCode -ne 0) {
            $said = (@($pull.Error) + @($pull.Output)) -join ' '
            $hint = 'Check the name and tag, and that the guest resolves and reaches the registry (mcr.microsoft.com).'
            if ($said -match 'no matching manifest') {
                # Windows images exist per build: a tag newer than the guest's Windows has no image for it.
                $hint = 'The image has no variant for this Windows build: use the tag matching the guest ' +
                    '(ltsc2019 on Server 2019, ltsc2022 on 2022, ltsc2025 on 2025).'
            }
            throw "docker pull $image failed (exit code $($pull.ExitCode)): $said $hint"
        }
        $changed = $true
        $found = Get-DockerImage -Name $image
        if ($null -eq $found) {
            throw "docker pull $image succeeded but docker image inspect does not find it."
        }
    }
    $found
}

[pscustomobject]@{
    Step         = 'image-pull'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        # Each: Name, Id, Size (bytes), OsVersion.
        Images = @($facts)
    }
}
