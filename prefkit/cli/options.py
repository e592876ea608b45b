"""Command-line flags derived from a stage's pydantic config model, plus `--config FILE` and `--set K=V`.

Each option is declared once, as a model field with `Field(description=...)`; `config_command` turns the
fields (those of nested models too, under their flat names) into typer options whose help is that
description, all defaulting to None so that only the flags actually given override the config file.
The command receives the merged values (`prefkit.config.stage_values`: defaults < --config < flags <
--set) and validates them with the model.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from prefkit.config import all_keys, section_values, stage_values
from prefkit.errors import ConfigError

CONFIG_HELP = "TOML/YAML/JSON file of this command's options (its '{section}' table when it has one); flags and --set override it."
SET_HELP = "Override an option last, KEY=VALUE (repeatable; values read as TOML: 4, 0.5, true, [1, 2]), e.g. --set {example}."


def model_fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by flat name, those of nested config models included (their flat names are what
    config files, `--set` and the flags use; the model's validator nests them)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is not None:
            for inner, inner_info in model_fields(nested).items():
                fields.setdefault(inner, inner_info)  # a key in two sections (seed) keeps the first's help
        else:
            fields[name] = info
    return fields


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """(the click-facing type, whether the option repeats) for a field annotation."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _flag_type(args[0]) if len(args) == 1 else (str, False)  # e.g. float | list[float]: as text
    if origin in (list, tuple):
        return str, True
    if origin is Literal or origin is dict:
        return str, False
    if annotation in (bool, int, float, str):
        return annotation, False
    return str, False


def _default_text(info: Any, default: Any = PydanticUndefined) -> str:
    default = info.default if default is PydanticUndefined else default
    if default in (PydanticUndefined, None, (), []) or "default" in (info.description or ""):
        return ""
    if isinstance(default, bool):
        return " (default: on)" if default else " (default: off)"
    return f" (default: {default})"


def field_parameters(
    fields: Mapping[str, Any],
    names: Mapping[str, tuple[str, ...]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[inspect.Parameter]:
    """One keyword-only typer option per field: `--field-name` (or the names given), help = description."""
    parameters = []
    for name, info in fields.items():
        flag_type, repeats = _flag_type(info.annotation)
        flag_names = (names or {}).get(name) or (f"--{name.replace('_', '-')}",)
        if flag_type is bool and "/" not in flag_names[0]:
            flag_names = (f"{flag_names[0]}/--no-{flag_names[0].removeprefix('--')}", *flag_names[1:])
        default = (defaults or {}).get(name, PydanticUndefined)
        help_text = (info.description or name.replace("_", " ")) + _default_text(info, default)
        annotation = list[flag_type] | None if repeats else flag_type | None
        option = typer.Option(None, *flag_names, help=help_text, show_default=False)
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        )
    return parameters


def flag_value(name: str, info: Any, value: Any) -> Any:
    """A typer value as the model takes it: a dict field's flag is a JSON object, an empty repeat is unset."""
    if isinstance(value, list) and not value:
        return None
    if typing.get_origin(info.annotation) is dict and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"is not valid JSON ({error.msg})", field=name) from None
        if not isinstance(value, dict):
            raise ConfigError("must be a JSON object", field=name)
    return value


def _named_where_set(error: ConfigError, config_file: Path | None, section: str) -> ConfigError:
    """The error, without the config file's name when the option it names was not set in that file
    (a bad `--temperature -1` is the flag's fault, not the file's)."""
    if config_file is None or error.file != str(config_file) or not error.field:
        return error
    if error.field.split(".")[0] in all_keys(section_values(config_file, section)):
        return error
    return type(error)(error.message, row=error.row, field=error.field, hint=error.hint)


def config_command(
    model: type[BaseModel],
    *,
    section: str,
    exclude: tuple[str, ...] = (),
    names: Mapping[str, tuple[str, ...]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    set_example: str = "seed=1",
    config_names: tuple[str, ...] = ("--config",),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command: add a flag per field of `model` (but `exclude`), `--config` and `--set`,
    and call the command with `values` (the merged option values) and `config_file` instead.

    The command's own parameters (arguments, --out, --force, ...) come first in `--help`."""
    fields = {name: info for name, info in model_fields(model).items() if name not in exclude}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command)
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in inspect.signature(command).parameters.values()
            if parameter.name not in ("values", "config_file")
        ]
        extra = [
            inspect.Parameter(
                "config_file",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, *config_names, help=CONFIG_HELP.format(section=section)),
                annotation=Path | None,
            ),
            inspect.Parameter(
                "set_",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, "--set", help=SET_HELP.format(example=set_example)),
                annotation=list[str] | None,
            ),
        ]
        parameters = [*own, *field_parameters(fields, names, defaults), *extra]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            flags = {name: flag_value(name, fields[name], kwargs.pop(name)) for name in fields}
            config_file, overrides = kwargs.pop("config_file"), kwargs.pop("set_") or []
            values = stage_values(config_file, flags, overrides, section=section, defaults=defaults)
            try:
                return command(**kwargs, values=values, config_file=config_file)
            except ConfigError as error:
                raise _named_where_set(error, config_file, section) from None

        del run.__wrapped__  # typer must see the derived signature, not the command's own
        run.__signature__ = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]
        )
        run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return run

    return decorate
