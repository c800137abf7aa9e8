# labctl-step: image-save 1
# Saves a local image to a tar (C:\labctl\images\<repo>-<tag>.tar), so labctl can copy it to the host and
# load it into other guests instead of pulling it again. An existing tar is kept: tars are named by tag.
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
if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
    if ($null -eq (Get-DockerImage -Name $Image)) {
        throw "Image $Image is not in this guest, so it cannot be saved: pull it first (image-pull step)."
    }
    $folder = Split-Path -Path $Path -Parent
    if ($folder -and -not (Test-Path -LiteralPath $folder -PathType Container)) {
        $null = New-Item -Path $folder -ItemType Directory -Force
    }
    # Save under a temporary name and rename when complete: an interrupted save must not leave a
    # truncated tar that the check above would take for a finished one.
    $partial = "$Path.partial"
    if (Test-Path -LiteralPath $partial) {
        Remove-Item -LiteralPath $partial -Force
    }
    try {
        $null = Invoke-Docker -ArgumentList 'save', '--output', $partial, $Image
    } catch {
        throw "Saving $Image to $Path failed: $($_.Exception.Message) (is there room on " +
            "$(Split-Path -Path $Path -Qualifier)?)"
    }
    Move-Item -LiteralPath $partial -Destination $Path
    $changed = $true
}

[pscustomobject]@{
    Step         = 'image-save'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        Path = $Path
        Size = [int64](Get-Item -LiteralPath $Path).Length
    }
}
