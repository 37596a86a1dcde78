"""`--debug` logs HTTP through azure-core's logger; the bearer token never appears in it."""

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from backup_preflight import logs
from collect.fakeazure import TOKEN, make_estate, subscription_ids


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    saved = {name: (lg.handlers[:], lg.level, lg.propagate)
             for name in ("backup_preflight", "azure") for lg in [logging.getLogger(name)]}
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def collect_with_log(serve: Any, run: Any, debug: bool) -> str:
    subs = subscription_ids(1)
    fake = serve(make_estate(6, subs))
    stream = io.StringIO()
    logs.setup(debug=debug, stream=stream)
    snap, _ = run(fake, subscriptions=subs, instance_view=True)
    assert snap.errors == [] and snap.tables["instanceviews"]
    return stream.getvalue()


def test_debug_logs_requests_with_authorization_redacted(serve: Any, run: Any, restore_loggers: None) -> None:
    text = collect_with_log(serve, run, debug=True)
    assert "Request URL: '" in text and "/providers/Microsoft.ResourceGraph/resources" in text
    assert "Request method: 'POST'" in text and "Response status: 200" in text
    assert "'Authorization': 'REDACTED'" in text
    assert TOKEN not in text and "test-secret-token" not in text and "Bearer" not in text


def test_without_debug_there_is_no_http_log(serve: Any, run: Any, restore_loggers: None) -> None:
    text = collect_with_log(serve, run, debug=False)
    assert "Request URL" not in text and "Authorization" not in text
    assert "collect: collection finished" in text  # our own lines still come, plain
