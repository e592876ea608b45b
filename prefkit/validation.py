"""Shared input rules: finite floats for every option, known failures as one clear error, test kill points.

`FiniteFloat` is the float type of every config model (NaN and inf are refused with the field named);
`check_finite` does the same for plain values (typer options, comma lists). `as_prefkit_error` turns the
failures that bad files cause (decode, I/O, Parquet, safetensors, JSON, YAML) into an InputError, so the
CLI prints one line for them; anything else is a bug and keeps its traceback. `kill_point` lets the kill
tests stop a run at a named moment (only when PREFKIT_TEST_KILL_AT names that moment).
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict

from prefkit.errors import ConfigError, InputError, PrefkitError

KILL_ENV = "PREFKIT_TEST_KILL_AT"
BUG_REPORT_URL = "https://github.com/prefkit/prefkit/issues"
_kill_counts: dict[str, int] = {}


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]
"""A float that is not NaN or +-inf (for a float field of a model that does not use STRICT_CONFIG)."""

STRICT_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The pydantic settings of every prefkit config: unknown keys and NaN/inf floats are refused."""


def refuse_non_finite(values: Any, field: str) -> None:
    """ConfigError naming the first NaN/inf float inside free-form options (labeler or evaluator options)."""
    if isinstance(values, float):
        check_finite(values, field)
    elif isinstance(values, Mapping):
        for key, item in values.items():
            refuse_non_finite(item, f"{field}.{key}")
    elif isinstance(values, list | tuple):
        for index, item in enumerate(values):
            refuse_non_finite(item, f"{field}[{index}]")


def check_finite(value: float | None, field: str) -> float | None:
    """`value` unchanged, or ConfigError naming `field` when it is NaN or infinite (None passes)."""
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"must be a finite number, got {value}", field=field)
    return value


def kill_point(name: str) -> None:
    """SIGKILL this process at a named point when PREFKIT_TEST_KILL_AT is `name` or `name:N` (N-th hit).

    A test hook for the kill-and-resume tests: without the variable this is one dictionary lookup.
    """
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if _kill_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _error_file(error: BaseException) -> str | None:
    filename = getattr(error, "filename", None)
    return str(filename) if filename else None


def as_prefkit_error(error: BaseException) -> PrefkitError | None:
    """The one-line InputError for a failure caused by a bad or unreadable file, or None (then it is a bug)."""
    if isinstance(error, PrefkitError):
        return error
    name = type(error).__name__
    module = type(error).__module__ or ""
    if isinstance(error, UnicodeDecodeError):
        return InputError(
            f"is not UTF-8 text (byte {error.start}: {error.reason})", hint="save the file as UTF-8"
        )
    if isinstance(error, FileNotFoundError):
        return InputError("file or folder not found", file=_error_file(error))
    if isinstance(error, PermissionError):
        return InputError("permission denied", file=_error_file(error), hint="choose a writable location")
    if isinstance(error, IsADirectoryError | NotADirectoryError):
        return InputError(f"{error.strerror or name}", file=_error_file(error))
    if isinstance(error, json.JSONDecodeError):
        return InputError(f"not valid JSON ({error.msg} at line {error.lineno})")
    if isinstance(error, OSError) and error.errno is not None:
        return InputError(f"{error.strerror or name}", file=_error_file(error))
    first_line = (str(error).strip().splitlines() or [name])[0][:300]
    if module.startswith(("polars", "pyarrow")) or name in ("ArrowInvalid", "ArrowIOError"):
        return InputError(f"cannot read Parquet/Arrow data ({name}: {first_line})")
    if module.startswith("safetensors") or name == "SafetensorError":
        return InputError(f"cannot read safetensors weights ({first_line})", hint="the file may be truncated")
    if module.startswith("yaml"):
        return InputError(f"not valid YAML ({first_line})")
    return None


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Name `path` in any read failure inside the block (corrupt Parquet, bad UTF-8, truncated weights)."""
    try:
        yield
    except PrefkitError:
        raise
    except Exception as error:
        known = as_prefkit_error(error)
        if known is None:
            raise
        raise type(known)(
            known.message, file=known.file or path, row=known.row, field=known.field, hint=known.hint
        ) from None


def check_no_nulls(frame: Any, columns: Iterable[str], file: str | Path) -> None:
    """InputError naming the first row (counted from 1) whose value in one of `columns` is null."""
    for column in columns:
        if column in frame.columns and frame[column].null_count():
            row = int(frame[column].is_null().arg_max()) + 1
            raise InputError("is null", file=file, row=row, field=column)


def check_safetensors(folder: str | Path) -> None:
    """InputError naming a truncated or corrupt *.safetensors file in a model folder (reads headers only)."""
    from safetensors import safe_open

    for file in sorted(Path(folder).glob("*.safetensors")):
        with reading(file), safe_open(str(file), framework="pt"):
            pass
