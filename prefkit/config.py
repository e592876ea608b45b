"""Config files and `--set` overrides: the one loader and the one KEY=VALUE parser of every command.

Every stage builds its config the same way (`stage_values`): the model's defaults, then the `--config`
file, then the flags given on the command line, then `--set key=value` overrides, the later winning.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from prefkit.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def field_from(model: type[BaseModel], name: str, default: Any = PydanticUndefined) -> Any:
    """Reuse `model`'s field `name` (its description, i.e. its `--help` text, and its constraints) in
    another config, with another default where given: the option stays declared once, in `model`.

    `demo: int = field_from(TrainConfig, "epochs", 3)` in a class body."""
    source = model.model_fields[name]
    if default is PydanticUndefined:
        return FieldInfo.merge_field_infos(source)
    return FieldInfo.merge_field_infos(source, default=default)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML, YAML or JSON file as a dict; a missing file, bad syntax or a non-mapping is a ConfigError
    naming the file (and the line, for syntax errors)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError("config must be .toml, .yaml, .yml or .json", file=path)
    if not path.is_file():
        raise ConfigError("config file not found", file=path)
    text = path.read_text()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(
            f"cannot parse {suffix[1:].upper()} ({_syntax_problem(error)})", file=path
        ) from None
    if data is None and suffix in (".yaml", ".yml"):
        data = {}  # an empty YAML file is an empty mapping
    if not isinstance(data, dict):
        raise ConfigError(
            f"must hold a mapping of options at the top level, not a {type(data).__name__}", file=path
        )
    return data


def _syntax_problem(error: Exception) -> str:
    """One line saying what is wrong and on which line (YAML marks carry it; TOML/JSON messages say it)."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}: {getattr(error, 'problem', None) or error}"
    return str(error).splitlines()[0]


def parse_value(raw: str) -> Any:
    """A command-line value as TOML would read it (4, 0.5, true, "x", [0.1, 0.2]); YAML's spellings
    (.inf, .nan, yes, unquoted lists [a, b]) are accepted next; anything else stays the string given."""
    raw = raw.strip()
    if not raw:
        return ""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    # YAML reads 'a: b' as a mapping and '# x' as nothing: a plain string was meant
    return raw if value is None or isinstance(value, dict) else value


_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def parse_overrides(items: Iterable[str], *, flag: str = "--set", typed: bool = True) -> dict[str, Any]:
    """`["rounds=2", "label.length_penalty=0.01"]` -> `{"rounds": 2, "label.length_penalty": 0.01}`
    (dotted keys kept; values read by `parse_value`, or kept as strings when not `typed`, for an options
    model that converts them itself); an item without `key=` is a ConfigError naming `flag`."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not _KEY.match(key):
            raise ConfigError(f"'{item}' must look like KEY=VALUE or section.key=value", field=flag)
        overrides[key] = parse_value(raw) if typed else raw.strip()
    return overrides


def apply_overrides(
    data: Mapping[str, Any], overrides: Mapping[str, Any], *, file: str | Path | None = None
) -> dict[str, Any]:
    """A copy of `data` with each dotted key set (`label.seed` sets `data["label"]["seed"]`, making
    the section when missing); a key that descends into a value that is not a section is a ConfigError."""
    result = _deep_copy(data)
    for dotted, value in overrides.items():
        target = result
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError("is not a section", file=file, field=dotted)
        target[leaf] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, Mapping) else value for key, value in data.items()}


def section_values(path: str | Path, section: str | None) -> dict[str, Any]:
    """A config file's `[section]` table when it has one (an `iterate` run config serves every stage),
    else the whole file."""
    data = load_config_file(path)
    if section is not None and isinstance(data.get(section), dict):
        return data[section]
    return data


def stage_values(
    config_file: str | Path | None,
    flags: Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    section: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values a stage config is validated from: `defaults` < the config file (its `[section]`
    table when it has one) < `flags` that were given (None = not given) < `--set` overrides."""
    values = dict(defaults or {})
    if config_file is not None:
        values.update(section_values(config_file, section))
    values.update({key: value for key, value in flags.items() if value is not None})
    return apply_overrides(values, parse_overrides(overrides))


def all_keys(data: Mapping[str, Any]) -> set[str]:
    """Every key of a mapping and of the mappings inside it (the options a config file sets)."""
    keys = set(data)
    for value in data.values():
        if isinstance(value, Mapping):
            keys |= all_keys(value)
    return keys
