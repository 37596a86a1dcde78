"""Resource Graph rows for what many VMs share: VNets, NSGs, route tables, NAT, vaults, policies, sets.

Why: the scanner joins each VM to these by id, so they are rendered once per site (or set) and
carry the rule, route and schedule shapes the outbound and schedule checks must read.
"""

from __future__ import annotations

import uuid

from backup_preflight.demo.arm import Row, arg_row, upper_tail
from backup_preflight.demo.plan import Estate, Site, VmPlan
from backup_preflight.demo.scenarios import (
    NIC_NSGS,
    PAIRED_REGIONS,
    REGIONS,
    ROUTE_TABLES,
    SERVICE_ENDPOINTS,
    SUBNET_INDEX,
    SUBNET_NSGS,
    SUBNETS,
    SUBSCRIPTION_NAMES,
    PolicySpec,
)

#: Spokes in this region have a VPN gateway with BGP: their network passes state the assumption that no
#: on-premises default route is learnt (assumeNoOnPremisesDefaultRoute), which no snapshot can show.
GATEWAY_REGION = "northeurope"


def site_rows(estate: Estate, site: Site) -> list[Row]:
    rows = [_vnet_row(estate, site)]
    if site.region == GATEWAY_REGION:
        rows.extend(_gateway_rows(estate, site))
    rows.extend(_nsg_row(estate, site, kind) for kind in SUBNET_NSGS + NIC_NSGS)
    rows.extend(_route_table_row(estate, site, kind) for kind in ROUTE_TABLES)
    nat_pip = site.network_id("publicIPAddresses", f"pip-ng-{site.region}-egress")
    rows.append(arg_row(estate, site.nat_id, site.nat_id.rsplit("/", 1)[1], "microsoft.network/natgateways",
                        site.sub, site.net_rg, site.region, {
                            "provisioningState": "Succeeded", "idleTimeoutInMinutes": 4,
                            "publicIpAddresses": [{"id": nat_pip}],
                            "subnets": [{"id": site.subnet_id("private-nat")}]}, sku={"name": "Standard"}))
    rows.append(public_ip_row(estate, site, nat_pip, f"52.{site.octet}.0.10", {"id": site.nat_id}, "natGateway"))
    rows.extend(arg_row(estate, vault, vault.rsplit("/", 1)[1], "microsoft.recoveryservices/vaults",
                        site.sub, site.backup_rg, site.region, {"provisioningState": "Succeeded"},
                        sku={"name": "RS0", "tier": "Standard"}) for vault in (site.vault_id, site.old_vault_id))
    return rows


def container_rows(estate: Estate) -> list[Row]:
    """resourcecontainers: each subscription (its display name is the row's `name`) and each resource
    group, with tags; every third workload group is untagged, as in real estates."""
    rows = []
    for k, sub in enumerate(estate.subscriptions):
        name = SUBSCRIPTION_NAMES[k] if k < len(SUBSCRIPTION_NAMES) else f"Contoso Landing Zone {k + 1:03d}"
        rows.append(arg_row(estate, f"/subscriptions/{sub}", name, "microsoft.resources/subscriptions", sub, "", "", {
            "managedByTenants": [], "state": "Enabled",
            "managementGroupAncestorsChain": [{"displayName": "Contoso", "name": "contoso"},
                                              {"displayName": "Tenant Root Group", "name": estate.tenant}],
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "spendingLimit": "Off",
                                     "quotaId": "EnterpriseAgreement_2014-09-01"}},
            tags={"costCenter": f"CC-{4100 + k}", "landingZone": "corp"}))
    groups: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for site in estate.sites:
        for rg in (site.net_rg, site.backup_rg):
            groups.setdefault((site.sub, rg), (site.region, {"workload": "Platform"}))
    for vm in estate.vms:
        workload, ordinal = vm.rg.split("-")[1], int(vm.rg.rsplit("-", 1)[1])
        groups.setdefault((vm.site.sub, vm.rg), (vm.site.region, {} if ordinal % 3 == 0 else {
            "workload": workload, "owner": f"{workload.lower()}-team@contoso.com"}))
    for (sub, rg), (region, tags) in groups.items():
        rows.append(arg_row(estate, f"/subscriptions/{sub}/resourceGroups/{rg}", rg,
                            "microsoft.resources/subscriptions/resourcegroups", sub, rg, region,
                            {"provisioningState": "Succeeded"}, tags=tags))
    return rows


