# labctl-step: exec 2

<#
.SYNOPSIS
    Runs the user's PowerShell command text in the guest (labctl exec).

.DESCRIPTION
    `labctl exec <vm> -- <command>`: runs the user's PowerShell command text in the guest, as they typed it.
    Running that text is the point of this step (the user's explicit intent), so it is compiled with
    [scriptblock]::Create and invoked; its output is the step's output, its errors the step's errors.

    The command runs as at an interactive prompt: with $ErrorActionPreference = 'Continue', without strict
    mode, with Program Files\docker on the session's PATH, and native output read as UTF-8.

.PARAMETER Command
    The command text, as the user typed it.

.OUTPUTS
    Whatever the command writes. No Step/Changed.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Command
)
Set-StrictMode -Version Latest
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

# Native programs' output is decoded with [Console]::OutputEncoding, the OEM code page (437, 850, ...) in a
# PowerShell Direct session; docker.exe writes UTF-8, so non-ASCII text would arrive garbled. Read it as
# UTF-8 (without a BOM) while the user's command runs, and put the session's encoding back afterwards.
# ($OutputEncoding is the other direction: text piped TO a native program.) A session without a console
# (WinRM) refuses the change ("The handle is invalid."): the command then runs with the encoding it has.
$consoleEncoding = [Console]::OutputEncoding
try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) }
catch { $consoleEncoding = $null }

# The command runs as at an interactive prompt: errors are reported and the command goes on. Under 'Stop',
# Windows PowerShell 5.1 would abort a native program (docker ...) at the first line it writes to stderr.
$ErrorActionPreference = 'Continue'
try {
    # Strict mode is this script's, not the user's: a scope inherits it from its parent, so the user's
    # command would run under it too ($undefined an error, not $null; (Get-Item x).Count refused). The
    # block below turns it off in its own scope, which the user's script block runs in; this script's scope
    # keeps it.
    & {
        Set-StrictMode -Off
        & $userScript
    }
}
finally {
    if ($null -ne $consoleEncoding) { [Console]::OutputEncoding = $consoleEncoding }
}
