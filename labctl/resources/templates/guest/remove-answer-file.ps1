# labctl-step: remove-answer-file 1
# The answer file holds the encoded Administrator password: delete it once setup has used it.
param()
$ErrorActionPreference = 'Stop'
$path = Join-Path -Path $env:SystemRoot -ChildPath 'Panther\unattend.xml'
$changed = $false
if (Test-Path -Path $path) {
    Remove-Item -Path $path -Force
    $changed = $true
}
[pscustomobject]@{ Changed = $changed; RebootNeeded = $false }
