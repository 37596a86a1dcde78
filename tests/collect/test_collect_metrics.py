"""Azure Monitor metrics through the real azure-monitor-querymetrics client against the fake Azure."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backup_preflight.collect import CollectError, Tuning
from backup_preflight.collect.metrics import Endpoints, MetricsCollector, plan_batches, resolve_endpoints, timespan
from backup_preflight.collect.progress import Progress
from collect.fakeazure import Estate, FakeClock, FakeCredential, Fault, Request, make_estate, subscription_ids

REGIONS = ("westeurope", "northeurope", "eastus")
NAMES = {"Percentage CPU", "Available Memory Percentage"}


def regional_estate(vms: int, subs: list[str]) -> Estate:
    """make_estate's VMs (every third one running, alternating subscriptions) spread over three
    regions, so running VMs fall in every (subscription, region); Azure Monitor has a series for each."""
    estate = make_estate(vms, subs, running_every=3)
    for i, row in enumerate(r for r in estate.tables["resources"] if r["type"] == "microsoft.compute/virtualmachines"):
        row["location"] = REGIONS[i // 3 % 3]
    estate.synthetic_metrics = True
    return estate


def running(estate: Estate) -> dict[str, tuple[str, str]]:
    """Running VM id → (subscription, region), read straight from the rows."""
    return {r["id"]: (r["subscriptionId"], r["location"]) for r in estate.tables["resources"]
            if r["type"] == "microsoft.compute/virtualmachines"
            and r["properties"]["extended"]["instanceView"]["powerState"]["code"] == "PowerState/running"}


def metrics_run(run: Any, fake: Any, subs: list[str], **kwargs: Any) -> tuple[Any, Any]:
    return run(fake, subscriptions=subs, metrics=True, metrics_endpoint=fake.url, **kwargs)


def with_vm(name: str) -> Any:
    def match(request: Request) -> bool:
        return request.kind == "metrics" and any(i.endswith("/" + name) for i in request.resource_ids)

    return match


def test_one_request_per_50_running_vms_of_a_subscription_and_region(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = regional_estate(1500, subs)  # some 83 running VMs per (subscription, region)
    fake = serve(estate)
    snap, collector = metrics_run(run, fake, subs, metrics_days=3)

    vms = running(estate)
    groups = Counter(vms.values())
    requests = fake.metrics_requests()
    assert len(requests) == sum(math.ceil(n / 50) for n in groups.values()) == collector.stats.metrics_requests
    asked = Counter(i for r in requests for i in r.resource_ids)
    assert set(asked) == set(vms) and set(asked.values()) == {1}  # every running VM once, no stopped one
    for request in requests:
        assert 1 <= len(request.resource_ids) <= 50
        assert len({vms[i] for i in request.resource_ids}) == 1  # one subscription and one region
        assert request.path.lower().startswith(f"/subscriptions/{vms[request.resource_ids[0]][0]}/metrics:getbatch")
        params = request.params
        assert params["interval"] == "PT1H" and params["metricnamespace"].lower() == "microsoft.compute/virtualmachines"
        assert {a.lower() for a in params["aggregation"].split(",")} >= {"maximum", "minimum"}
        assert set(params["metricnames"].split(",")) == NAMES

    assert snap.errors == []
    rows = snap.tables["metrics"]
    assert Counter(r["id"] for r in rows) == dict.fromkeys(vms, 2)
    assert {r["name"] for r in rows} == NAMES
    for row in rows:
        # hourly over the last 3 whole days, one point kept per UTC hour of the day: its worst
        assert sorted(int(p["timeStamp"][11:13]) for p in row["data"]) == list(range(24))
        assert set(row["data"][0]) == {"timeStamp", "maximum", "minimum", "average"}
        assert row["data"][0]["maximum"] > row["data"][0]["average"] > row["data"][0]["minimum"]


def test_throttling_and_server_errors_are_retried(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    estate = regional_estate(60, subs)
    fake = serve(estate)
    # one batch per region: vm000000 in westeurope, vm000003 in northeurope, vm000006 in eastus
    fake.add_fault(Fault(with_vm("vm000000"), status=429, headers={"Retry-After": "13"}))
    fake.add_fault(Fault(with_vm("vm000003"), status=429, times=2))  # no Retry-After: backoff 1 s, 2 s
    fake.add_fault(Fault(with_vm("vm000006"), status=503))
    fake.add_fault(Fault(with_vm("vm000006"), status=529))  # Azure Monitor's own "throttled" status
    fake.add_fault(Fault(with_vm("vm000006"), drop=True))
    fake.add_fault(Fault(with_vm("vm000006"), status=200, raw=b'{"values": [{"resourceid'))  # cut off
    snap, collector = metrics_run(run, fake, subs)

    assert snap.errors == []
    assert {r["id"] for r in snap.tables["metrics"]} == set(running(estate))
    assert 13.0 in clock.waits and 2.0 in clock.waits
    statuses = Counter(r.status for r in fake.metrics_requests())
    assert statuses[429] == 3 and statuses[503] == 1 and statuses[529] == 1 and statuses[0] == 1
    assert statuses[200] == 3 + 1  # the three batches, and the cut-off answer that was retried
    assert collector.stats.metrics_requests == len(fake.metrics_requests())


def test_a_batch_that_keeps_failing_names_each_of_its_vms(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = regional_estate(60, subs)
    fake = serve(estate)
    fake.add_fault(Fault(with_vm("vm000000"), status=500, times=99))
    snap, _ = metrics_run(run, fake, subs, tuning=Tuning(max_attempts=3))

    failed = next(r.resource_ids for r in fake.metrics_requests() if "/vm000000" in r.resource_ids[0])
    assert len([r for r in fake.metrics_requests() if r.resource_ids == failed]) == 3
    assert {e["scope"] for e in snap.errors} == {f"vm {i}" for i in failed}
    assert {(e["table"], e["status"]) for e in snap.errors} == {("metrics", 500)}
    assert all("gave up after 3 tries" in e["message"] for e in snap.errors)
    assert {r["id"] for r in snap.tables["metrics"]} == set(running(estate)) - set(failed)  # the rest kept


def test_a_forbidden_subscription_is_an_error_for_each_vm_and_not_retried(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = regional_estate(200, subs)
    fake = serve(estate)
    fake.add_fault(Fault(lambda r: r.kind == "metrics" and subs[1] in r.path, status=403, times=999))
    snap, _ = metrics_run(run, fake, subs)

    vms = running(estate)
    denied = {i for i, (sub, _) in vms.items() if sub == subs[1]}
    assert denied
    assert {e["scope"] for e in snap.errors} == {f"vm {i}" for i in denied}
    assert {e["status"] for e in snap.errors} == {403}
    batches = Counter(v for v in vms.values() if v[0] == subs[1])
    assert len(fake.metrics_requests(403)) == sum(math.ceil(n / 50) for n in batches.values())
    assert {r["id"] for r in snap.tables["metrics"]} == set(vms) - denied


def test_a_partial_answer_names_the_vms_left_out(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = regional_estate(20, subs)
    estate.synthetic_metrics = False
    vms = sorted(running(estate))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    point = {"timeStamp": (now - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), "maximum": 97.5,
             "minimum": 40.0, "average": 61.0}
    old = {**point, "timeStamp": (now - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for vm_id in vms[2:]:
        estate.metrics[vm_id.lower()] = {"percentage cpu": [old, point]}  # no memory data at all
    fake = serve(estate)
    snap, _ = metrics_run(run, fake, subs)

    assert {e["scope"] for e in snap.errors} == {f"vm {i}" for i in vms[:2]}
    assert all(e["status"] == 200 and "not in the answer" in e["message"] for e in snap.errors)
    rows = {(r["id"], r["name"]): r["data"] for r in snap.tables["metrics"]}
    assert rows[vms[2], "Percentage CPU"] == [point]  # the 9-day-old point is outside the 7 days asked
    assert rows[vms[2], "Available Memory Percentage"] == []  # no data is stored as no data, not an error


def test_metric_level_errors_in_a_200_answer_are_coverage_errors() -> None:
    vm = "/subscriptions/s/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/web01"
    body = {"values": [{"resourceid": vm.lower(), "value": [
        {"id": f"{vm}/providers/Microsoft.Insights/metrics/Percentage CPU", "name": {"value": "Percentage CPU"},
         "timeseries": [{"data": [{"timeStamp": "2026-01-01T02:00:00Z", "maximum": 9, "total": 99}]}],
         "errorCode": "Success"},
        {"name": {"value": "Available Memory Percentage"}, "timeseries": [], "errorCode": "MetricNotFound",
         "errorMessage": "no such metric"},
        {"name": "Percentage CPU", "timeseries": "garbled"}]}]}  # a wrong shape is ignored, not a crash
    collector = MetricsCollector(FakeCredential(), Endpoints(None, "https://x", "https://x"), FakeClock(), Tuning(),
                                 Progress(live=False))
    rows, errors = collector._rows(plan_batches([(vm, "westeurope")])[0][0], body)

    assert rows == [{"id": vm, "name": "Percentage CPU", "data": [{"timeStamp": "2026-01-01T02:00:00Z", "maximum": 9}]}]
    assert [(e["scope"], e["status"]) for e in errors] == [(f"vm {vm}", 200)]
    assert "Available Memory Percentage: MetricNotFound: no such metric" in errors[0]["message"]


def test_metrics_token_audience_follows_the_endpoints(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(regional_estate(4, subs))
    credential = FakeCredential()
    metrics_run(run, fake, subs, credential=credential)
    assert (f"{fake.url}/.default",) in credential.scopes  # an unknown cloud: the endpoint itself

    credential = FakeCredential()
    gov = Endpoints(suffix=None, fixed=fake.url, audience="https://metrics.monitor.azure.us")
    collector = MetricsCollector(credential, gov, FakeClock(), Tuning(), Progress(live=False))
    vm = next(iter(running(fake.estate)))
    now = datetime.now(UTC)
    rows, errors = collector.collect([(vm, "usgovvirginia")], (now - timedelta(days=1), now))
    assert errors == [] and len(rows) == 2
    assert set(credential.scopes) == {("https://metrics.monitor.azure.us/.default",)}


def test_regional_endpoints_and_audiences_per_cloud() -> None:
    public = resolve_endpoints("https://management.azure.com", None)
    assert public.url("westeurope") == "https://westeurope.metrics.monitor.azure.com"
    assert public.audience == "https://metrics.monitor.azure.com"
    gov = resolve_endpoints("https://management.usgovcloudapi.net", None)
    assert gov.url("usgovvirginia") == "https://usgovvirginia.metrics.monitor.azure.us"
    assert gov.audience == "https://metrics.monitor.azure.us"
    china = resolve_endpoints("https://management.chinacloudapi.cn", None)
    assert china.url("chinanorth3") == "https://chinanorth3.metrics.monitor.azure.cn"
    proxied = resolve_endpoints("https://management.azure.com", "https://metrics-proxy.contoso.test/")
    assert proxied.url("westeurope") == proxied.url("eastus") == "https://metrics-proxy.contoso.test"
    assert proxied.audience == "https://metrics.monitor.azure.com"  # the cloud's, not the proxy's
    with pytest.raises(CollectError, match="--metrics-endpoint URL, or --no-metrics"):
        resolve_endpoints("https://arm.azurestack.test", None)
    for bad in ("http://127.0.0.1:1", "https://host/path"):
        with pytest.raises(CollectError, match="--metrics-endpoint must be an https URL"):
            resolve_endpoints("https://management.azure.com", bad)


def test_batches_and_time_span() -> None:
    base = "/subscriptions/{}/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm{}"
    vms = [(base.format("A", i), "West Europe" if i % 2 else "westeurope") for i in range(120)]
    vms += [(base.format("a", 999), "westeurope"), (base.format("B", 0), "eastus"), ("/not/a/vm", "eastus"),
            (base.format("C", 0), "")]
    batches, unusable = plan_batches(vms)
    assert [(b.subscription, b.region, len(b.vm_ids)) for b in batches] == [
        ("a", "westeurope", 50), ("a", "westeurope", 50), ("a", "westeurope", 21), ("b", "eastus", 1)]
    assert unusable == ["/not/a/vm", base.format("C", 0)]
    start, end = timespan(datetime(2026, 3, 29, 14, 37, 5, tzinfo=UTC), 7)
    assert (start, end) == (datetime(2026, 3, 22, 14, tzinfo=UTC), datetime(2026, 3, 29, 14, tzinfo=UTC))


def test_metrics_are_off_when_asked(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(regional_estate(4, subs))
    snap, _ = run(fake, subscriptions=subs, metrics=False)
    assert "metrics" not in snap.tables and fake.metrics_requests() == []
