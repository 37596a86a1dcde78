# backup-preflight in-guest probe for Windows (PowerShell 5.1+, read-only: it changes nothing).
#
# Prints ONE JSON object with the facts Azure Backup's snapshot step depends on inside the guest
# and that Azure's control plane cannot see: DHCP on the interface that carries the default route,
# the WinHTTP proxy, USEVSSCOPYBACKUP (SQL Server VMs), the IaaSVmProvider service's start type,
# the VM agent's service state and version, and two observed TCP connects (the wire server
# 168.63.129.16:80, and a Storage endpoint on 443). Run it as administrator (Run Command, Intune,
# Azure Automation ...); `backup-preflight scan --snapshot OUTPUT.json` reads what it prints.
#
# Environment overrides (the Run Command runner sets them): BP_VM_ID (ARM id of the VM; default:
# asked from the instance metadata service), BP_STORAGE_HOST / BP_STORAGE_PORT (default: none, not
# tested / 443), BP_WIRESERVER_HOST / BP_WIRESERVER_PORT (default 168.63.129.16 / 80),
# BP_CONNECT_TIMEOUT (seconds, default 5).

$ErrorActionPreference = 'SilentlyContinue'
$timeout = if ($env:BP_CONNECT_TIMEOUT) { [int]$env:BP_CONNECT_TIMEOUT } else { 5 }

# $true when TCP $Target:$Port accepts a connection within the timeout, $null when no target.
function Test-Tcp([string]$Target, [int]$Port) {
    if (-not $Target) { return $null }
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $ok = $client.ConnectAsync($Target, $Port).Wait($timeout * 1000) -and $client.Connected
        return [bool]$ok
    } catch { return $false } finally { $client.Close() }
}

# DHCP on the interface of the lowest-metric default route.
$route = Get-NetRoute -DestinationPrefix '0.0.0.0/0' | Sort-Object { $_.RouteMetric + $_.InterfaceMetric } |
    Select-Object -First 1
$dhcp = $null
$alias = $null
if ($route) {
    $ipif = Get-NetIPInterface -InterfaceIndex $route.InterfaceIndex -AddressFamily IPv4
    if ($ipif) { $dhcp = ($ipif.Dhcp -eq 'Enabled'); $alias = $ipif.InterfaceAlias }
}

# WinHTTP proxy (the one the agent and the snapshot extension use): "" for direct access.
$proxy = ''
$winhttp = (netsh winhttp show proxy) -join "`n"
if ($winhttp -match 'Proxy Server\(s\)\s*:\s*(\S+)') { $proxy = $Matches[1] }

# USEVSSCOPYBACKUP: the registry text as written ("TRUE"); $false when the value is not set.
$vss = (Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\BCDRAGENT' -Name USEVSSCOPYBACKUP).USEVSSCOPYBACKUP
if ($null -eq $vss) { $vss = $false }

# IaaSVmProvider start type (Automatic, Manual, Disabled); $null when the service is not installed.
$provider = Get-Service -Name IaaSVmProvider
$providerStart = if ($provider) { [string]$provider.StartType } else { $null }

# The guest agent's service and the file version of the binary it runs.
$agent = Get-CimInstance Win32_Service -Filter "Name='WindowsAzureGuestAgent'"
$agentState = if ($agent) { [string]$agent.State } else { $null }
$agentVersion = $null
if ($agent -and $agent.PathName) {
    $exe = $agent.PathName.Trim('"').Split('"')[0]
    $agentVersion = (Get-Item -LiteralPath $exe).VersionInfo.FileVersion
}

$vmId = $env:BP_VM_ID
if (-not $vmId) {
    $vmId = Invoke-RestMethod -Headers @{ Metadata = 'true' } -TimeoutSec 2 -Uri `
        'http://169.254.169.254/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text'
}
$wireHost = if ($env:BP_WIRESERVER_HOST) { $env:BP_WIRESERVER_HOST } else { '168.63.129.16' }
$wirePort = if ($env:BP_WIRESERVER_PORT) { [int]$env:BP_WIRESERVER_PORT } else { 80 }
$storagePort = if ($env:BP_STORAGE_PORT) { [int]$env:BP_STORAGE_PORT } else { 443 }

[ordered]@{
    probe                 = 'backup-preflight/1'
    os                    = 'Windows'
    vmId                  = $vmId
    collectedAt           = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
    dhcpEnabled           = $dhcp
    dhcpSource            = 'Get-NetIPInterface'
    defaultRouteInterface = $alias
    httpProxy             = $proxy
    useVssCopyBackup      = $vss
    iaasVmProviderService = $providerStart
    agentServiceState     = $agentState
    agentVersion          = $agentVersion
    wireServerReachable   = Test-Tcp $wireHost $wirePort
    storageReachable      = Test-Tcp $env:BP_STORAGE_HOST $storagePort
    storageEndpoint       = if ($env:BP_STORAGE_HOST) { "$($env:BP_STORAGE_HOST):$storagePort" } else { $null }
} | ConvertTo-Json -Compress
