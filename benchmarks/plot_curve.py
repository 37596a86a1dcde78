"""Draw docs/scan-curve.svg from the scan curve table in docs/performance.md (no plotting library).

    python benchmarks/plot_curve.py

Reads the rows of the table under "The scan from 1,000 to …" (VMs, full scan seconds and peak GB)
and draws both against the number of VMs on log-log axes, with the 7 GB of a standard CI runner
and the straight line a linear cost would follow from the 10,000-VM point.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 360, 60, 60, 30, 50
RUNNER_GB = 7.0


def measured() -> list[tuple[int, float, float]]:
    """(VMs, full scan seconds, full scan peak GB) per row of the curve table."""
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    section = text.split("## The scan from 1,000 to", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 5 and re.fullmatch(r"[\d,]+", cells[0]):
            seconds, gb = re.fullmatch(r"([\d.]+) s, ([\d.]+) GB", cells[5]).groups()  # type: ignore[union-attr]
            rows.append((int(cells[0].replace(",", "")), float(seconds), float(gb)))
    return rows


def scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start + (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low)) * (end - start)


def svg(rows: list[tuple[int, float, float]]) -> str:
    x_lo, x_hi = 1_000, 1_000_000
    y_lo, y_hi = 0.05, 1000.0  # one log axis for seconds and GB
    def x(v: float) -> float:
        return scale(v, x_lo, x_hi, LEFT, WIDTH - RIGHT)

    def y(v: float) -> float:
        return scale(v, y_lo, y_hi, HEIGHT - BOTTOM, TOP)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for v in (1_000, 10_000, 100_000, 1_000_000):
        parts.append(f'<line x1="{x(v):.1f}" y1="{TOP}" x2="{x(v):.1f}" y2="{HEIGHT - BOTTOM}" stroke="#ddd"/>')
        parts.append(f'<text x="{x(v):.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle">{v:,}</text>')
    for v in (0.1, 1, 10, 100, 1000):
        parts.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">VMs</text>')
    parts.append(f'<line x1="{LEFT}" y1="{y(RUNNER_GB):.1f}" x2="{WIDTH - RIGHT}" y2="{y(RUNNER_GB):.1f}" '
                 'stroke="#c00" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{LEFT + 4}" y="{y(RUNNER_GB) - 4:.1f}" fill="#c00">7 GB runner</text>')
    base = next(r for r in rows if r[0] == 10_000)
    for column, colour, label in ((1, "#1f5fbf", "full scan, seconds"), (2, "#2a8a3a", "peak RSS, GB")):
        linear = [(base[0], base[column]), (x_hi, base[column] * x_hi / base[0])]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-opacity="0.35" stroke-dasharray="2 3" '
                     f'points="{" ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in linear)}"/>')
        points = " ".join(f"{x(r[0]):.1f},{y(r[column]):.1f}" for r in rows)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts += [f'<circle cx="{x(r[0]):.1f}" cy="{y(r[column]):.1f}" r="3" fill="{colour}"/>' for r in rows]
        last = rows[-1]
        below = 16 if column == 2 else 4  # clear of the runner line
        right = x(last[0]) > WIDTH - RIGHT - 100  # at the right edge: the label goes left of the point
        anchor = ' text-anchor="end"' if right else ""
        parts.append(f'<text x="{x(last[0]) + (-6 if right else 6):.1f}" y="{y(last[column]) + below:.1f}" '
                     f'fill="{colour}"{anchor}>{label}</text>')
    parts.append(f'<text x="{LEFT}" y="{TOP - 10}">One scan (in parts past 25,000 VMs), measured (solid) and '
                 'linear from 10,000 VMs (dotted); log-log</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    rows = measured()
    (DOCS / "scan-curve.svg").write_text(svg(rows), encoding="utf-8")
    print(f"docs/scan-curve.svg: {len(rows)} points, {rows[0][0]:,} to {rows[-1][0]:,} VMs")


if __name__ == "__main__":
    main()
