# labctl-step: image-load 2

<#
.SYNOPSIS
    Loads a container image from a tar in the guest, unless the guest has it already.

.DESCRIPTION
    Loads an image from a tar that labctl copied into the guest (C:\labctl\images\<repo>-<tag>.tar), unless
    the guest already has the image: faster than pulling the same layers from the registry again. A tar
    that holds another image is an error.

.PARAMETER Image
    The image the tar holds (repository:tag).

.PARAMETER Path
    The tar in the guest. Not needed when the guest has the image already.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Id: the image id).

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
    [string] $Image,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $Path
)
# labctl-include: docker-step.ps1

$changed = $false
$found = Get-DockerImage -Name $Image
if ($null -eq $found) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        throw "Image $Image is not in this guest and its tar $Path is missing: labctl copies the tar in " +
            '(Copy-VMFile) before this step; check that copy, or pull the image instead (image-pull step).'
    }
    $said = Invoke-Docker -ArgumentList 'load', '--input', $Path
    $changed = $true
    $found = Get-DockerImage -Name $Image
    if ($null -eq $found) {
        # docker load names what it loaded ("Loaded image: repo:tag"): the tar holds another image.
        throw "docker load --input $Path did not give $Image (docker said: $(@($said) -join ' ')); the tar " +
            'holds another image: delete it on the host so labctl saves it again.'
    }
}

[pscustomobject]@{
    Step         = 'image-load'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        Id = $found.Id
    }
}
