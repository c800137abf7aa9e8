# Shared helper: run a native program and collect its exit code and output.
function Invoke-NativeCommand {
    # Runs a native program; returns its exit code and its stdout and stderr lines.
    # $ErrorActionPreference does not apply to native programs: their exit code says whether they worked.
    # Windows PowerShell 5.1 also turns each redirected stderr line into an error record, which 'Stop'
    # would make terminating on the first warning, so this function collects both streams under
    # 'Continue' (its own scope only) and leaves the verdict to the caller.
    param(
        [Parameter(Mandatory = $true)]
        [string] $FilePath,

        [string[]] $ArgumentList = @()
    )
    $ErrorActionPreference = 'Continue'
    # Windows PowerShell 5.1 passes embedded double quotes to native programs unescaped and drops empty
    # arguments: escape them the way the MSVC / Go command-line parsers read them back.
    $escaped = @(foreach ($argument in $ArgumentList) {
            if ([string]::IsNullOrEmpty($argument)) { '""'; continue }
            $text = $argument -replace '(\\*)"', '$1$1\"'
            if ($text -match '\s') {
                # PowerShell wraps an argument holding whitespace in quotes; a trailing backslash would
                # escape the closing quote, so double it.
                $text = $text -replace '(\\+)$', '$1$1'
            }
            $text
        })
    $stdout = [System.Collections.Generic.List[string]]::new()
    $stderr = [System.Collections.Generic.List[string]]::new()
    # Windows PowerShell 5.1 decodes a native program's stdout and stderr with [Console]::OutputEncoding, the
    # OEM code page (437, 850, ...) in a PowerShell Direct session, but docker.exe and dockerd.exe write UTF-8:
    # without this, every non-ASCII character (a label, a container's output, a localized error) arrives
    # garbled ('é' as two OEM characters). ($OutputEncoding is the other direction: text piped TO a program.)
    # UTF8Encoding without a BOM; the session's own encoding is put back afterwards. A session without a
    # console (WinRM) refuses the change ("The handle is invalid."): its output then stays as it was.
    $consoleEncoding = [Console]::OutputEncoding
    try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) }
    catch { $consoleEncoding = $null }
    $exitCode = $null
    try {
        & $FilePath @escaped 2>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { $stderr.Add($_.ToString()) }
            else { $stdout.Add([string]$_) }
        }
        # $LASTEXITCODE exists once a native program has run in this session. Strict mode refuses to read it
        # before (when $FilePath could not be started at all): the exit code then stays $null, as an unset
        # variable read without strict mode.
        if (Test-Path -LiteralPath 'Variable:\LASTEXITCODE') { $exitCode = $LASTEXITCODE }
    }
    finally {
        if ($null -ne $consoleEncoding) { [Console]::OutputEncoding = $consoleEncoding }
    }
    [pscustomobject]@{ ExitCode = $exitCode; Output = $stdout.ToArray(); Error = $stderr.ToArray() }
}
