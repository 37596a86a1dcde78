"""Resource Graph collection through the real SDK against the fake Azure: paging, scopes, faults."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from backup_preflight import snapshot
from backup_preflight.collect import Tuning
from backup_preflight.collect.resource_graph import TABLE_QUERIES
from backup_preflight.snapshot import GRAPH_TABLES, query_key
from collect.fakeazure import Estate, FakeAzure, FakeCredential, Fault, Request, make_estate, subscription_ids


def expected_rows(fake: FakeAzure, table: str, subs: list[str] | None = None) -> list[dict[str, Any]]:
    """What the server holds for a table's generic query within the given subscriptions."""
    rows = fake._rows(TABLE_QUERIES[table], tuple(s.lower() for s in subs or []), ())
    assert rows is not None
    return rows


def minimum_requests(fake: FakeAzure, batches: list[list[str]], queries: list[str]) -> int:
    """One request per 1000 rows (at least one) for every query over every batch."""
    total = 0
    for query in queries:
        for batch in batches:
            rows = fake._rows(query, tuple(s.lower() for s in batch), ())
            assert rows is not None
            total += max(1, math.ceil(len(rows) / 1000))
    return total


def assert_same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert sorted(ids) == sorted(r["id"] for r in want), "lost or foreign rows"


def is_page(table: str, offset: int) -> Any:
    """Match a request for the page of `table` starting at row `offset`."""
    import base64

    import msgspec

    def match(request: Request) -> bool:
        if not request.query.startswith(table):
            return False
        token = request.skip_token
        start = msgspec.json.decode(base64.urlsafe_b64decode(token))["o"] if token else 0
        return start == offset

    return match


def test_pages_through_every_table_with_the_fewest_requests(serve: Any, run: Any) -> None:
    subs = subscription_ids(3)
    fake = serve(make_estate(2600, subs))
    snap, collector = run(fake, subscriptions=subs)

    assert snap.errors == []
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))
    assert len(snap.tables["resources"]) == 3 * 2600  # VM, extension, NIC; the disks are filtered out
    assert "instanceviews" not in snap.tables
    want = minimum_requests(fake, [subs], list(TABLE_QUERIES.values()))
    assert want == 8 + 3 + 3 + 1  # resources, recovery, guest configuration, resourcecontainers
    assert len(fake.graph_requests()) == want == collector.stats.graph_requests
    for request in fake.graph_requests():
        assert request.body["options"]["$top"] == 1000
        assert request.body["options"]["resultFormat"] == "objectArray"
        assert request.authorization == f"Bearer {FakeCredential().token}"
    assert snap.scope == {"subscriptions": subs, "managementGroups": []}
    assert snap.collected_at and snap.collected_at.endswith("Z")


def test_more_than_1000_subscriptions_are_batched(serve: Any, run: Any) -> None:
    subs = subscription_ids(2500)
    fake = serve(make_estate(2500, subs), record_bodies=True)
    snap, _ = run(fake, subscriptions=subs)

    batches = [subs[:1000], subs[1000:2000], subs[2000:]]
    sizes = sorted({len(r.subscriptions) for r in fake.graph_requests()})
    assert sizes == [500, 1000]
    seen = {s for r in fake.graph_requests() for s in r.subscriptions}
    assert seen == set(subs)
    assert len(fake.graph_requests()) == minimum_requests(fake, batches, list(TABLE_QUERIES.values()))
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))
    assert snap.scope["subscriptions"] == subs


def test_management_group_scope_and_overlap_are_deduplicated(serve: Any, run: Any) -> None:
    subs = subscription_ids(4)
    estate = make_estate(400, subs)
    estate.management_groups = {"platform": subs[:2]}
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=[subs[1], subs[2]], management_groups=["platform"])

    mg_requests = [r for r in fake.graph_requests() if r.management_groups]
    assert {tuple(r.management_groups) for r in mg_requests} == {("platform",)}
    assert all(r.body["options"].get("allowPartialScopes") is True for r in mg_requests)
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs[:3]))
    assert snap.scope == {"subscriptions": [subs[1], subs[2]], "managementGroups": ["platform"]}
    assert snap.errors == []


