# labctl-step: docker-cli 2

<#
.SYNOPSIS
    Runs docker in the guest with the user's arguments (labctl docker).

.DESCRIPTION
    `labctl docker <vm> -- <arguments>`: runs docker in the guest with the user's arguments, one argument
    each (no shell in between), and returns docker's exit code and its stdout and stderr lines. A non-zero
    exit code is docker's answer, not a failure of this step. docker has no terminal here: commands that
    need one (-it, attach) say so, and commands that never end (logs -f) keep the step running.
    docker's output is read as UTF-8 (Invoke-NativeCommand).

.PARAMETER Arguments
    docker's arguments, one element each (an empty string is passed on as an empty argument).

.OUTPUTS
    System.Management.Automation.PSCustomObject: ExitCode, Output (string[]: stdout lines) and Error
    (string[]: stderr lines). No Step/Changed: the output is docker's.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order
    (the array is one element);
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [AllowEmptyString()]
    [string[]] $Arguments
)
# labctl-include: docker-step.ps1

$result = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList $Arguments

[pscustomobject]@{
    ExitCode = $result.ExitCode
    Output   = [string[]]$result.Output
    Error    = [string[]]$result.Error
}
