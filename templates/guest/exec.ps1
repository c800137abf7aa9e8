# labctl-step: exec 1
# `labctl exec <vm> -- <command>`: runs the user's PowerShell command text in the guest, as they typed it.
# Running that text is the point of this step (the user's explicit intent), so it is compiled with
# [scriptblock]::Create and invoked; its output is the step's output, its errors the step's errors.
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Command
)
$ErrorActionPreference = 'Stop'

# docker-install added Program Files\docker to the machine PATH; a session whose environment predates that
# change would not find `docker`.
$dockerDir = Join-Path -Path $env:ProgramFiles -ChildPath 'docker'
if ((Test-Path -LiteralPath $dockerDir -PathType Container) -and
    (@($env:Path -split ';' | ForEach-Object { $_.Trim().TrimEnd('\') }) -notcontains $dockerDir)) {
    $env:Path = $env:Path.TrimEnd(';') + ';' + $dockerDir
}

# A syntax error in the text stops here, with PowerShell's own message (line, column, what it expected).
$userScript = [scriptblock]::Create($Command)

# The command runs as at an interactive prompt: errors are reported and the command goes on. Under 'Stop',
# Windows PowerShell 5.1 would abort a native program (docker ...) at the first line it writes to stderr.
$ErrorActionPreference = 'Continue'
& $userScript