def test_rows_kept_as_text_are_the_rows_the_sdk_decoded(serve: Any, run: Any) -> None:
    """`collect` and live scans keep each page's rows as their JSON text (`compact_rows`): deduplicated across
    overlapping scopes by id, read for the running VMs whose instance views and metrics are asked for, written
    out as the same bytes, and the same rows once materialized."""
    subs = subscription_ids(4)
    estate = make_estate(400, subs)
    estate.management_groups = {"platform": subs[:2]}
    estate.synthetic_metrics = True
    fake = serve(estate)
    flags = {"subscriptions": [subs[1], subs[2]], "management_groups": ["platform"], "instance_view": True,
             "metrics": True, "metrics_endpoint": fake.url}
    plain, _ = run(fake, **flags)
    kept, _ = run(fake, compact_rows=True, **flags)
    assert all(type(row) is msgspec.Raw for table in (*GRAPH_TABLES, "instanceviews", "metrics")
               for row in kept.tables[table])
    assert len(kept.tables["resources"]) == len(plain.tables["resources"]) == len(expected_rows(fake, "resources",
                                                                                              subs[:3]))
    assert plain.tables["instanceviews"] and plain.tables["metrics"] and kept.errors == plain.errors
    kept.collected_at = plain.collected_at
    assert b"".join(snapshot.pieces(kept)) == b"".join(snapshot.pieces(plain))
    kept.materialize()
    assert kept.tables == plain.tables


def test_custom_queries_are_stored_by_key(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = make_estate(10, subs)
    kql = "resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name, subscriptionId"
    estate.custom[kql] = [{"id": f"/subscriptions/{subs[i % 2]}/x/{i}", "name": f"x{i}",
                           "subscriptionId": subs[i % 2]} for i in range(2500)]
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, custom_queries=[kql, kql + "  \n"])

    assert list(snap.queries) == [query_key(kql)]
    stored = snap.queries[query_key(kql)]
    assert stored["query"] == kql
    assert_same_rows(stored["rows"], estate.custom[kql])
    custom_requests = [r for r in fake.graph_requests() if r.query == kql]
    assert len(custom_requests) == 3  # 2,500 rows, the repeated text is run once


def test_invalid_custom_query_is_an_error_not_a_crash(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(5, subs))
    snap, _ = run(fake, subscriptions=subs, custom_queries=["resourcez | nonsense"])

    key = query_key("resourcez | nonsense")
    assert key not in snap.queries
    assert snap.errors == [{"scope": f"subscription {subs[0]}", "table": f"query:{key}", "status": 400,
                            "message": "BadRequest: Query is invalid."}]
    assert all(t in snap.tables for t in GRAPH_TABLES)


def test_quota_headers_pace_requests_without_any_429(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(2)
    fake = serve(make_estate(6000, subs), clock=clock, quota=(15, 5.0))
    start = clock.now()
    snap, collector = run(fake, subscriptions=subs)

    requests = len(fake.graph_requests())
    assert requests == minimum_requests(fake, [subs], list(TABLE_QUERIES.values())) == 18 + 7 + 6 + 1
    assert fake.quota is not None and fake.quota.throttled == 0
    windows = math.ceil(requests / 15)
    elapsed = clock.now() - start
    # Each wait ends at most the whole-second rounding of resets-after plus the safety margin late.
    assert (windows - 1) * 5.0 <= elapsed <= (windows - 1) * 6.1
    assert collector.progress.waits == windows - 1
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))


def test_429_with_retry_after_waits_that_long(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(1500, subs))
    fake.add_fault(Fault(is_page("resources", 1000), status=429, headers={"Retry-After": "7"}))
    snap, _ = run(fake, subscriptions=subs)

    assert snap.errors == []
    assert 7.0 in clock.waits
    assert len(fake.graph_requests(429)) == 1
    assert len(fake.graph_requests(200)) == minimum_requests(fake, [subs], list(TABLE_QUERIES.values()))
    assert_same_rows(snap.tables["resources"], expected_rows(fake, "resources", subs))


def test_429_without_retry_after_waits_for_the_quota_reset(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(1500, subs))
    fake.add_fault(Fault(is_page("resources", 1000), status=429, headers={
        "x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:04"}))
    snap, _ = run(fake, subscriptions=subs)

    assert snap.errors == []
    assert max(clock.waits) >= 4.0
    assert_same_rows(snap.tables["resources"], expected_rows(fake, "resources", subs))


def test_429_saying_zero_seconds_still_waits(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(10, subs))
    fake.add_fault(Fault(is_page("resources", 0), status=429, times=2, headers={
        "x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:00"}))
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(graph_workers=1))

    assert snap.errors == []
    assert clock.waits == [1.0, 1.0]


