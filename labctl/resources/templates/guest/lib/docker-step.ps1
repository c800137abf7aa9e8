# The preamble of every step that runs docker: strict mode, stop at the first error, and the helpers to run
# native programs and docker (each script travels alone, so they are spliced in here).
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# labctl-include: native.ps1
# labctl-include: docker.ps1