def _vnet_row(estate: Estate, site: Site) -> Row:
    subnets = []
    for kind, (name, nsg, route_table, default_outbound, nat) in SUBNETS.items():
        props: Row = {"provisioningState": "Succeeded",
                      "addressPrefix": f"10.{site.octet}.{SUBNET_INDEX[kind] * 16}.0/20"}
        if nsg:
            props["networkSecurityGroup"] = {"id": site.nsg_id(nsg)}
        if route_table:
            props["routeTable"] = {"id": site.route_table_id(route_table)}
        if nat:
            props["natGateway"] = {"id": site.nat_id}
        if default_outbound is not None:
            props["defaultOutboundAccess"] = default_outbound
        if kind in SERVICE_ENDPOINTS:
            props["serviceEndpoints"] = [{"provisioningState": "Succeeded", "service": service, "locations": [
                site.region, PAIRED_REGIONS.get(site.region, site.region)]} for service in SERVICE_ENDPOINTS[kind]]
        props["privateEndpointNetworkPolicies"] = "Disabled"
        props["privateLinkServiceNetworkPolicies"] = "Enabled"
        subnets.append({"name": name, "id": site.subnet_id(kind), "properties": props,
                        "type": "Microsoft.Network/virtualNetworks/subnets"})
    if site.region == GATEWAY_REGION:
        subnets.append({"name": "GatewaySubnet", "id": f"{site.vnet_id}/subnets/GatewaySubnet",
                        "type": "Microsoft.Network/virtualNetworks/subnets", "properties": {
                            "provisioningState": "Succeeded", "addressPrefix": f"10.{site.octet}.255.0/27",
                            "ipConfigurations": [{"id": f"{_gateway_id(site)}/ipConfigurations/default"}]}})
    return arg_row(estate, site.vnet_id, site.vnet_name, "microsoft.network/virtualnetworks", site.sub,
                   site.net_rg, site.region, {
                       "provisioningState": "Succeeded", "resourceGuid": _name_guid(site.vnet_id),
                       "addressSpace": {"addressPrefixes": [f"10.{site.octet}.0.0/16"]},
                       "subnets": subnets, "virtualNetworkPeerings": [], "enableDdosProtection": False},
                   tags={"env": "prod", "owner": "network@contoso.com"})


def _gateway_id(site: Site) -> str:
    return site.network_id("virtualNetworkGateways", f"vgw-{site.region}")


def _gateway_rows(estate: Estate, site: Site) -> list[Row]:
    """A route-based VPN gateway with BGP, as VirtualNetworkGatewayGet.json shows it, and its public IP."""
    gateway_id, gateway_subnet = _gateway_id(site), f"{site.vnet_id}/subnets/GatewaySubnet"
    pip_id = site.network_id("publicIPAddresses", f"pip-vgw-{site.region}")
    gateway = arg_row(estate, gateway_id, gateway_id.rsplit("/", 1)[1], "microsoft.network/virtualnetworkgateways",
                      site.sub, site.net_rg, site.region, {
                          "provisioningState": "Succeeded", "gatewayType": "Vpn", "vpnType": "RouteBased",
                          "enableBgp": True, "activeActive": False, "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
                          "bgpSettings": {"asn": 65515, "peerWeight": 0},
                          "ipConfigurations": [{"name": "default", "id": f"{gateway_id}/ipConfigurations/default",
                                                "properties": {"privateIPAllocationMethod": "Dynamic",
                                                               "subnet": {"id": gateway_subnet},
                                                               "publicIPAddress": {"id": pip_id}}}]})
    return [gateway, public_ip_row(estate, site, pip_id, f"52.{site.octet}.0.20",
                                   {"id": f"{gateway_id}/ipConfigurations/default"}, "ipConfiguration")]


def _nsg_row(estate: Estate, site: Site, kind: str) -> Row:
    nsg_id = site.nsg_id(kind)
    return arg_row(estate, nsg_id, nsg_id.rsplit("/", 1)[1], "microsoft.network/networksecuritygroups",
                   site.sub, site.net_rg, site.region, {
                       "provisioningState": "Succeeded", "resourceGuid": _name_guid(nsg_id),
                       "securityRules": _custom_rules(site, kind, nsg_id),
                       "defaultSecurityRules": _default_rules(nsg_id)})


