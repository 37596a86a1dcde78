"""Fixtures for the collector tests: loopback-only sockets, a clean Azure environment, fake Azure."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backup_preflight.collect import CollectOptions, Collector, Tuning
from backup_preflight.collect.progress import Progress
from collect.fakeazure import TOKEN, Estate, FakeAzure, FakeClock, FakeCredential


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach an address other than loopback (Azure, IMDS, DNS)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(address: Any) -> None:
        if not _loopback(address):
            raise AssertionError(f"test tried to connect to {address!r}; only loopback is allowed")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            guard((host.decode() if isinstance(host, bytes) else host, 0))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real Azure identity or proxy settings may leak into a test."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("AZURE_", "MSI_", "IDENTITY_", "IMDS_")) or upper.endswith("_PROXY"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeAzure]]:
    """Start a fake Azure for an estate; its CA is trusted through REQUESTS_CA_BUNDLE."""
    servers: list[FakeAzure] = []

    def start(estate: Estate, **kwargs: Any) -> FakeAzure:
        kwargs.setdefault("token", TOKEN)
        fake = FakeAzure(estate, **kwargs).start()
        servers.append(fake)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        return fake

    yield start
    for fake in servers:
        fake.stop()


@pytest.fixture
def run(clock: FakeClock) -> Callable[..., tuple[Any, Collector]]:
    """Collect from a fake Azure with the fake credential and the virtual clock."""

    def collect(fake: FakeAzure, tuning: Tuning | None = None, credential: Any = None,
                **options: Any) -> tuple[Any, Collector]:
        options.setdefault("instance_view", False)
        options.setdefault("metrics", False)
        opts = CollectOptions(arm_endpoint=fake.url, **options)
        collector = Collector(opts, credential or FakeCredential(), clock=clock, tuning=tuning,
                              progress=Progress(live=False))
        return collector.run(), collector

    return collect
