# labctl-step: docker-cli 1
# `labctl docker <vm> -- <arguments>`: runs docker in the guest with the user's arguments, one argument
# each (no shell in between), and returns docker's exit code and its stdout and stderr lines. A non-zero
# exit code is docker's answer, not a failure of this step. docker has no terminal here: commands that
# need one (-it, attach) say so, and commands that never end (logs -f) keep the step running.
param(
    [Parameter(Mandatory = $true)]
    [AllowEmptyString()]
    [string[]] $Arguments
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

$result = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList $Arguments

[pscustomobject]@{
    ExitCode = $result.ExitCode
    Output   = [string[]]$result.Output
    Error    = [string[]]$result.Error
}