def _custom_rules(site: Site, kind: str, nsg_id: str) -> list[Row]:
    """Each NSG kind's own rules; singular and plural port/prefix fields both occur, as in real NSGs."""
    bastion = _rule(nsg_id, "Allow-Bastion-SSH-RDP", 200, "Inbound", "Allow", ["22", "3389"], "VirtualNetwork",
                    source="10.255.1.0/26")
    vnet_out = _rule(nsg_id, "Allow-VNet-Outbound", 110, "Outbound", "Allow", "*", "VirtualNetwork", "*")
    rules = {
        "default": [bastion],
        "restricted": [bastion, vnet_out,
                       _rule(nsg_id, "Deny-Internet-Outbound", 4000, "Outbound", "Deny", "*", "Internet", "*")],
        "standard": [_rule(nsg_id, "Allow-HTTPS-Inbound", 300, "Inbound", "Allow", "443", "VirtualNetwork")],
        "deny-storage": [_rule(nsg_id, "Deny-Storage-HTTPS", 150, "Outbound", "Deny", "443", "Storage")],
        "deny-plural": [vnet_out, _rule(nsg_id, "Deny-Public-Web", 200, "Outbound", "Deny", ["80", "443", "8443"],
                                        ["0.0.0.0/1", "128.0.0.0/1"])],
        "allow-web": [_rule(nsg_id, "Allow-HTTPS-Internet", 100, "Outbound", "Allow", "443", "Internet")],
        "storage-first": [
            _rule(nsg_id, f"Allow-Storage-{REGIONS[site.region]}", 100, "Outbound", "Allow", ["443", "8443"],
                  f"Storage.{REGIONS[site.region]}"),
            vnet_out,
            _rule(nsg_id, "Deny-All-Outbound", 4000, "Outbound", "Deny", "*", "*", "*")],
        "allow-private": [_rule(nsg_id, "Allow-Private-HTTPS", 100, "Outbound", "Allow", ["443", "8443"], "10.0.0.0/8"),
                          _rule(nsg_id, "Deny-Internet-Outbound", 4000, "Outbound", "Deny", "*", "Internet", "*")],
    }
    return rules[kind]


def _rule(nsg_id: str, name: str, priority: int, direction: str, access: str, ports: str | list[str],
          destination: str | list[str], protocol: str = "Tcp", source: str = "*") -> Row:
    """A custom security rule; a list value goes to the plural field, as the API returns it."""
    props: Row = {"provisioningState": "Succeeded", "protocol": protocol, "sourcePortRange": "*"}
    if isinstance(ports, list):
        props["destinationPortRanges"] = ports
    else:
        props["destinationPortRange"] = ports
    props["sourceAddressPrefix"] = source
    if isinstance(destination, list):
        props["destinationAddressPrefixes"] = destination
    else:
        props["destinationAddressPrefix"] = destination
    props.update(access=access, priority=priority, direction=direction)
    return {"name": name, "id": f"{nsg_id}/securityRules/{name}", "properties": props}


_DEFAULT_RULES = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork",
     "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer",
     "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork",
     "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow",
     65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)


def _default_rules(nsg_id: str) -> list[Row]:
    """The six platform rules, exactly as NetworkSecurityGroupGet.json returns them."""
    return [{"name": name, "id": f"{nsg_id}/defaultSecurityRules/{name}", "properties": {
        "provisioningState": "Succeeded", "description": description, "protocol": "*", "sourcePortRange": "*",
        "destinationPortRange": "*", "sourceAddressPrefix": source, "destinationAddressPrefix": destination,
        "access": access, "priority": priority, "direction": direction}}
        for name, description, source, destination, access, priority, direction in _DEFAULT_RULES]


def _route_table_row(estate: Estate, site: Site, kind: str) -> Row:
    rt_id = site.route_table_id(kind)
    onprem = ("to-onprem", "192.168.0.0/16", "VirtualNetworkGateway", None)
    routes = {"onprem": [onprem],
              "blackhole": [("default-blackhole", "0.0.0.0/0", "None", None)],
              "firewall": [("default-to-firewall", "0.0.0.0/0", "VirtualAppliance", "10.255.0.4"), onprem],
              "halves": [("low-half-blackhole", "0.0.0.0/1", "None", None),
                         ("high-half-blackhole", "128.0.0.0/1", "None", None)]}[kind]
    rendered = []
    for name, prefix, hop, hop_ip in routes:
        props: Row = {"provisioningState": "Succeeded", "addressPrefix": prefix, "nextHopType": hop}
        if hop_ip:
            props["nextHopIpAddress"] = hop_ip
        rendered.append({"name": name, "id": f"{rt_id}/routes/{name}", "properties": props})
    subnets = [{"id": site.subnet_id(k)} for k, spec in SUBNETS.items() if spec[2] == kind]
    return arg_row(estate, rt_id, rt_id.rsplit("/", 1)[1], "microsoft.network/routetables", site.sub,
                   site.net_rg, site.region, {"provisioningState": "Succeeded", "disableBgpRoutePropagation": False,
                                              "routes": rendered, "subnets": subnets})


