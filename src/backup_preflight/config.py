"""The configuration file: the flags a pipeline would otherwise repeat, kept in the repository.

`backup-preflight.toml` (or a `[tool.backup-preflight]` table in `pyproject.toml`) in the working
directory, or the file given with `--config`. Keys are the long flag names; a flag given on the
command line wins; paths are relative to the file. It is validated against config.schema.json like
every other input, and the effective settings are recorded in results.json.
"""

from __future__ import annotations

import argparse
import hashlib
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from jsonschema import Draft202012Validator

from backup_preflight.errors import InputError, Problem, schema_problems
from backup_preflight.policy.parameters import Override

FILE_NAME = "backup-preflight.toml"
PYPROJECT = "pyproject.toml"
#: Keys whose values are paths, resolved against the folder of the configuration file.
PATH_KEYS = frozenset({"policies", "add-policies", "parameters", "exemptions", "baseline", "output-dir"})
#: Keys that take one or more values (a string or an array in the file).
LIST_KEYS = frozenset({"subscription", "management-group", "policies", "add-policies"})
#: The scope is one setting: a source chosen on the command line replaces the file's scope whole.
SCOPE_KEYS = ("subscription", "management-group")
SOURCE_DESTS = frozenset({"demo", "snapshot", "subscription", "management_group"})
#: Keys every command has; they alone do not make a command read the file.
GLOBAL_KEYS = frozenset({"quiet", "verbose"})
#: Where the reports go and how much is logged do not shape results: not recorded in them, so two
#: scans of the same snapshot stay byte-identical but for their times.
UNRECORDED = GLOBAL_KEYS | {"output-dir"}


@cache
def schema() -> dict[str, Any]:
    text = resources.files("backup_preflight").joinpath("config.schema.json").read_text("utf-8")
    return msgspec.json.decode(text)


def keys() -> tuple[str, ...]:
    return tuple(schema()["properties"])


@dataclass(slots=True)
class Config:
    """A validated configuration file (or none): its values converted to what the flags hold."""

    file: Path | None = None
    sha256: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    #: `--param`-style overrides from the `param` table, named by file and key for error messages.
    params: dict[str, Override] = field(default_factory=dict)


def find(explicit: Path | None, cwd: Path) -> Path | None:
    """`--config FILE`, else backup-preflight.toml, else a pyproject.toml with our table, else none."""
    if explicit is not None:
        return explicit
    own = cwd / FILE_NAME
    if own.is_file():
        return own
    pyproject = cwd / PYPROJECT
    if pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return pyproject if b"backup-preflight" in _read(pyproject, quiet=True) else None
        return pyproject if "backup-preflight" in _tools(doc) else None
    return None


def _tools(doc: dict[str, Any]) -> dict[str, Any]:
    """pyproject.toml's `tool` table; {} when there is none, or `tool` is no table (`tool = 5` is valid TOML)."""
    tools = doc.get("tool")
    return tools if isinstance(tools, dict) else {}


def _read(path: Path, quiet: bool = False) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        if quiet:
            return b""
        raise InputError.one(str(path), "", f"cannot read the configuration file: {exc.strerror or exc}") from None


def load(path: Path) -> Config:
    """Parse and validate one file; every problem names the file and the key."""
    label = str(path)
    raw = _read(path)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError.one(label, f"byte {exc.start}", "not UTF-8 text, expected TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError.one(label, "", f"not valid TOML: {exc}") from None
    prefix = ""
    if path.name == PYPROJECT:
        prefix = "/tool/backup-preflight"
        doc = _tools(doc).get("backup-preflight")
        if not isinstance(doc, dict):
            raise InputError.one(label, "/tool", "no [tool.backup-preflight] table")
    problems = [Problem(p.file, prefix + p.place if p.place != "/" else prefix or "/", p.reason)
                for p in schema_problems(_validator(), doc, label)]
    if problems:
        raise InputError(problems)
    base = path.parent
    values = {key: _convert(key, value, base) for key, value in doc.items() if key != "param"}
    params = {name: Override(value, label, f"{prefix}/param/{name}", from_text=False)
              for name, value in doc.get("param", {}).items()}
    return Config(file=path, sha256=hashlib.sha256(raw).hexdigest(), values=values, params=params)


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _convert(key: str, value: Any, base: Path) -> Any:
    if key in LIST_KEYS:
        items = [value] if isinstance(value, str) else list(value)
        return [base / Path(v).expanduser() for v in items] if key in PATH_KEYS else items
    return base / Path(value).expanduser() if key in PATH_KEYS else value


def given_on_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The dests the command line set itself: parse again with every default suppressed."""
    _suppress_defaults(parser)
    return set(vars(parser.parse_args(argv)))


def _suppress_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _suppress_defaults(sub)


def wants_config(args: argparse.Namespace) -> bool:
    """Only commands with a setting the file can hold read it (demo-estate, completion do not)."""
    return any(hasattr(args, key.replace("-", "_")) for key in keys() if key not in GLOBAL_KEYS)


def apply(config: Config, args: argparse.Namespace, given: set[str]) -> list[str]:
    """Fill in what the command line left unset; return the keys taken from the file."""
    taken = []
    for key, value in config.values.items():
        dest = key.replace("-", "_")
        if not hasattr(args, dest) or dest in given:
            continue
        if key in SCOPE_KEYS and given & SOURCE_DESTS:
            continue
        setattr(args, dest, value)
        taken.append(key)
    if config.params and hasattr(args, "param"):
        args.config_params = config.params
        taken.append("param")
    return taken


def effective(config: Config, args: argparse.Namespace, taken: list[str]) -> dict[str, Any]:
    """What results.json records: the file (path and SHA-256), the keys it set, the settings in force."""
    settings = {key: _plain(getattr(args, key.replace("-", "_"))) for key in keys()
                if key != "param" and key not in UNRECORDED and hasattr(args, key.replace("-", "_"))}
    if hasattr(args, "param"):
        settings["param"] = {**{name: o.value for name, o in config.params.items()},
                             **dict(item.partition("=")[::2] for item in args.param)}
    return {"file": str(config.file) if config.file else None, "sha256": config.sha256,
            "fromFile": sorted(taken), "settings": settings}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def resolve(args: argparse.Namespace, parser_factory: Callable[[], argparse.ArgumentParser],
            argv: Sequence[str] | None, cwd: Path) -> dict[str, Any] | None:
    """Find, load and apply the configuration for this command; None when the command takes none."""
    if not wants_config(args):
        return None
    path = find(getattr(args, "config", None), cwd)
    config = load(path) if path is not None else Config()
    taken = apply(config, args, given_on_command_line(parser_factory(), argv))
    return effective(config, args, taken)
