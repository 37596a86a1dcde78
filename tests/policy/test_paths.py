"""Field paths: parsing, checking against facts.schema.json, and reading facts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.policy.paths import MISSING, FieldPath, PathError, check_path, check_row_path, split_path


@pytest.mark.parametrize(("text", "segments"), [
    ("agent.version", ["agent", "version"]),
    ("extensions[*].type", ["extensions", "[*]", "type"]),
    ("tags['cost center']", ["tags", "cost center"]),
    ("tags.app-id", ["tags", "app-id"]),
    ("row._col1", ["row", "_col1"]),
])
def test_split_path(text: str, segments: list[str]) -> None:
    assert split_path(text) == segments


@pytest.mark.parametrize(("text", "message"), [
    ("agent..version", "empty segment in field path 'agent..version'"),
    (".agent", "empty segment in field path '.agent'"),
    ("[*].type", "field path '[*].type' cannot start with [*]"),
    ("agent version", "cannot parse field path 'agent version' at character 6"),
    ("agent['x']version", "missing '.' in field path \"agent['x']version\" at character 11"),
    ("agent.", "field path 'agent.' is empty or ends with '.'"),
    ("", "field path '' is empty or ends with '.'"),
])
def test_malformed_paths_say_where(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        split_path(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "message"), [
    ("agent.verison", "unknown field 'agent.verison'; did you mean 'agent.version'?"),
    ("zzzzqqqq", "unknown field 'zzzzqqqq'"),
    ("extensions[*].type", "field 'extensions[*].type' has [*]: iterate arrays with a `count` condition"),
    ("osType[*]", "field 'osType[*]': 'osType' is not an array"),
    ("network.nics", "field 'network' is evaluated only through its operator"),
])
def test_check_path_errors(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        check_path(text, allow_star=text.endswith("[*]"))
    assert str(info.value) == message


def test_star_paths_name_the_array_in_the_error() -> None:
    with pytest.raises(PathError) as info:
        check_path("extensions[*].name[*]", allow_star=True)
    assert str(info.value) == "field 'extensions[*].name[*]': 'extensions[*].name' is not an array"


def test_check_path_flags_map_leaves_and_opaque_facts() -> None:
    tag = check_path("tags.Env")
    assert (tag.map_leaf, tag.opaque, tag.segments) == (True, False, ("tags", "Env"))
    assert check_path("network").opaque is True
    plain = check_path("agent.version")
    assert (plain.map_leaf, plain.opaque) == (False, False)
    assert check_path("extensions[*].type", allow_star=True).segments == ("extensions", "[*]", "type")


def test_getters_tell_missing_from_null() -> None:
    version = check_path("agent.version").get
    assert version({"agent": {"version": "2.2"}}) == "2.2"
    assert version({"agent": {"version": None}}) is None
    assert version({"agent": {}}) is MISSING
    assert version({}) is MISSING
    assert version({"agent": None}) is MISSING
    assert version({"agent": "text"}) is MISSING
    tag = check_path("tags.ENV").get
    assert tag({"tags": {"env": "prod"}}) == "prod"        # tag names ignore case
    assert tag({"tags": {"ENV": "x", "env": "y"}}) == "x"  # an exact key wins
    assert tag({"tags": {}}) is None                      # an absent tag is null, not "not collected"
    assert tag({}) is MISSING


def test_missing_is_one_falsy_value_that_says_what_it_is() -> None:
    assert repr(MISSING) == "MISSING" and not MISSING
    assert type(MISSING)() is MISSING


@pytest.mark.parametrize(("text", "message"), [
    ("softDelete", "field 'softDelete': a resourceGraphQuery policy names its query's columns as row.<column>"),
    ("row", "field 'row': a resourceGraphQuery policy names its query's columns as row.<column>"),
    ("row.items[*].x", "field 'row.items[*].x' has [*]: iterate arrays with a `count` condition"),
])
def test_row_paths(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        check_row_path(text)
    assert str(info.value) == message
    assert check_row_path("row.items[*].x", allow_star=True).segments == ("row", "items", "[*]", "x")
    assert check_row_path("row.sku.name").get({"row": {"sku": {"name": "RS0"}}}) == "RS0"


def test_a_dot_before_a_star_is_an_empty_segment() -> None:
    with pytest.raises(PathError) as info:
        split_path("extensions.[*]")
    assert str(info.value) == "empty segment in field path 'extensions.[*]'"


def test_suggestions_reach_a_loosely_similar_field() -> None:
    with pytest.raises(PathError) as info:
        check_path("schedule")
    assert str(info.value) == "unknown field 'schedule'; did you mean 'backup.schedule'?"


class _Strict(dict):  # type: ignore[type-arg]
    """A map with its own rules for reading a key: `get` honours them, so a column through it is read root by root."""

    def __getitem__(self, key: object) -> object:
        return "own"


_KEYS = st.sampled_from(["a", "b", "A"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=2),
                     lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_KEYS, inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_JSON | st.dictionaries(_KEYS, _JSON, max_size=3), max_size=6),
       st.lists(_KEYS, min_size=1, max_size=3), st.booleans(), st.data())
def test_a_column_is_each_root_read_by_get(roots: list[object], segments: list[str], map_leaf: bool,
                                           data: st.DataObject) -> None:
    """Oracle: the path's own getter on each root. The column is read whole where every value on the way is JSON's
    and the last step is no map key read ignoring case; else it says so (None), and the engine reads root by root."""
    path = FieldPath(".".join(segments), tuple(segments), map_leaf, False)
    if roots and data.draw(st.booleans()):
        roots[data.draw(st.integers(0, len(roots) - 1))] = _Strict(a={"a": 1}, b=2)
    column = path.column(roots)
    if map_leaf or any(isinstance(root, _Strict) for root in roots):
        assert column is None
    else:
        assert column == [path.get(root) for root in roots]
        assert [v is MISSING for v in column] == [path.get(root) is MISSING for root in roots]


def test_a_column_through_a_value_of_another_type_is_read_root_by_root() -> None:
    """A value on the way that is not JSON's (the network model's facts) may read a name its own way."""
    path = FieldPath("network.region", ("network", "region"), False, False)
    assert path.column([{"network": {"region": "x"}}, {"network": None}, {}]) == ["x", MISSING, MISSING]
    assert path.column([{"network": _Strict()}]) is None
    assert FieldPath("tags.Env", ("tags", "Env"), True, False).column([{"tags": {"env": "p"}}]) is None
