"""The project's layout holds: the catalog at the top level ships in the wheel, validates with no
argument, resolves its `$schema` from a checkout, stays in step with its docs page; reports/ keeps
generated files out of git."""

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from backup_preflight.policy.loader import bundled_policy_dir, policy_files, policy_schema

from cli_helpers import run

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "policies"
SCHEMA = CATALOG / "policy.schema.json"
CATALOG_FILES = sorted(p.name for p in CATALOG.glob("*.json") if p != SCHEMA)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built offline from a copy of the checkout (the build writes into its source tree)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    for name in ("src", "policies"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(tree)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [built] = out.glob("backup_preflight-*.whl")
    return zipfile.ZipFile(built)


def test_the_catalog_is_at_the_top_level_and_nowhere_else() -> None:
    assert len(CATALOG_FILES) >= 17 and (CATALOG / "README.md").is_file()
    assert not (ROOT / "src" / "backup_preflight" / "policies").exists()


def test_the_wheel_ships_the_top_level_catalog_as_backup_preflight_policies(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    shipped = sorted(Path(n).name for n in names if n.startswith("backup_preflight/policies/")
                     and n.endswith(".json") and n != "backup_preflight/policies/policy.schema.json")
    assert shipped == CATALOG_FILES
    assert "backup_preflight/policies/README.md" in names
    assert {"backup_preflight/probes/linux.sh", "backup_preflight/probes/windows.ps1"} <= set(names)
    for name in CATALOG_FILES:  # the bytes of the checkout, not a stale copy
        assert wheel.read(f"backup_preflight/policies/{name}") == (CATALOG / name).read_bytes()
    assert wheel.read("backup_preflight/policies/policy.schema.json") == SCHEMA.read_bytes()
    assert not any(n.startswith(("policies/", "reports/", "tests/")) for n in names)


def test_the_installed_package_finds_the_same_catalog() -> None:
    installed = resources.files("backup_preflight.policies")
    assert sorted(p.name for p in installed.iterdir() if p.name.endswith(".json")) == sorted(
        [*CATALOG_FILES, SCHEMA.name])
    files, problems = policy_files([bundled_policy_dir()])
    assert problems == [] and [p.name for p in files] == CATALOG_FILES


def test_validate_without_arguments_validates_the_bundled_catalog(tmp_path: Path) -> None:
    proc = run("validate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{len(CATALOG_FILES)} policies valid"


@pytest.mark.parametrize("name", CATALOG_FILES)
def test_each_policy_schema_reference_resolves_from_a_checkout_to_the_shipped_schema(name: str) -> None:
    ref = json.loads((CATALOG / name).read_text())["$schema"]
    assert (CATALOG / ref).resolve() == SCHEMA.resolve()
    assert json.loads(SCHEMA.read_text()) == policy_schema()


def test_each_policy_schema_reference_resolves_inside_the_installed_package(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for name in CATALOG_FILES:
        ref = json.loads(wheel.read(f"backup_preflight/policies/{name}"))["$schema"]
        target = Path("backup_preflight/policies", ref).as_posix().replace("/./", "/")
        assert target in names, (name, ref)
        assert json.loads(wheel.read(target)) == policy_schema()


def test_a_schema_file_beside_policies_is_not_taken_for_a_policy(tmp_path: Path) -> None:
    shutil.copy(CATALOG / CATALOG_FILES[0], tmp_path / CATALOG_FILES[0])
    (tmp_path / "policy.schema.json").write_text(run("schema", "policy").stdout)
    proc = run("validate", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 policies valid"


def test_catalog_docs_page_and_schema_are_in_step() -> None:
    page = (ROOT / "docs" / "policies.md").read_text()
    assert run("policies", "--format", "markdown").stdout == page
    docs = [json.loads((CATALOG / n).read_text()) for n in CATALOG_FILES]
    for doc in docs:
        assert f"## {doc['id']}" in page
    causes = policy_schema()["properties"]["cause"]["enum"]
    assert sorted({d["cause"] for d in docs}) == sorted(causes)  # every cause the schema knows has a policy
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{c}`" in page for c in causes) and "docs/policies.md" in readme


def test_reports_folder_keeps_generated_files_out_of_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    for generated in ("reports/results.json", "reports/junit.xml", "reports/report.html", "reports/summary.md"):
        assert ignored(generated), generated
    assert not ignored("reports/README.md") and not ignored("reports/.gitignore")
    tracked = subprocess.run(["git", "ls-files", "reports"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert sorted(tracked) == ["reports/.gitignore", "reports/README.md"]


def test_constraints_pin_every_dependency_within_its_range() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]  # test, bench
    wanted = [Requirement(r) for r in (*project["dependencies"], *extras)]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    for req in wanted:
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned, prereleases=True), f"{req.name}=={pinned} is outside {req.specifier}"
    assert "orjson" not in pins


def test_ci_runs_the_readme_test_command_verbatim_with_the_constraints() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv && ")]
    install, tests = commands[:2]  # the quick start: two commands
    assert "-c constraints.txt" in install and install.endswith("backup-preflight scan --demo")
    assert "-c constraints.txt" in tests and tests.endswith("python -m pytest")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
