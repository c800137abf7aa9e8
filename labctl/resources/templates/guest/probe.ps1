# labctl-step: probe 2
# Readiness probe, run over PowerShell Direct once the guest reports a healthy heartbeat.
# Reports who the guest is and how it is configured; changes nothing.
param()
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
