"""The shipped Linux probe, run for real under `sh` with its commands stubbed on PATH.

`ip`, `systemctl`, `waagent` and the connect commands (`timeout` running `bash /dev/tcp`, or
`nc`) are small shell stubs, so each DHCP / static variant is a real run of the script and no
connect leaves the machine; the configuration files live under BP_ROOT. One run is unstubbed,
its connects pointed at loopback through the documented environment overrides.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import probes

KEYS = {"probe", "os", "vmId", "collectedAt", "dhcpEnabled", "dhcpSource", "defaultRouteInterface", "httpProxy",
        "useVssCopyBackup", "iaasVmProviderService", "agentServiceState", "agentVersion", "wireServerReachable",
        "storageReachable", "storageEndpoint"}
VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
STATIC_ADDR = "    inet 10.1.0.4/24 brd 10.1.0.255 scope global eth0\n       valid_lft forever preferred_lft forever"
DYNAMIC_ADDR = ("    inet 10.1.0.4/24 metric 100 brd 10.1.0.255 scope global dynamic eth0\n"
                "       valid_lft 86000sec preferred_lft 86000sec")


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def ip_stub(bin_dir: Path, route: str = "default via 10.1.0.1 dev eth0 proto dhcp src 10.1.0.4 metric 100",
            addr: str = STATIC_ADDR) -> None:
    (bin_dir / "route.txt").write_text(route + "\n")
    (bin_dir / "addr.txt").write_text(f"2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n{addr}\n")
    stub(bin_dir, "ip", f'case "$*" in *route*) cat "{bin_dir}/route.txt" ;; *"addr show dev eth0"*) '
                        f'cat "{bin_dir}/addr.txt" ;; esac')


def connect_stub(bin_dir: Path, reachable: tuple[str, ...]) -> Path:
    """`timeout N bash -c SCRIPT HOST PORT`: logs HOST:PORT, succeeds for the hosts in `reachable`."""
    log = bin_dir / "connects.log"
    hosts = "|".join(reachable) or "__none__"
    stub(bin_dir, "timeout", f'echo "$5:$6" >> "{log}"\ncase "$5" in {hosts}) exit 0 ;; *) exit 1 ;; esac')
    return log


def run_probe(env: dict[str, str], bin_dir: Path | None = None, path: str | None = None) -> dict[str, Any]:
    base = {"PATH": path or f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "BP_VM_ID": VM, "LC_ALL": "C"}
    done = subprocess.run(["sh", "-c", probes.script("linux")], capture_output=True, text=True,
                          env={**base, **env}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # exactly one JSON object, nothing else on stdout
    doc = json.loads(lines[0])
    assert set(doc) == KEYS
    return doc


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_dynamic_address_on_the_default_route_interface_is_dhcp(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir, addr=DYNAMIC_ADDR)
    connect_stub(bin_dir, ())
    write(root, "etc/netplan/50-cloud-init.yaml", "network:\n  ethernets:\n    eth0:\n      dhcp4: false\n")
    doc = run_probe({"BP_ROOT": str(root)}, bin_dir)
    # The kernel's flag wins over a configuration file: it is what the guest runs.
    assert (doc["dhcpEnabled"], doc["dhcpSource"], doc["defaultRouteInterface"]) == (
        True, "ip -4 addr: dynamic", "eth0")
    assert doc["vmId"] == VM and doc["probe"] == probes.MARKER and doc["os"] == "Linux"


NETPLAN_DHCP = ("network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      match:\n"
                "        driver: hv_netvsc\n")
NETPLAN_STATIC = ("network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: no\n      addresses: [10.1.0.4/24]\n"
                  "      routes:\n        - to: default\n          via: 10.1.0.1\n")


@pytest.mark.parametrize(("relative", "text", "expected", "source"), [
    ("etc/netplan/50-cloud-init.yaml", NETPLAN_DHCP, True, "netplan"),
    ("etc/netplan/01-static.yaml", NETPLAN_STATIC, False, "netplan"),
    ("etc/NetworkManager/system-connections/eth0.nmconnection",
     "[connection]\nid=eth0\n[ipv4]\nmethod=auto\n[ipv6]\nmethod=manual\n", True, "NetworkManager"),
    ("etc/NetworkManager/system-connections/eth0.nmconnection",
     "[connection]\nid=eth0\n[ipv6]\nmethod=auto\n[ipv4]\nmethod=manual\naddress1=10.1.0.4/24\n", False,
     "NetworkManager"),
    ("etc/sysconfig/network-scripts/ifcfg-eth0", 'DEVICE=eth0\nBOOTPROTO="dhcp"\nONBOOT=yes\n', True, "ifcfg"),
    ("etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='static'\nIPADDR=10.1.0.4\n", False, "ifcfg"),
    ("etc/systemd/network/10-eth0.network", "[Match]\nName=eth0\n[Network]\nDHCP=ipv4\n", True, "systemd-networkd"),
    ("etc/systemd/network/10-eth0.network", "[Match]\nName=eth0\n[Network]\nAddress=10.1.0.4/24\n", False,
     "systemd-networkd"),
    ("etc/network/interfaces", "auto lo\niface lo inet loopback\niface eth0 inet dhcp\n", True, "ifupdown"),
    ("etc/network/interfaces", "iface eth0 inet static\n  address 10.1.0.4\n", False, "ifupdown"),
])
def test_without_the_dynamic_flag_the_configuration_decides(bin_dir: Path, root: Path, relative: str, text: str,
                                                             expected: bool, source: str) -> None:
    ip_stub(bin_dir, addr=STATIC_ADDR)
    connect_stub(bin_dir, ())
    path = write(root, relative, text)
    doc = run_probe({"BP_ROOT": str(root)}, bin_dir)
    assert doc["dhcpEnabled"] is expected
    assert doc["dhcpSource"] == f"{source} {path}"


def test_no_configuration_and_no_dynamic_flag_is_not_reported(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir, addr=STATIC_ADDR)
    connect_stub(bin_dir, ())
    doc = run_probe({"BP_ROOT": str(root)}, bin_dir)
    assert doc["dhcpEnabled"] is None and doc["dhcpSource"] is None  # null: unknown, never guessed


def test_no_default_route_is_not_reported(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir, route="", addr=DYNAMIC_ADDR)
    connect_stub(bin_dir, ())
    write(root, "etc/netplan/50-cloud-init.yaml", NETPLAN_DHCP)
    doc = run_probe({"BP_ROOT": str(root)}, bin_dir)
    assert doc["dhcpEnabled"] is None and doc["defaultRouteInterface"] is None


def test_connects_go_to_the_wire_server_and_the_given_storage_host(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir)
    log = connect_stub(bin_dir, ("168.63.129.16",))
    doc = run_probe({"BP_ROOT": str(root), "BP_STORAGE_HOST": "st1.blob.core.windows.net"}, bin_dir)
    assert log.read_text().split() == ["168.63.129.16:80", "st1.blob.core.windows.net:443"]
    assert (doc["wireServerReachable"], doc["storageReachable"]) == (True, False)
    assert doc["storageEndpoint"] == "st1.blob.core.windows.net:443"


def test_without_a_storage_host_storage_is_not_tested(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir)
    log = connect_stub(bin_dir, ())
    doc = run_probe({"BP_ROOT": str(root)}, bin_dir)
    assert log.read_text().split() == ["168.63.129.16:80"]
    assert (doc["wireServerReachable"], doc["storageReachable"], doc["storageEndpoint"]) == (False, None, None)


def test_nc_is_used_where_bash_or_timeout_is_missing(tmp_path: Path, root: Path) -> None:
    """A minimal PATH (busybox-like images): only the tools the script needs, and `nc`."""
    bin_dir = tmp_path / "minimal"
    bin_dir.mkdir()
    for tool in ("sh", "awk", "sed", "grep", "tr", "cat", "date", "head", "tail"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    ip_stub(bin_dir)
    log = bin_dir / "nc.log"
    stub(bin_dir, "nc", f'echo "$*" >> "{log}"\n[ "$4" = 168.63.129.16 ]')
    doc = run_probe({"BP_ROOT": str(root), "BP_STORAGE_HOST": "st1.blob.core.windows.net"}, path=str(bin_dir))
    assert log.read_text().splitlines() == ["-z -w 5 168.63.129.16 80", "-z -w 5 st1.blob.core.windows.net 443"]
    assert (doc["wireServerReachable"], doc["storageReachable"]) == (True, False)


def test_proxy_and_agent_come_from_waagent(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir)
    connect_stub(bin_dir, ())
    write(root, "etc/waagent.conf", "Provisioning.Agent=auto\nHttpProxy.Host=10.0.0.9\nHttpProxy.Port=3128\n")
    stub(bin_dir, "systemctl", '[ "$2" = walinuxagent ] || exit 4\n[ "$1" = is-active ] && echo active\nexit 0')
    stub(bin_dir, "waagent", 'echo "WALinuxAgent-2.2.45 running on ubuntu 20.04"\necho "Python: 3.8.10"\n'
                             'echo "Goal state agent: 2.9.1.1"')
    doc = run_probe({"BP_ROOT": str(root), "https_proxy": "http://ignored:1"}, bin_dir)
    assert doc["httpProxy"] == "10.0.0.9:3128"  # the agent's own setting wins over the environment
    assert (doc["agentServiceState"], doc["agentVersion"]) == ("active", "2.9.1.1")


def test_text_from_the_guest_is_escaped_into_valid_json(bin_dir: Path, root: Path) -> None:
    ip_stub(bin_dir)
    connect_stub(bin_dir, ())
    proxy = 'http://u:p"w\\d@proxy:8080'
    doc = run_probe({"BP_ROOT": str(root), "https_proxy": proxy, "BP_VM_ID": VM + '"x'}, bin_dir)
    assert doc["httpProxy"] == proxy and doc["vmId"] == VM + '"x'


def test_unstubbed_run_prints_valid_json_and_connects_only_to_loopback() -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: a refused connect
        env = {"BP_WIRESERVER_HOST": "127.0.0.1", "BP_WIRESERVER_PORT": str(listening.getsockname()[1]),
               "BP_STORAGE_HOST": "127.0.0.1", "BP_STORAGE_PORT": str(closed.getsockname()[1]),
               "BP_CONNECT_TIMEOUT": "2"}
        doc = run_probe(env, path=os.environ["PATH"])
    assert doc["wireServerReachable"] is True and doc["storageReachable"] is False
    assert doc["dhcpEnabled"] in (True, False, None)
    assert doc["collectedAt"].endswith("Z")
