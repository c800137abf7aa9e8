# Shared helpers for the docker steps (needs native.ps1 included before it).
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
    # Id|Size|OsVersion, assigned field by field: a missing one stays $null (strict mode refuses an index
    # past the end), any further field goes to $null.
    $id, $size, $osVersion, $null = ($result.Output -join '').Split('|')
    [pscustomobject]@{ Name = $Name; Id = $id; Size = [int64]$size; OsVersion = $osVersion }
}
