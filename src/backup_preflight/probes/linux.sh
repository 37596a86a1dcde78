#!/bin/sh
# backup-preflight in-guest probe for Linux (POSIX sh, read-only: it changes nothing).
#
# Prints ONE JSON object with the facts Azure Backup's snapshot step depends on inside the guest
# and that Azure's control plane cannot see: DHCP on the interface that carries the default route,
# the HTTP proxy, the VM agent's service state and version, and two observed TCP connects (the
# wire server 168.63.129.16:80, and a Storage endpoint on 443). Run it as root (Run Command,
# Ansible, cron ...); `backup-preflight scan --snapshot OUTPUT.json` reads what it prints.
#
# Environment overrides (the Run Command runner sets them; tests point the connects at loopback):
#   BP_VM_ID            ARM id of the VM (default: asked from the instance metadata service)
#   BP_STORAGE_HOST     Storage endpoint to connect to on BP_STORAGE_PORT (default: none, not tested)
#   BP_STORAGE_PORT     default 443
#   BP_WIRESERVER_HOST  default 168.63.129.16;  BP_WIRESERVER_PORT  default 80
#   BP_CONNECT_TIMEOUT  seconds per connect, default 5
#   BP_ROOT             prefix for the configuration files read (default: none, i.e. /)
#   BP_IMDS_URL         instance metadata URL of the VM's resource id

root=${BP_ROOT:-}
timeout_s=${BP_CONNECT_TIMEOUT:-5}

# JSON string literal of $1: backslashes and quotes escaped, control characters dropped.
json_str() {
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# json_str, or null when $1 is empty (not found, not reported).
json_opt() {
    if [ -n "$1" ]; then json_str "$1"; else printf null; fi
}

# "true" when TCP $1:$2 accepts a connection, "false" when not, "null" when nothing here can try.
can_connect() {
    [ -n "$1" ] || { echo null; return; }
    if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
        if timeout "$timeout_s" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; then
            echo true; else echo false; fi
    elif command -v nc >/dev/null 2>&1; then
        if nc -z -w "$timeout_s" "$1" "$2" >/dev/null 2>&1; then echo true; else echo false; fi
    else
        echo null
    fi
}

# The interface of the default route ("default via X dev IFACE ...").
iface=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')

# DHCP: the kernel marks addresses with a lease lifetime "dynamic"; an address without it may
# still come from an old dhclient, so the configuration decides then. dhcp_from says which source.
dhcp=null
dhcp_from=""
if [ -n "$iface" ]; then
    addr=$(ip -4 addr show dev "$iface" 2>/dev/null | grep ' inet ')
    if printf '%s\n' "$addr" | grep -q ' dynamic'; then
        dhcp=true; dhcp_from="ip -4 addr: dynamic"
    fi
fi
# Configuration fallbacks, first match wins: value true/false from a file that configures IPv4.
config_dhcp() {
    # netplan (Ubuntu): dhcp4: true|yes, else a static addresses: list.
    for f in "$root"/etc/netplan/*.yaml "$root"/etc/netplan/*.yml; do
        [ -f "$f" ] || continue
        text=$(cat "$f" 2>/dev/null)
        if printf '%s\n' "$text" | grep -Eq '^[[:space:]]*dhcp4:[[:space:]]*(true|yes|on)'; then
            echo "true netplan $f"; return; fi
        if printf '%s\n' "$text" | grep -Eq '^[[:space:]]*(dhcp4:[[:space:]]*(false|no|off)|addresses:)'; then
            echo "false netplan $f"; return; fi
    done
    # NetworkManager keyfiles: [ipv4] method=auto (DHCP) or manual.
    for f in "$root"/etc/NetworkManager/system-connections/*; do
        [ -f "$f" ] || continue
        method=$(awk -F= '/^\[/{s=$0} s=="[ipv4]" && $1=="method"{print $2; exit}' "$f" 2>/dev/null)
        case $method in
            auto) echo "true NetworkManager $f"; return ;;
            manual) echo "false NetworkManager $f"; return ;;
        esac
    done
    # ifcfg (RHEL, SUSE): BOOTPROTO=dhcp, or static/none.
    for f in "$root/etc/sysconfig/network-scripts/ifcfg-$iface" "$root/etc/sysconfig/network/ifcfg-$iface"; do
        [ -f "$f" ] || continue
        proto=$(sed -n 's/^BOOTPROTO=["'\'']\{0,1\}\([a-zA-Z]*\).*/\1/p' "$f" | tr 'A-Z' 'a-z' | tail -n 1)
        case $proto in
            dhcp*) echo "true ifcfg $f"; return ;;
            static|none) echo "false ifcfg $f"; return ;;
        esac
    done
    # systemd-networkd: DHCP=yes|ipv4|true, else a static Address=.
    for f in "$root"/etc/systemd/network/*.network "$root"/run/systemd/network/*.network; do
        [ -f "$f" ] || continue
        if grep -Eiq '^DHCP=(yes|ipv4|true)' "$f"; then echo "true systemd-networkd $f"; return; fi
        if grep -Eq '^Address=' "$f"; then echo "false systemd-networkd $f"; return; fi
    done
    # ifupdown (Debian): iface IFACE inet dhcp|static.
    f="$root/etc/network/interfaces"
    if [ -f "$f" ]; then
        mode=$(awk -v i="$iface" '$1=="iface" && $2==i && $3=="inet"{print $4; exit}' "$f")
        case $mode in
            dhcp) echo "true ifupdown $f"; return ;;
            static) echo "false ifupdown $f"; return ;;
        esac
    fi
}
if [ "$dhcp" = null ] && [ -n "$iface" ]; then
    found=$(config_dhcp)
    if [ -n "$found" ]; then
        dhcp=${found%% *}; dhcp_from=${found#* }
    fi
fi

# Proxy: the agent's own setting in /etc/waagent.conf, else the usual environment variables.
proxy=""
conf="$root/etc/waagent.conf"
if [ -f "$conf" ]; then
    host=$(sed -n 's/^HttpProxy\.Host=\([^[:space:]#]*\).*/\1/p' "$conf" | tail -n 1)
    port=$(sed -n 's/^HttpProxy\.Port=\([^[:space:]#]*\).*/\1/p' "$conf" | tail -n 1)
    if [ -n "$host" ] && [ "$host" != None ]; then proxy="$host${port:+:$port}"; fi
