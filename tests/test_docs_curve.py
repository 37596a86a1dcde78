"""docs/scan-curve.svg is drawn from the curve table in docs/performance.md, and stays in step with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_curve_figure_matches_its_table() -> None:
    spec = importlib.util.spec_from_file_location("plot_curve", ROOT / "benchmarks" / "plot_curve.py")
    assert spec and spec.loader
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    rows = plot.measured()
    assert [vms for vms, _, _ in rows] == sorted(vms for vms, _, _ in rows) and len(rows) >= 4
    assert (ROOT / "docs" / "scan-curve.svg").read_text(encoding="utf-8") == plot.svg(rows), \
        "run benchmarks/plot_curve.py after changing the table"
