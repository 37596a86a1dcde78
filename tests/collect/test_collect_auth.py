"""The public entry point end to end (fake `az` on PATH), credentials, endpoints and redaction."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from backup_preflight.collect import CollectError, CollectOptions, Collector, collect_snapshot
from backup_preflight.collect.auth import make_credential, redact, resolve_endpoint, token_scope
from backup_preflight.snapshot import load, save
from collect.fakeazure import TOKEN, FakeCredential, make_estate, subscription_ids


def fake_az(tmp_path: Path, token: str) -> Path:
    """An `az` that logs its arguments and prints what `az account get-access-token` prints."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "az.log"
    answer = json.dumps({"accessToken": token, "expiresOn": "2099-01-01 00:00:00.000000",
                         "expires_on": 4070908800, "subscription": "00000000-0000-0000-0000-000000000000",
                         "tenant": "00000000-0000-0000-0000-00000000000t", "tokenType": "Bearer"})
    script = bin_dir / "az"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> '{log}'\nprintf '%s' '{answer}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_collect_snapshot_with_cli_auth_end_to_end(serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    subs = subscription_ids(2)
    estate = make_estate(1200, subs, running_every=100)
    estate.synthetic_metrics = True
    fake = serve(estate)
    log = fake_az(tmp_path, TOKEN)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    caplog.set_level(logging.DEBUG)

    snap = collect_snapshot(CollectOptions(subscriptions=subs, auth="cli", arm_endpoint=fake.url + "/",
                                           metrics_endpoint=fake.url + "/", progress=False))

    assert snap.errors == []
    assert len(snap.tables["resources"]) == 3600
    assert len(snap.tables["instanceviews"]) == 12
    assert len(snap.tables["metrics"]) == 24  # two series per running VM
    assert len(fake.metrics_requests()) == 1  # the 12 running VMs (every 100th) are all in the first subscription
    assert {r.authorization for r in fake.requests} == {f"Bearer {TOKEN}"}
    calls = log.read_text().splitlines()
    assert calls and all(f"--resource {fake.url}" in call for call in calls)
    path = tmp_path / "snap.json.gz"
    save(snap, path)
    assert load(path).tables["resources"] == snap.tables["resources"]
    assert TOKEN not in caplog.text
    assert "backup_preflight.collect" in {r.name for r in caplog.records}


def test_token_scope_follows_the_endpoint(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(2, subs))
    credential = FakeCredential()
    run(fake, subscriptions=subs, credential=credential)
    assert set(credential.scopes) == {(f"{fake.url}/.default",)}


def test_known_clouds_use_the_sdk_scopes() -> None:
    assert token_scope(resolve_endpoint(None)) == "https://management.azure.com/.default"
    assert token_scope(resolve_endpoint("https://management.usgovcloudapi.net/")) == \
        "https://management.core.usgovcloudapi.net/.default"
    assert token_scope(resolve_endpoint("https://management.chinacloudapi.cn")) == \
        "https://management.chinacloudapi.cn/.default"
    assert token_scope("https://arm.example.test") == "https://arm.example.test/.default"


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:1", "https://", "https://host/path", "not a url"])
def test_bad_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(CollectError, match="--arm-endpoint"):
        resolve_endpoint(endpoint)


def test_unknown_auth_method_is_refused() -> None:
    with pytest.raises(CollectError, match="unknown --auth 'kerberos'"):
        make_credential("kerberos")


def test_workload_identity_without_its_environment_fails_cleanly() -> None:
    with pytest.raises(CollectError, match="--auth workload-identity"):
        collect_snapshot(CollectOptions(subscriptions=["s"], auth="workload-identity", progress=False))


def test_environment_credential_without_variables_fails_before_any_request(serve: Any) -> None:
    fake = serve(make_estate(1, subscription_ids(1)))
    with pytest.raises(CollectError, match=r"cannot get a token for .*--auth environment"):
        collect_snapshot(CollectOptions(subscriptions=["s"], auth="environment", arm_endpoint=fake.url,
                                        metrics=False, progress=False))
    assert fake.requests == []


def test_credential_failure_is_one_clear_error(serve: Any) -> None:
    fake = serve(make_estate(1, subscription_ids(1)))
    credential = FakeCredential(error=ClientAuthenticationError(f"AADSTS700016: bad client; Bearer {TOKEN}"))
    collector = Collector(CollectOptions(subscriptions=["s"], arm_endpoint=fake.url, metrics=False, progress=False),
                          credential)
    with pytest.raises(CollectError) as raised:
        collector.run()
    assert "AADSTS700016" in str(raised.value) and TOKEN not in str(raised.value)
    assert fake.requests == []


def test_redact_masks_tokens_and_secrets() -> None:
    text = (f"Authorization: Bearer {TOKEN} then {TOKEN} and "
            '{"accessToken": "abc.def", "client_secret": "s3cr3t"} password=hunter2')
    masked = redact(text)
    for secret in (TOKEN, "abc.def", "s3cr3t", "hunter2"):
        assert secret not in masked
    assert "Bearer ***" in masked
    assert redact("subscription 1234 was not found") == "subscription 1234 was not found"


def test_the_loopback_guard_stops_other_addresses() -> None:
    with pytest.raises(AssertionError, match="only loopback"), socket.socket() as sock:
        sock.connect(("169.254.169.254", 80))
