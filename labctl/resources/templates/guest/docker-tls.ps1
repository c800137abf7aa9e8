# labctl-step: docker-tls 1

<#
.SYNOPSIS
    Gives dockerd its TLS identity and opens TCP 2376 for clients with a certificate from its CA.

.DESCRIPTION
    Gives dockerd its TLS identity (CA, server certificate and key in %ProgramData%\docker\certs.d, where
    daemon.json's tlscacert/tlscert/tlskey point) and opens TCP 2376 inbound for clients with a
    certificate from that CA. Run it before docker-install when daemon.json enables TLS (dockerd will not
    start without the files); run again with new PEMs to rotate them (a running dockerd is restarted).

    certs.d is restricted to SYSTEM and Administrators (protected ACL); a file is written only when its
    bytes differ; the firewall rule (Name and DisplayName 'labctl Docker TLS') is recreated when it drifted.
    The key never leaves this script: no output, message or error record carries it.

.PARAMETER CaPem
    The CA certificate (PEM text), written to ca.pem.

.PARAMETER CertPem
    The server certificate (PEM text), written to server-cert.pem.

.PARAMETER KeyPem
    The server's unencrypted private key (PEM text), written to server-key.pem. A secret: it is dropped from
    $PSBoundParameters before anything can fail and appears in no output or message.

.OUTPUTS
    System.Management.Automation.PSCustomObject: Step, Changed, RebootNeeded and Facts (CertDir,
    FirewallRule).

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $CaPem,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $CertPem,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $KeyPem
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Error records go back to the host with their InvocationInfo, whose BoundParameters is the dictionary
# behind $PSBoundParameters: take the key out of it (and out of $KeyPem) before anything can fail.
$serverKey = $KeyPem
[void]$PSBoundParameters.Remove('KeyPem')
$KeyPem = $null

# Messages name the argument, never its content.
if ($CaPem -notmatch '-----BEGIN CERTIFICATE-----') {
    throw 'CaPem is not a PEM certificate (no -----BEGIN CERTIFICATE----- line): pass the CA file''s text.'
}
if ($CertPem -notmatch '-----BEGIN CERTIFICATE-----') {
    throw 'CertPem is not a PEM certificate (no -----BEGIN CERTIFICATE----- line): pass the certificate file''s text.'
}
if ($serverKey -notmatch '-----BEGIN (RSA |EC )?PRIVATE KEY-----') {
    throw 'KeyPem is not an unencrypted PEM private key (no -----BEGIN [RSA |EC ]PRIVATE KEY----- line); ' +
        'dockerd cannot use a key protected by a passphrase.'
}

$changed = $false
$certDir = Join-Path -Path $env:ProgramData -ChildPath 'docker\certs.d'
if (-not (Test-Path -LiteralPath $certDir -PathType Container)) {
    $null = New-Item -Path $certDir -ItemType Directory -Force
    $changed = $true
}

# --- access: SYSTEM (dockerd runs as LocalSystem) and Administrators only ------------------------------
# Folders under ProgramData inherit read access for Users; the server key must not be readable by them.
# Well-known SIDs, so the check does not depend on the guest's language.
$system = [System.Security.Principal.SecurityIdentifier]::new('S-1-5-18')
$administrators = [System.Security.Principal.SecurityIdentifier]::new('S-1-5-32-544')
$inherit = [System.Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit'
$wantedRules = @(
    foreach ($sid in $system, $administrators) {
        '{0}|FullControl|{1}|Allow' -f $sid.Value, $inherit
    }
) | Sort-Object
$acl = Get-Acl -LiteralPath $certDir
$haveRules = @(
    foreach ($rule in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        '{0}|{1}|{2}|{3}' -f $rule.IdentityReference.Value, $rule.FileSystemRights, $rule.InheritanceFlags,
        $rule.AccessControlType
    }
) | Sort-Object
if (-not $acl.AreAccessRulesProtected -or (($haveRules -join ';') -ne ($wantedRules -join ';'))) {
    $newAcl = [System.Security.AccessControl.DirectorySecurity]::new()
    # Protected: nothing inherited from ProgramData; the rules below propagate to the files.
    $newAcl.SetAccessRuleProtection($true, $false)
    foreach ($sid in $system, $administrators) {
        $newAcl.AddAccessRule([System.Security.AccessControl.FileSystemAccessRule]::new(
                $sid, 'FullControl', $inherit, 'None', 'Allow'))
    }
    # A fresh DirectorySecurity carries only the DACL, so the owner is left as it is.
    Set-Acl -LiteralPath $certDir -AclObject $newAcl
    $changed = $true
}

# --- the three files ----------------------------------------------------------------------------------
# Written only when their bytes differ (UTF-8 without BOM, as the PEM text arrived).
$utf8NoBom = New-Object System.Text.UTF8Encoding $false
$certsChanged = $false
foreach ($file in @(
        @{ Name = 'ca.pem'; Text = $CaPem },
        @{ Name = 'server-cert.pem'; Text = $CertPem },
        @{ Name = 'server-key.pem'; Text = $serverKey })) {
    $path = Join-Path -Path $certDir -ChildPath $file.Name
    $desired = $utf8NoBom.GetBytes($file.Text)
    $present = $null
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        $present = [System.IO.File]::ReadAllBytes($path)
    }
    if ($null -eq $present -or [Convert]::ToBase64String($present) -cne [Convert]::ToBase64String($desired)) {
        [System.IO.File]::WriteAllText($path, $file.Text, $utf8NoBom)
        $certsChanged = $true
        $changed = $true
    }
}
$serverKey = $null

# --- firewall -----------------------------------------------------------------------------------------
# Name and DisplayName are both 'labctl Docker TLS': one rule, found by name, recreated if it drifted.
$ruleName = 'labctl Docker TLS'
$rule = Get-NetFirewallRule -Name $ruleName -ErrorAction SilentlyContinue
$ruleOk = $false
if ($rule) {
    $ports = Get-NetFirewallPortFilter -AssociatedNetFirewallRule $rule
    $ruleOk = ([string]$rule.Enabled -eq 'True') -and ([string]$rule.Direction -eq 'Inbound') -and
        ([string]$rule.Action -eq 'Allow') -and ([string]$rule.Profile -eq 'Any') -and
        ([string]$ports.Protocol -eq 'TCP') -and ((@($ports.LocalPort) -join ',') -eq '2376')
    if (-not $ruleOk) {
        Remove-NetFirewallRule -Name $ruleName
    }
}
if (-not $ruleOk) {
    $null = New-NetFirewallRule -Name $ruleName -DisplayName $ruleName -Description 'Docker API over TLS (labctl)' `
        -Direction Inbound -Action Allow -Protocol TCP -LocalPort 2376 -Profile Any -Enabled True
    $changed = $true
}

# --- dockerd reads its certificates only when it starts ---------------------------------------------------
$service = Get-Service -Name docker -ErrorAction SilentlyContinue
if ($certsChanged -and $service -and $service.Status -eq 'Running') {
    try {
        Restart-Service -Name docker -Force
    } catch {
        throw "The docker service did not restart with the new certificates: $($_.Exception.Message). Check " +
            'daemon.json and the Application event log (source docker) in the guest.'
    }
}

[pscustomobject]@{
    Step         = 'docker-tls'
    Changed      = $changed
    RebootNeeded = $false
    Facts        = [pscustomobject]@{
        CertDir      = $certDir
        FirewallRule = $ruleName
    }
}
