# labctl-step: image-pull 2

<#
.SYNOPSIS
    Pulls the container images a container host needs, skipping those it has already.

.DESCRIPTION
    Pulls the container images a container host needs, skipping those it already has. A pull of a
    servercore image takes minutes; docker's own progress is not streamed back, only the result. A failed
    pull is an error that says what to check (an image without a variant for the guest's Windows build
    names the tag to use).

.PARAMETER Images
    The images (repository:tag), one element each.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Images: one object
    per image with Name, Id, Size in bytes and OsVersion).

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    # The pattern keeps docker from reading a name as an option (a leading '-').
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string[]] $Images
)
# labctl-include: docker-step.ps1

$changed = $false
$facts = foreach ($image in $Images) {
    $found = Get-DockerImage -Name $image
    if ($null -eq $found) {
        $pull = Invoke-NativeCommand -FilePath (Get-DockerPath) -ArgumentList 'pull', $image
        if ($pull.ExitCode -ne 0) {
            $said = (@($pull.Error) + @($pull.Output)) -join ' '
            $hint = 'Check the name and tag, and that the guest resolves and reaches the registry (mcr.microsoft.com).'
            if ($said -match 'no matching manifest') {
                # Windows images exist per build: a tag newer than the guest's Windows has no image for it.
                $hint = 'The image has no variant for this Windows build: use the tag matching the guest ' +
                    '(ltsc2019 on Server 2019, ltsc2022 on 2022, ltsc2025 on 2025).'
            }
            throw "docker pull $image failed (exit code $($pull.ExitCode)): $said $hint"
        }
        $changed = $true
        $found = Get-DockerImage -Name $image
        if ($null -eq $found) {
            throw "docker pull $image succeeded but docker image inspect does not find it."
        }
    }
    $found
}

[pscustomobject]@{
    Step         = 'image-pull'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        # Each: Name, Id, Size (bytes), OsVersion.
        Images = @($facts)
    }
}
