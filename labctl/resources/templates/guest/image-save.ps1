# labctl-step: image-save 2

<#
.SYNOPSIS
    Saves a local container image to a tar, unless the tar exists already.

.DESCRIPTION
    Saves a local image to a tar (C:\labctl\images\<repo>-<tag>.tar), so labctl can copy it to the host and
    load it into other guests instead of pulling it again. An existing tar is kept: tars are named by tag.
    The tar is written as <Path>.partial and renamed when complete.

.PARAMETER Image
    The local image to save (repository:tag).

.PARAMETER Path
    The tar to write in the guest.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (Path, Size: the tar's
    length in bytes).

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

# A file's Length. A folder at $Path has none, which strict mode refuses to read: Size is then 0, as before.
$saved = Get-Item -LiteralPath $Path
$length = if ($saved.PSObject.Properties['Length']) { $saved.Length } else { $null }

[pscustomobject]@{
    Step         = 'image-save'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        Path = $Path
        Size = [int64]$length
    }
}
