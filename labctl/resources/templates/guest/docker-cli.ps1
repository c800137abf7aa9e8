# labctl-step: docker-cli 2
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

# labctl-include: native.ps1
# labctl-include: docker.ps1

$result = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList $Arguments

[pscustomobject]@{
    ExitCode = $result.ExitCode
    Output   = [string[]]$result.Output
    Error    = [string[]]$result.Error
}