def test_bare_429_backs_off_exponentially(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(10, subs))
    fake.add_fault(Fault(is_page("guestconfigurationresources", 0), status=429, times=3))
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(graph_workers=1))

    assert snap.errors == []
    assert clock.waits == [1.0, 2.0, 4.0]
    assert len(fake.graph_requests(429)) == 3


def test_server_errors_are_retried(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(1500, subs))
    fake.add_fault(Fault(is_page("resources", 2000), status=500, times=2))
    fake.add_fault(Fault(is_page("recoveryservicesresources", 0), status=503))
    snap, _ = run(fake, subscriptions=subs)

    assert snap.errors == []
    assert len(fake.graph_requests()) == minimum_requests(fake, [subs], list(TABLE_QUERIES.values())) + 3
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))


def test_a_page_that_keeps_failing_fails_only_its_scope(serve: Any, run: Any) -> None:
    subs = subscription_ids(3)
    fake = serve(make_estate(3000, subs))
    failing = subs[1]

    def page_two_of_failing(request: Request) -> bool:
        return request.subscriptions == [failing] and is_page("resources", 1000)(request)

    fake.add_fault(Fault(page_two_of_failing, status=502, times=100))
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(batch_size=1, max_attempts=4))

    assert snap.errors == [{"scope": f"subscription {failing}", "table": "resources", "status": 502,
                            "message": "Injected: injected HTTP 502 (gave up after 4 tries)"}]
    assert len([r for r in fake.graph_requests(502)]) == 4
    ok = [s for s in subs if s != failing]
    got = {r["id"] for r in snap.tables["resources"]}
    assert {r["id"] for r in expected_rows(fake, "resources", ok)} <= got
    failing_rows = expected_rows(fake, "resources", [failing])
    assert [r["id"] for r in snap.tables["resources"] if r["subscriptionId"] == failing] == \
        [r["id"] for r in failing_rows[:1000]]  # the first page is kept
    for table in ("recoveryservicesresources", "guestconfigurationresources"):
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))


def test_dropped_connection_is_retried_without_losing_rows(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    fake = serve(make_estate(2000, subs))
    fake.add_fault(Fault(is_page("resources", 3000), drop=True))
    snap, _ = run(fake, subscriptions=subs)

    assert snap.errors == []
    assert len(fake.graph_requests(0)) == 1
    assert len(fake.graph_requests(200)) == minimum_requests(fake, [subs], list(TABLE_QUERIES.values()))
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, subs))


def test_forbidden_subscription_is_isolated_from_its_batch(serve: Any, run: Any) -> None:
    subs = subscription_ids(8)
    estate = make_estate(80, subs)
    estate.forbidden_subscriptions = {subs[5]}
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs)

    assert sorted((e["scope"], e["table"], e["status"]) for e in snap.errors) == [
        (f"subscription {subs[5]}", table, 403) for table in sorted(GRAPH_TABLES)]
    assert all("no read access" in e["message"] for e in snap.errors)
    allowed = [s for s in subs if s != subs[5]]
    for table in GRAPH_TABLES:
        assert_same_rows(snap.tables[table], expected_rows(fake, table, allowed))
    # 8 → 4+4 → 2+2 → 1+1: seven forbidden answers and three readable halves per table.
    assert len(fake.graph_requests(403)) == len(GRAPH_TABLES) * 4
    assert len(fake.graph_requests(200)) == len(GRAPH_TABLES) * 3


def test_table_that_no_scope_could_read_is_absent(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(5, subs))
    fake.add_fault(Fault(lambda r: r.query.startswith("guestconfigurationresources"), status=400, times=99))
    snap, _ = run(fake, subscriptions=subs)

    assert "guestconfigurationresources" not in snap.tables  # not collected, rather than empty
    assert [e["table"] for e in snap.errors] == ["guestconfigurationresources"]
    assert "resources" in snap.tables


