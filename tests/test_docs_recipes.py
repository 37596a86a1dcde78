"""Every YAML recipe in README.md and docs/, the composite action and the Azure Pipelines template are
complete documents, valid against check-jsonschema's vendored schemas, and install Python explicitly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CHECK = Path(sys.executable).with_name("check-jsonschema")
FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)


def recipes() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            line = text[:block.start()].count("\n") + 1
            found.append((f"{doc.relative_to(ROOT)}:{line}", block[1]))
    return found


def kind(text: str) -> str:
    """Which vendored schema a complete document is for."""
    if re.search(r"^runs:", text, re.M):
        return "github-actions"
    if re.search(r"^on:", text, re.M) and re.search(r"^jobs:", text, re.M):
        return "github-workflows"
    if re.search(r"^(steps|stages|jobs|parameters):", text, re.M):
        return "azure-pipelines"
    raise AssertionError("not a complete workflow, action or pipeline: a recipe must work as pasted")


def validate(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    args = [str(CHECK), "--regex-variant", "python", "--builtin-schema", f"vendor.{schema}", str(path)]
    if schema == "azure-pipelines":
        args[1:1] = ["--data-transform", "azure-pipelines"]
    # vendored schemas only; a proxy on a closed loopback port makes sure nothing is fetched
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_docs_have_recipes() -> None:
    kinds = {kind(text) for _, text in recipes()}
    assert kinds == {"github-workflows", "azure-pipelines"}


@pytest.mark.parametrize(("where", "text"), recipes(), ids=[w for w, _ in recipes()])
def test_recipe_is_valid_and_installs_python(where: str, text: str, tmp_path: Path) -> None:
    schema = kind(text)
    path = tmp_path / "recipe.yml"
    path.write_text(text, encoding="utf-8")
    done = validate(path, schema)
    assert done.returncode == 0, f"{where}: {done.stdout}{done.stderr}"
    if "pip install" in text:
        assert "actions/setup-python" in text or "UsePythonVersion" in text, \
            f"{where}: hosted runners refuse a bare pip install (externally-managed-environment)"
    for cat in re.finditer(r"^.*\bcat\b.*summary\.md.*$", text, re.M):
        assert "-f " in cat[0] or "hashFiles(" in text, f"{where}: exit 2/3 writes no summary.md; guard the cat"


@pytest.mark.parametrize(("path", "schema"), [("action.yml", "github-actions"),
                                              ("ci/azure-pipelines/backup-preflight.yml", "azure-pipelines")])
def test_shipped_action_and_template_are_valid(path: str, schema: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    done = validate(ROOT / path, schema)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "setup-python" in text or "UsePythonVersion" in text
    assert "--ci " in text and "--output-dir" in text


def test_a_broken_recipe_is_caught(tmp_path: Path) -> None:
    """The validator can fail: a workflow step with an unknown key does not pass."""
    path = tmp_path / "bad.yml"
    path.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uzes: x\n")
    assert validate(path, "github-workflows").returncode != 0
