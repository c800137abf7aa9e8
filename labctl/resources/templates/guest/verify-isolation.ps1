# labctl-step: verify-isolation 2

<#
.SYNOPSIS
    Proves the container host works: a throw-away container with process and with Hyper-V isolation.

.DESCRIPTION
    Proves the container host works: runs `cmd /c ver` in a throw-away container of $Image with process
    isolation and again with Hyper-V isolation (pulling $Image first if the guest lacks it). A failed run is a
    finding, reported in its row; only a guest that cannot try (no docker, an image it cannot pull) is an error.

.PARAMETER Image
    The image to run (repository:tag).

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Process and HyperV:
    each with Ok, Output, Error and Seconds).

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    # The pattern keeps docker from reading the name as an option (a leading '-').
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string] $Image
)
# labctl-include: docker-step.ps1

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
