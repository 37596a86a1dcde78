"""What the snapshot would cost in memory and time decoded into typed records instead of dicts.

    python benchmarks/typed_rows_probe.py --snapshot /tmp/bp-bench-100000.json

Issue #14's path to 1,000,000 VMs is to decode rows into msgspec structs that keep only what the
estate reads, instead of a dict per JSON object. This probe sizes that path before the estate is
rewritten for it: in fresh interpreters (scan_bench.measure: peak RSS from `/usr/bin/time`, the
collector paused as in the pipeline), it decodes the same file
(1) as today, into dicts, and (2) into structs declaring the fields the estate reads from each row
type (leaves typed `Any`, so a value of the wrong type would still reach the estate's typed reads and
become an unknown with its reason, as now). The structs are a sketch of the future records, not
used by the scan; docs/performance.md gives the figures and what they mean for the design.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scan_bench import measure

DICTS = """
import msgspec
data = open(PATH, 'rb').read()
doc = msgspec.json.decode(data)
del data
"""

TYPED = """
from typing import Any
import msgspec
from msgspec import Struct

class S(Struct, gc=False, omit_defaults=True):
    pass

class Ref(S):
    id: Any = None

class OsDisk(S):
    osType: Any = None
    managedDisk: Any = None

class Storage(S):
    osDisk: OsDisk | None = None

class Config(S):
    provisionVMAgent: Any = None

class OsProfile(S):
    computerName: Any = None
    linuxConfiguration: Config | None = None
    windowsConfiguration: Config | None = None

class NicRefProps(S):
    primary: Any = None

class NicRef(S):
    id: Any = None
    properties: NicRefProps | None = None

class NetProfile(S):
    networkInterfaces: list[NicRef] | None = None

class IpProps(S):
    primary: Any = None
    subnet: Ref | None = None
    publicIPAddress: Any = None
    loadBalancerBackendAddressPools: Any = None

class IpConfig(S):
    id: Any = None
    properties: IpProps | None = None

class Props(S):
    # virtual machines
    provisioningState: Any = None
    hardwareProfile: Any = None
    storageProfile: Storage | None = None
    osProfile: OsProfile | None = None
    networkProfile: NetProfile | None = None
    availabilitySet: Ref | None = None
    extended: Any = None
    instanceView: Any = None
    # network interfaces and the network
    ipConfigurations: list[IpConfig] | None = None
    networkSecurityGroup: Ref | None = None
    virtualMachine: Ref | None = None
    securityRules: Any = None
    defaultSecurityRules: Any = None
    subnets: Any = None
    addressSpace: Any = None
    virtualNetworkPeerings: Any = None
    routes: Any = None
    disableBgpRoutePropagation: Any = None
    # extensions, SQL VMs, guest configuration
    publisher: Any = None
    type: Any = None
    typeHandlerVersion: Any = None
    virtualMachineResourceId: Any = None
    sqlServerLicenseType: Any = None
    targetResourceId: Any = None
    complianceStatus: Any = None
    lastComplianceStatusChecked: Any = None
    guestConfiguration: Any = None
    # protected items, backup policies and jobs
    backupManagementType: Any = None
    sourceResourceId: Any = None
    virtualMachineId: Any = None
    policyId: Any = None
    policyName: Any = None
    protectionState: Any = None
    protectionStatus: Any = None
    currentProtectionState: Any = None
    healthStatus: Any = None
    lastBackupStatus: Any = None
    lastBackupTime: Any = None
    isScheduledForDeferredDelete: Any = None
    friendlyName: Any = None
    containerName: Any = None
    schedulePolicy: Any = None
    policyType: Any = None
    timeZone: Any = None
    jobType: Any = None
    status: Any = None
    startTime: Any = None
    endTime: Any = None
    dataSourceId: Any = None
    entityFriendlyName: Any = None
    errorDetails: Any = None
    displayName: Any = None
    state: Any = None

class Row(S):
    id: Any = None
    type: Any = None
    name: Any = None
    location: Any = None
    resourceGroup: Any = None
    subscriptionId: Any = None
    tags: Any = None
    properties: Props | None = None

class Status(S):
    code: Any = None
    displayStatus: Any = None
    message: Any = None
    level: Any = None
    time: Any = None

class Handler(S):
    type: Any = None
    typeHandlerVersion: Any = None
    status: Status | None = None

class Agent(S):
    vmAgentVersion: Any = None
    statuses: list[Status] | None = None
    extensionHandlers: list[Handler] | None = None

class Extension(S):
    name: Any = None
    type: Any = None
    typeHandlerVersion: Any = None
    statuses: list[Status] | None = None
    substatuses: list[Status] | None = None

class View(S):
    computerName: Any = None
    vmAgent: Agent | None = None
    extensions: list[Extension] | None = None
    statuses: list[Status] | None = None

class ViewRow(S):
    id: Any = None
    instanceView: View | None = None
    properties: Any = None

class Point(S):
    timeStamp: Any = None
    average: Any = None
    maximum: Any = None

class MetricRow(S):
    id: Any = None
    name: Any = None
    data: list[Point] | None = None

class FactRow(S):
    id: Any = None
    collectedAt: Any = None
    facts: Any = None

class Tables(S):
    resources: list[Row] = []
    recoveryservicesresources: list[Row] = []
    guestconfigurationresources: list[Row] = []
    resourcecontainers: list[Row] = []
    instanceviews: list[ViewRow] = []
    guestfacts: list[FactRow] = []
    metrics: list[MetricRow] = []

class Doc(S):
    tables: Tables

data = open(PATH, 'rb').read()
doc = msgspec.json.decode(data, type=Doc)
del data
"""

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True, help="a plain-JSON snapshot file")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = args.snapshot.stat().st_size / 1e6
    print(f"{args.snapshot}: {size:,.0f} MB of JSON")
    for name, body in (("dicts (today)", DICTS), ("typed structs (sketch)", TYPED)):
        seconds, peak = min(measure(body, args.snapshot) for _ in range(args.rounds))
        print(f"{name:24} {seconds:6.1f} s  peak {peak:.2f} GB (file bytes included: {size / 1e3:.2f} GB)",
              flush=True)


if __name__ == "__main__":
    main()