fi
[ -n "$proxy" ] || proxy=${https_proxy:-${HTTPS_PROXY:-${http_proxy:-${HTTP_PROXY:-}}}}

# The Linux agent (walinuxagent on Debian/Ubuntu, waagent elsewhere): service state and the
# version that runs goal states ("Goal state agent: X"), else the installed one.
agent_state=""
for unit in walinuxagent waagent; do
    if command -v systemctl >/dev/null 2>&1; then
        state=$(systemctl is-active "$unit" 2>/dev/null)
        if [ -n "$state" ] && systemctl cat "$unit" >/dev/null 2>&1; then agent_state=$state; break; fi
    fi
done
agent_version=""
if command -v waagent >/dev/null 2>&1; then
    text=$(waagent --version 2>/dev/null)
    agent_version=$(printf '%s\n' "$text" | sed -n 's/^Goal state agent: *\([0-9.]*\).*/\1/p' | head -n 1)
    [ -n "$agent_version" ] || agent_version=$(printf '%s\n' "$text" | sed -n 's/^WALinuxAgent-\([0-9.]*\).*/\1/p' | head -n 1)
fi

# Which VM this is: given by the runner, else from the instance metadata service.
vm_id=${BP_VM_ID:-}
if [ -z "$vm_id" ] && command -v curl >/dev/null 2>&1; then
    imds=${BP_IMDS_URL:-http://169.254.169.254/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text}
    vm_id=$(curl -s --max-time 2 -H Metadata:true "$imds" 2>/dev/null)
fi

wire=$(can_connect "${BP_WIRESERVER_HOST:-168.63.129.16}" "${BP_WIRESERVER_PORT:-80}")
storage=$(can_connect "${BP_STORAGE_HOST:-}" "${BP_STORAGE_PORT:-443}")

printf '{"probe":"backup-preflight/1","os":"Linux","vmId":%s,"collectedAt":%s,' \
    "$(json_opt "$vm_id")" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
printf '"dhcpEnabled":%s,"dhcpSource":%s,"defaultRouteInterface":%s,"httpProxy":%s,' \
    "$dhcp" "$(json_opt "$dhcp_from")" "$(json_opt "$iface")" "$(json_str "$proxy")"
printf '"useVssCopyBackup":null,"iaasVmProviderService":null,"agentServiceState":%s,"agentVersion":%s,' \
    "$(json_opt "$agent_state")" "$(json_opt "$agent_version")"
printf '"wireServerReachable":%s,"storageReachable":%s,"storageEndpoint":%s}\n' \
    "$wire" "$storage" "$(json_opt "${BP_STORAGE_HOST:+${BP_STORAGE_HOST}:${BP_STORAGE_PORT:-443}}")"
