"""Project exceptions: each names the file, row and field so the CLI can print one clear line."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


class PrefkitError(Exception):
    """An error the user can fix; the CLI prints `str(error)` and exits non-zero without a traceback."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(PrefkitError):
    """Bad or missing input data (file, row, field)."""


class ArtifactError(PrefkitError):
    """An artifact folder is missing, incomplete, of the wrong stage, or conflicts with a new run."""


class ConfigError(PrefkitError):
    """A configuration value is invalid or inconsistent."""


class DependencyError(PrefkitError):
    """An optional dependency is missing; the message says what to install."""


class ModelError(PrefkitError):
    """A model or tokenizer could not be loaded or is unsuitable."""


def require_module(module: str, install_hint: str):
    """Import an optional module or raise DependencyError naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DependencyError(
            f"'{module}' is not installed ({error})", hint=f"install it with: {install_hint}"
        ) from None


def validated_config(config_class, values, *, file: str | Path | None = None, field_prefix: str = ""):
    """`config_class(**values)` for a pydantic model; its first problem becomes one ConfigError naming
    the field (prefixed by `field_prefix`, e.g. the config section) and the file it came from."""
    from pydantic import ValidationError

    try:
        return config_class(**values)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        # union members add their type to the location ('beta', 'float'): name the field only
        location = [part for part in first["loc"] if not _is_type_tag(part)]
        # a config that nests flat keys into sections (SampleConfig's sampling/engine) names the flat key
        sections = getattr(config_class, "flat_sections", ())
        location = [
            part for index, part in enumerate(location) if part not in sections or index == len(location) - 1
        ]
        if not location and message.split(" ", 1)[0] in config_class.model_fields:
            # a whole-model check says "name problem": name the field it is about
            name, _, message = message.partition(" ")
            location = [name]
        field = ".".join(str(part) for part in (field_prefix, *location) if part != "")
        raise ConfigError(message, file=file, field=field or None) from None


def _is_type_tag(part: object) -> bool:
    """Pydantic's name for a union member in an error location ('float', 'list[float]'), not a field."""
    return isinstance(part, str) and (part in ("float", "int", "str", "bool", "none") or "[" in part)


@contextmanager
def located(*, file: str | Path | None = None, row: int | None = None, field: str | None = None):
    """Add the file / row / field a PrefkitError raised inside lacks (a helper that sees one value, like
    prefkit.chat, cannot know which row of which file it came from). A field the error already names wins,
    except the generic 'completion', which becomes `field` ('chosen', 'rejected')."""
    try:
        yield
    except PrefkitError as error:
        if error.row is not None and error.file is not None:
            raise
        raise type(error)(
            error.message,
            file=error.file or file,
            row=error.row if error.row is not None else row,
            field=field if error.field in (None, "completion") else error.field,
            hint=error.hint,
        ) from None
