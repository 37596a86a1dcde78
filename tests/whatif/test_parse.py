"""Reading what-if JSON: the REST and az CLI shapes, and a clear InputError for each bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from backup_preflight.errors import InputError
from backup_preflight.whatif import load_what_if, load_what_ifs
from whatif.plan import WHATIF_FIXTURES, az_output, change, write


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_what_if(path)
    return str(caught.value)


def test_rest_example_parses(tmp_path: Path) -> None:
    example = json.loads((WHATIF_FIXTURES / "PostDeploymentWhatIfOnResourceGroup.json").read_text())
    what_if = load_what_if(write(tmp_path / "rest.json", example["responses"]["200"]["body"]))
    assert [(c.change_type, c.resource_id.rsplit("/", 1)[-1]) for c in what_if.changes] == [
        ("Modify", "myExistingIdentity"), ("Create", "myNewIdentity")]
    modify = what_if.changes[0]
    assert modify.after["tags"] == {"myNewTag": "my tag value"}
    assert modify.delta == ({"path": "tags.myNewTag", "propertyChangeType": "Create", "after": "my tag value"},)
    assert modify.source.endswith("rest.json: /properties/changes/0")
    assert what_if.notes == [] and len(what_if.sources[0].sha256) == 64


def test_az_cli_output_parses() -> None:
    what_if = load_what_if(WHATIF_FIXTURES / "az-deployment-group-what-if.json")
    assert [c.change_type for c in what_if.changes] == [
        "Create", "Modify", "Create", "Create", "NoChange", "Ignore", "Unsupported"]
    assert what_if.changes[-1].unsupported_reason.startswith("The resource ID cannot be calculated")
    assert what_if.describe() == [{"path": str(WHATIF_FIXTURES / "az-deployment-group-what-if.json"),
                                   "sha256": what_if.sources[0].sha256}]


def test_gzip_and_change_type_case_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "w.json.gz"
    path.write_bytes(gzip.compress(json.dumps(az_output(change("nochange", "/subscriptions/s/resourceGroups/r")))
                                   .encode()))
    assert load_what_if(path).changes[0].change_type == "NoChange"


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("Note: The result may contain false positive predictions (noise).\n{")
    assert error_of(path).startswith(f"{path}: line 1 column 1: not valid JSON")


def test_empty_file_says_so(tmp_path: Path) -> None:
    # `az … what-if > whatif.json` leaves an empty file when the what-if fails: az prints the error on stderr.
    path = tmp_path / "w.json"
    path.write_text("")
    assert "file is empty, expected JSON" in error_of(path)


def test_no_changes(tmp_path: Path) -> None:
    assert error_of(write(tmp_path / "w.json", {"status": "Succeeded"})) == (
        f"{tmp_path / 'w.json'}: /: no 'changes': not the output of `az deployment … what-if --no-pretty-print` "
        "nor a what-if REST response ({status, properties: {changes}})")


def test_failed_status_quotes_azure(tmp_path: Path) -> None:
    doc = {"status": "Failed", "properties": None, "error": {
        "code": "InvalidTemplate", "message": "Deployment template validation failed.",
        "details": [{"code": "InvalidTemplateDeployment", "message": "The resource 'nsg-app' is not defined."}]}}
    assert error_of(write(tmp_path / "w.json", doc)) == (
        f"{tmp_path / 'w.json'}: /status: the what-if operation did not succeed (status 'Failed'): "
        "InvalidTemplate: Deployment template validation failed. "
        "(InvalidTemplateDeployment: The resource 'nsg-app' is not defined.)")


def test_error_with_succeeded_status_is_still_an_error(tmp_path: Path) -> None:
    doc = az_output()
    doc["error"] = {"error": {"code": "DeploymentWhatIfResourceError", "message": "boom"}}
    assert error_of(write(tmp_path / "w.json", doc)).endswith(
        "/error: the what-if operation reported an error: DeploymentWhatIfResourceError: boom")


def test_every_bad_change_is_reported(tmp_path: Path) -> None:
    doc = az_output(change("Create", ""), {"resourceId": "/x"}, change("Create", "/x", after=[]), 3)  # type: ignore[arg-type]
    message = error_of(write(tmp_path / "w.json", doc))
    assert message.splitlines() == [
        f"{tmp_path / 'w.json'}: /changes/0: change has no 'resourceId' string",
        f"{tmp_path / 'w.json'}: /changes/1: change has no 'changeType' string",
        f"{tmp_path / 'w.json'}: /changes/2/after: 'after' must be an object or null, found an array",
        f"{tmp_path / 'w.json'}: /changes/3: expected a change object, found a number",
    ]


def test_incomplete_plans_become_notes(tmp_path: Path) -> None:
    doc = az_output(change("Frobnicate", "/subscriptions/s/resourceGroups/r"))
    doc["changes"].append({"changeType": "Create", "identifiers": {"uniqueName": "app-reg"},
                           "extension": {"name": "MicrosoftGraph", "version": "1.0"}})
    doc["diagnostics"] = [{"level": "Warning", "code": "NestedDeploymentShortCircuited",
                           "message": "A nested deployment could not be evaluated.", "target": "/x/deployments/inner"}]
    doc["potentialChanges"] = [change("Modify", "/y")]
    what_if = load_what_if(write(tmp_path / "w.json", doc))
    assert what_if.changes == []
    messages = [n["message"] for n in what_if.notes]
    assert messages[0].startswith("unknown what-if changeType 'Frobnicate'")
    assert "extensible resource without an ARM id" in messages[1]
    assert messages[2] == ("what-if warning: NestedDeploymentShortCircuited: "
                           "A nested deployment could not be evaluated.")
    assert what_if.notes[2]["scope"] == "/x/deployments/inner"
    assert messages[3] == "1 potential change(s) what-if could not confirm are not applied"
    assert {n["table"] for n in what_if.notes} == {"what-if"}


@pytest.mark.parametrize("rest", [False, True])
def test_diagnostics_that_are_no_array_are_an_input_error(tmp_path: Path, rest: bool) -> None:
    """They were exit 4 (TypeError: 'int' object is not iterable), or an object's keys were read as diagnostics."""
    doc = az_output(change("Delete", "/a"))
    holder = {"changes": doc.pop("changes")} if rest else doc
    holder["diagnostics"] = 5
    if rest:
        doc["properties"] = holder
    message = error_of(write(tmp_path / "w.json", doc))
    at = "/properties" if rest else ""
    assert message == f"{tmp_path / 'w.json'}: {at}/diagnostics: 'diagnostics' must be an array, found a number"


def test_several_files_merge_in_order_and_report_all_problems(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", az_output(change("Delete", "/a")))
    b = write(tmp_path / "b.json", az_output(change("Delete", "/b")))
    assert [c.resource_id for c in load_what_ifs([a, b]).changes] == ["/a", "/b"]
    with pytest.raises(InputError) as caught:
        load_what_ifs([write(tmp_path / "c.json", {}), tmp_path / "missing.json"])
    assert len(caught.value.problems) == 2