def test_subscription_limit_hit_is_reported(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = make_estate(10, subs)
    estate.management_groups = {"huge": subs}
    estate.limit_hit_groups = {"huge"}
    fake = serve(estate)
    snap, _ = run(fake, management_groups=["huge"])

    assert {(e["scope"], e["status"]) for e in snap.errors} == {("managementGroup huge", 200)}
    assert len(snap.errors) == len(GRAPH_TABLES)
    assert_same_rows(snap.tables["resources"], expected_rows(fake, "resources", subs))


def test_unauthorized_answer_is_a_scope_error(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(Estate(tables={t: [] for t in GRAPH_TABLES}))
    snap, _ = run(fake, subscriptions=subs, credential=FakeCredential(token="wrong"))

    assert {(e["table"], e["status"]) for e in snap.errors} == {(t, 401) for t in GRAPH_TABLES}
    assert snap.tables == {}
    assert "wrong" not in str(snap.errors)


def test_forbidden_batches_stop_splitting_when_the_budget_is_spent(serve: Any, run: Any) -> None:
    subs = subscription_ids(4)
    estate = make_estate(8, subs)
    estate.forbidden_subscriptions = {subs[0]}
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(max_splits=0))

    assert len(fake.graph_requests()) == len(GRAPH_TABLES)
    assert {(e["scope"], e["status"]) for e in snap.errors} == {(f"subscription {s}", 403) for s in subs}
    assert snap.tables == {}


def test_custom_query_rows_sharing_an_id_are_all_kept(serve: Any, run: Any) -> None:
    """A custom query may return many rows of one resource (one per NSG rule after `mv-expand`): every one is
    judged. Only the repeats an overlapping scope brings (a management group and one of its subscriptions)
    are dropped, as for the tables."""
    subs = subscription_ids(3)
    estate = make_estate(4, subs)
    estate.management_groups = {"platform": subs[:2]}
    kql = ("resources | where type =~ 'microsoft.network/networksecuritygroups' | mv-expand rule = "
           "properties.securityRules | project id, name, subscriptionId, rule = tostring(rule.name)")
    estate.custom[kql] = [{"id": f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/"
                                 f"networkSecurityGroups/nsg", "name": "nsg", "subscriptionId": sub, "rule": rule}
                          for sub in subs for rule in ("AllowStorage", "DenyInternet", "AllowVnet")]
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=[subs[1], subs[2]], management_groups=["platform"], custom_queries=[kql])

    rows = snap.queries[query_key(kql)]["rows"]
    assert sorted((r["subscriptionId"], r["rule"]) for r in rows) == sorted(
        (r["subscriptionId"], r["rule"]) for r in estate.custom[kql])
    assert snap.errors == []


def test_an_answer_without_rows_is_retried_then_fails_its_scope(serve: Any, run: Any) -> None:
    """A 200 whose body has no `data` list (a proxy's `{}`, JSON that is not Resource Graph's) is no page of
    zero rows: once, it is fetched again; if it stays so, its scope is an error, never an empty table."""
    subs = subscription_ids(2)
    fake = serve(make_estate(10, subs))
    body = b'{"totalRecords": 15, "count": 15, "resultTruncated": "false"}'

    def first_page_of(sub: str) -> Any:
        return lambda request: request.subscriptions == [sub] and is_page("resources", 0)(request)

    fake.add_fault(Fault(first_page_of(subs[0]), status=200, raw=body))
    fake.add_fault(Fault(first_page_of(subs[1]), status=200, raw=body, times=99))
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(batch_size=1, max_attempts=3))

    assert [(e["scope"], e["table"], e["status"]) for e in snap.errors] == [
        (f"subscription {subs[1]}", "resources", 200)]
    assert "no list of rows" in snap.errors[0]["message"] and "gave up after 3 tries" in snap.errors[0]["message"]
    assert len([r for r in fake.graph_requests() if first_page_of(subs[1])(r)]) == 3
    assert_same_rows(snap.tables["resources"], expected_rows(fake, "resources", [subs[0]]))


def test_an_answer_with_a_row_that_is_no_object_is_retried_then_fails_its_scope(serve: Any, run: Any) -> None:
    """`data: [null]` was stored as a row, and the saved snapshot was then refused by `scan` (exit 2)."""
    subs = subscription_ids(1)
    fake = serve(make_estate(5, subs))
    body = b'{"totalRecords": 1, "count": 1, "resultTruncated": "false", "data": [null]}'
    fake.add_fault(Fault(is_page("resources", 0), status=200, raw=body, times=99))
    snap, _ = run(fake, subscriptions=subs, tuning=Tuning(batch_size=1, max_attempts=2))
    assert [(e["scope"], e["table"], e["status"]) for e in snap.errors] == [(f"subscription {subs[0]}", "resources",
                                                                            200)]
    assert "a row that is not an object" in snap.errors[0]["message"]
    assert "resources" not in snap.tables
