# labctl-step: probe 2

<#
.SYNOPSIS
    Readiness probe: reports who the guest is and how it is configured.

.DESCRIPTION
    Readiness probe, run over PowerShell Direct once the guest reports a healthy heartbeat.
    Reports who the guest is and how it is configured; changes nothing.

    FirewallGroups covers Remote Desktop (@FirewallAPI.dll,-28752) and Windows Remote Management
    (@FirewallAPI.dll,-30267), selected by group id (display names are localized); a group is Enabled only
    when it has rules and all of them are enabled.

.OUTPUTS
    System.Management.Automation.PSCustomObject: ComputerName, Caption, BuildNumber, LastBootUpTime, TimeZone,
    Adapters (Name, MacAddress, IPv4), DnsServers, RdpEnabled, FirewallGroups (Group, DisplayGroup, Enabled),
    PSRemoting, AnswerFilePresent. No Step/Changed.

.NOTES
    A labctl guest step, run over PowerShell Direct with its values as -ArgumentList in param() order;
    its first line names the step and version labctl and its simulator dispatch on (docs/guest-steps.md).
#>

#Requires -Version 5.1
[CmdletBinding()]
param()
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$adapters = foreach ($a in Get-NetAdapter) {
    $ips = Get-NetIPAddress -InterfaceIndex $a.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue
    [pscustomobject]@{
        Name       = $a.Name
        MacAddress = $a.MacAddress
        IPv4       = @($ips | ForEach-Object { $_.IPAddress })
    }
}
# Firewall groups by id (their display names are localized): whether every rule of each is enabled.
$firewall = foreach ($group in '@FirewallAPI.dll,-28752', '@FirewallAPI.dll,-30267') {
    $rules = @(Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue)
    [pscustomobject]@{
        Group        = $group
        DisplayGroup = @($rules | ForEach-Object { $_.DisplayGroup } | Select-Object -First 1)
        Enabled      = ($rules.Count -gt 0 -and @($rules | Where-Object { $_.Enabled -ne 'True' }).Count -eq 0)
    }
}
$rdp = Get-ItemProperty -Path 'HKLM:\System\CurrentControlSet\Control\Terminal Server' -Name fDenyTSConnections
[pscustomobject]@{
    ComputerName     = $env:COMPUTERNAME
    Caption          = $os.Caption
    BuildNumber      = [int]$os.BuildNumber
    LastBootUpTime   = $os.LastBootUpTime
    TimeZone         = (Get-TimeZone).Id
    Adapters         = @($adapters)
    DnsServers       = @(Get-DnsClientServerAddress -AddressFamily IPv4 | ForEach-Object { $_.ServerAddresses })
    RdpEnabled       = ($rdp.fDenyTSConnections -eq 0)
    FirewallGroups   = @($firewall)
    PSRemoting       = ((Get-Service -Name WinRM).Status -eq 'Running')
    AnswerFilePresent = (Test-Path -Path "$env:SystemRoot\Panther\unattend.xml")
}
