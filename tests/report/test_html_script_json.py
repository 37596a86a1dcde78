"""The page's JSON is written in pieces; joined, they are the whole document encoded at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from backup_preflight.report import html, outputs
from scan_helpers import XSS_SCRIPT, estate, run, write_snapshot


def whole(data: Any) -> str:
    """The oracle: one encode of everything, then the three characters that could close <script>."""
    text = msgspec.json.encode(data, order="sorted").decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="ab<>&\"\\é\u2028 "),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="kz<&", max_size=3), inner,
                                                                max_size=4),
    max_leaves=20)


@given(json_values)
def test_pieces_join_to_the_whole_encoding(data: Any) -> None:
    assert "".join(html.script_json(data)) == whole(data)


def test_the_page_holds_the_report_data_once_and_whole(tmp_path: Path) -> None:
    result = run(write_snapshot(tmp_path / "now.json", estate(name_suffix=XSS_SCRIPT)))
    outputs.write_all(result, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    islands = re.findall(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert islands == [whole(html.context(result)["data"])]
    assert "<!-- report-data -->" not in page
    assert XSS_SCRIPT not in page