def public_ip_row(estate: Estate, site: Site, pip_id: str, address: str, owner: Row, owner_key: str) -> Row:
    return arg_row(estate, pip_id, pip_id.rsplit("/", 1)[1], "microsoft.network/publicipaddresses", site.sub,
                   pip_id.split("/")[4], site.region, {
                       "provisioningState": "Succeeded", "ipAddress": address, "publicIPAddressVersion": "IPv4",
                       "publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 4, owner_key: owner},
                   sku={"name": "Standard", "tier": "Regional"})


def policy_row(estate: Estate, site: Site, spec: PolicySpec, items: int) -> Row:
    """V1 and V2 (daily, weekly, hourly) policies; odd subscriptions spell the id `/Subscriptions/` as ARM does."""
    run_time = f"2024-01-01T{spec.hour:02d}:{spec.minute:02d}:00Z"
    frequency = "Weekly" if spec.days else "Daily"
    if spec.version == "V2-hourly":
        schedule: Row = {"schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": "Hourly",
                         "hourlySchedule": {"interval": 4, "scheduleWindowStartTime": run_time,
                                            "scheduleWindowDuration": 16}}
    elif spec.version == "V2":
        times: Row = {"scheduleRunTimes": [run_time]}
        schedule = {"schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": frequency,
                    **({"weeklySchedule": {"scheduleRunDays": list(spec.days), **times}} if spec.days
                       else {"dailySchedule": times})}
    else:
        schedule = {"schedulePolicyType": "SimpleSchedulePolicy", "scheduleRunFrequency": frequency,
                    "scheduleRunTimes": [run_time], "scheduleWeeklyFrequency": 0,
                    **({"scheduleRunDays": list(spec.days)} if spec.days else {})}
    # a weekly schedule keeps weekly recovery points, a daily one daily points
    retention = ({"weeklySchedule": {"daysOfTheWeek": list(spec.days), "retentionTimes": [run_time],
                                     "retentionDuration": {"count": 12, "durationType": "Weeks"}}} if spec.days
                 else {"dailySchedule": {"retentionTimes": [run_time],
                                         "retentionDuration": {"count": 30, "durationType": "Days"}}})
    props: Row = {"backupManagementType": "AzureIaasVM", "protectedItemsCount": items,
                  "schedulePolicy": schedule,
                  "retentionPolicy": {"retentionPolicyType": "LongTermRetentionPolicy", **retention},
                  "instantRpRetentionRangeInDays": 2, "timeZone": spec.time_zone}
    if spec.version.startswith("V2"):
        # Enhanced, application/file-system consistent (the default): an OnlyCrashConsistent one is agentless,
        # and the in-guest policies would not apply to its VMs
        props.update(policyType="V2", instantRpRetentionRangeInDays=7)
    elif spec.version == "V1-explicit":
        props["policyType"] = "V1"
    rid = site.policy_id(spec.name)
    if site.sub_index % 2:
        rid = "/Subscriptions/" + rid[len("/subscriptions/"):]
    return arg_row(estate, rid, spec.name, "microsoft.recoveryservices/vaults/backuppolicies", site.sub,
                   site.backup_rg, site.region, props)


def avset_row(estate: Estate, avset_id: str, members: list[VmPlan]) -> Row:
    """ARM lists members in upper case (`.../VIRTUALMACHINES/VM-APP-001`) — one more casing to join."""
    first = members[0]
    return arg_row(estate, avset_id, first.avset or "", "microsoft.compute/availabilitysets", first.site.sub,
                   first.rg, first.site.region, {
                       "platformFaultDomainCount": 2, "platformUpdateDomainCount": 5,
                       "virtualMachines": [{"id": upper_tail(vm.id)} for vm in members]},
                   sku={"name": "Aligned"})


def _name_guid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
