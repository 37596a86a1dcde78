"""The collector pause: off inside, back on after, and what was built moved out of the collector's walks."""

from __future__ import annotations

import gc

import pytest

from backup_preflight.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was else gc.disable)()


def test_pause_disables_then_reenables_and_freezes_what_was_built():
    gc.enable()
    gc.unfreeze()
    with gc_paused():
        assert not gc.isenabled()
        built = [[i] for i in range(10_000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_pause_leaves_a_disabled_collector_disabled_and_unfrozen():
    gc.disable()
    gc.unfreeze()
    with gc_paused():
        _ = [[i] for i in range(1_000)]
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_pause_restores_the_collector_when_the_body_raises():
    gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()
