# labctl-step: isolation-demo 2

<#
.SYNOPSIS
    Measures process isolation and Hyper-V isolation of Windows containers (labctl demo isolation).

.DESCRIPTION
    `labctl demo isolation`: what process isolation and Hyper-V isolation of Windows containers look like
    from inside one container host. For each image ($Image: the guest's own LTSC nanoserver; $OlderImage: an
    older LTSC one) and each isolation (process, hyperv) it measures:

      StartSeconds     Measure-Command around `docker run --rm <image> cmd /c ver`: the wall time to create,
                       start (for hyperv: boot the container's utility VM), run, stop and remove a container.
      KernelBuild      the build in that container's `cmd /c ver`: the kernel the container runs on. Process
                       isolation shares the guest's kernel (the guest's build); Hyper-V isolation boots the
                       image's own kernel in a utility VM (the image's build).
      VisibleInGuest   with a long-running container (`ping -t localhost`): does a new PING process appear in
                       the guest's own process list (Get-Process)? Process isolation: yes, the container's
                       processes are guest processes in their own silo. Hyper-V isolation: no, they run inside
                       the utility VM.
      MemoryOverheadMB with the same container running: the working set of the vmmem process(es) that
                       appeared in the guest, in MB. That process stands for the utility VM's memory, so this
                       is what the Hyper-V boundary costs; process isolation starts no utility VM: 0.

    A run Windows refuses (the older image with process isolation: "The container operating system does not
    match the host operating system", 0xc0370101) is the demo's point: it is reported in its row (Ok = $false,
    Error), not thrown. Every container is removed again; Changed says whether an image had to be pulled
    (a missing image is pulled first, outside the measured runs).

.PARAMETER Image
    The guest's own LTSC image (nanoserver of the guest's Windows build).

.PARAMETER OlderImage
    An older LTSC image, which only Hyper-V isolation can run.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (GuestBuild, Rows: one
    per image and isolation with Image, Isolation, Ok, Error, StartSeconds, KernelBuild, VisibleInGuest,
    MemoryOverheadMB).

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
    [string] $Image,

    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]')]
    [string] $OlderImage
)
# labctl-include: docker-step.ps1

function Measure-Isolation {
    # One row: $Name under $Isolation.
    param(
        [Parameter(Mandatory = $true)]
        [string] $Name,

        [Parameter(Mandatory = $true)]
        [string] $Isolation
    )
    $docker = Get-DockerPath
    $row = [ordered]@{
        Image            = $Name
        Isolation        = $Isolation
        Ok               = $false
        Error            = $null
        StartSeconds     = $null
        KernelBuild      = $null
        VisibleInGuest   = $null
        MemoryOverheadMB = $null
    }

    # StartSeconds and KernelBuild. Measure-Command discards the block's output: the result goes into a
    # hashtable from outside the block.
    $holder = @{}
    $elapsed = Measure-Command {
        $holder.Run = Invoke-NativeCommand -FilePath $docker -ArgumentList 'run', '--rm', "--isolation=$Isolation",
            $Name, 'cmd', '/c', 'ver'
    }
    $run = $holder.Run
    # Measured whether or not Windows ran it: a refusal takes time too.
    $row.StartSeconds = [math]::Round($elapsed.TotalSeconds, 3)
    if ($run.ExitCode -ne 0) {
        $row.Error = (@($run.Error) + @($run.Output) | Where-Object { $_.Trim() }) -join ' '
        return [pscustomobject]$row
    }
    # "Microsoft Windows [Version 10.0.20348.2340]" -> 20348
    if (($run.Output -join ' ') -match 'Version \d+\.\d+\.(\d+)') {
        $row.KernelBuild = [int]$Matches[1]
    }

    # VisibleInGuest and MemoryOverheadMB: what the guest sees while a container runs. Processes that
    # existed before the container are left out by id.
    $pingBefore = @(Get-Process -Name 'PING' -ErrorAction SilentlyContinue | ForEach-Object { $_.Id })
    $vmmemBefore = @(Get-Process -Name 'vmmem*' -ErrorAction SilentlyContinue | ForEach-Object { $_.Id })
    $container = 'labctl-isolation-demo-' + $Isolation
    # A container left behind by an interrupted run would hold the name.
    $null = Invoke-NativeCommand -FilePath $docker -ArgumentList 'rm', '--force', $container
    $started = Invoke-NativeCommand -FilePath $docker -ArgumentList 'run', '--detach', '--rm', '--name', $container,
        "--isolation=$Isolation", $Name, 'ping', '-t', 'localhost'
    if ($started.ExitCode -ne 0) {
        $row.Error = (@($started.Error) + @($started.Output) | Where-Object { $_.Trim() }) -join ' '
        return [pscustomobject]$row
    }
    try {
        # `docker run --detach` returns once the container started; wait (at most 60 s) until docker top
        # lists ping inside it, so the guest's process list is read while ping surely runs.
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        $running = $false
        while (-not $running -and $clock.Elapsed.TotalSeconds -lt 60) {
            $top = Invoke-NativeCommand -FilePath $docker -ArgumentList 'top', $container
            $running = $top.ExitCode -eq 0 -and @($top.Output -match 'ping').Count -gt 0
            if (-not $running) { Start-Sleep -Milliseconds 500 }
        }
        if (-not $running) {
            $row.Error = "ping did not start in container $container within 60 s."
            return [pscustomobject]$row
        }
        $pingNew = @(Get-Process -Name 'PING' -ErrorAction SilentlyContinue |
                Where-Object { $pingBefore -notcontains $_.Id })
        $row.VisibleInGuest = $pingNew.Count -gt 0
        # On Windows Server the memory of a utility VM is charged to a process named vmmem in the partition
        # that hosts it (here: the guest); its working set is the VM memory actually backed.
        $bytes = [int64]0
        foreach ($process in @(Get-Process -Name 'vmmem*' -ErrorAction SilentlyContinue |
                    Where-Object { $vmmemBefore -notcontains $_.Id })) {
            $bytes += $process.WorkingSet64
        }
        $row.MemoryOverheadMB = [math]::Round($bytes / 1mb, 1)
        $row.Ok = $true
    } finally {
        $null = Invoke-NativeCommand -FilePath $docker -ArgumentList 'rm', '--force', $container
    }
    [pscustomobject]$row
}

# The older image is usually not in the guest yet. docker run would pull a missing image inside the measured
# run: pull it first, on its own (an image older than the guest's Windows always has a variant to pull).
$changed = $false
foreach ($name in $Image, $OlderImage) {
    if ($null -eq (Get-DockerImage -Name $name)) {
        $null = Invoke-Docker -ArgumentList 'pull', $name
        $changed = $true
    }
}

$rows = foreach ($name in $Image, $OlderImage) {
    foreach ($isolation in 'process', 'hyperv') {
        Measure-Isolation -Name $name -Isolation $isolation
    }
}

[pscustomobject]@{
    Step         = 'isolation-demo'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        GuestBuild = [int](Get-CimInstance -ClassName Win32_OperatingSystem).BuildNumber
        Rows       = @($rows)
    }
}
