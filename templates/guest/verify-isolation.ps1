# labctl-step: verify-isolation 1
# Proves the container host works: runs `cmd /c ver` in a throw-away container of $Image with process
# isolation and again with Hyper-V isolation (pulling $Image first if the guest lacks it). A failed run is a
# finding, reported in its row; only a guest that cannot try (no docker, an image it cannot pull) is an error.
param(
    # The pattern keeps docker from reading the name as an option (a leading '-').
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string] $Image
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
if ($null -eq (Get-DockerImage -Name $Image)) {
    # docker run would pull a missing image inside the measured run: pull it first, on its own.
    $null = Invoke-Docker -ArgumentList 'pull', $Image
    $changed = $true
}

$docker = Get-DockerPath
$runs = [ordered]@{}
foreach ($isolation in 'process', 'hyperv') {
    # Measure-Command discards the block's output: the result goes into a hashtable from outside the block.
    $holder = @{}
    $elapsed = Measure-Command {
        $holder.Run = Invoke-NativeCommand -FilePath $docker -ArgumentList 'run', '--rm', "--isolation=$isolation",
            $Image, 'cmd', '/c', 'ver'
    }
    $run = $holder.Run
    $ok = $run.ExitCode -eq 0
    $runs[$isolation] = [pscustomobject]@{
        Ok      = $ok
        # `ver` prints an empty line, then "Microsoft Windows [Version 10.0.<build>.<revision>]".
        Output  = (@($run.Output | Where-Object { $_.Trim() }) -join [Environment]::NewLine)
        Error   = if ($ok) { $null } else { (@($run.Error) + @($run.Output)) -join ' ' }
        Seconds = [math]::Round($elapsed.TotalSeconds, 3)
    }
}

[pscustomobject]@{
    Step         = 'verify-isolation'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        Process = $runs['process']
        HyperV  = $runs['hyperv']
    }
}
