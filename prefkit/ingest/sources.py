"""Rows from wherever a user keeps a data set: JSONL / JSON / CSV / Parquet files, `datasets` folders
(`save_to_disk`, Dataset or DatasetDict), prefkit artifact folders, hub dataset ids, or Python objects.

Every reader returns the same `SourceRows`: plain dict rows plus the row number each came from (the line
for JSONL, the data row for CSV, Parquet and JSON lists, all counted from 1), so later errors can name
the file, row and field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefkit.artifacts import DATA_FILE, MANIFEST_FILE, read_manifest
from prefkit.errors import InputError, require_module
from prefkit.hub import hub_reachable, looks_like_hub_id, offline_setting

FILE_KINDS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
DATASETS_INSTALL = "pip install 'datasets>=3'"


@dataclass(frozen=True)
class SourceOptions:
    """Which part of a source to read: a split and subset (config) of a hub id or DatasetDict, a revision."""

    split: str | None = None
    subset: str | None = None
    revision: str | None = None


@dataclass
class SourceRows:
    """Rows read from one source, with their 1-based row numbers and where they came from."""

    rows: list[dict[str, Any]]
    row_numbers: list[int]
    origin: str  # the file, folder or hub id (used in error messages and the manifest)
    kind: str  # jsonl | json | csv | parquet | datasets-folder | prefkit-artifact | hub | python
    artifact_stage: str | None = None  # set for prefkit artifact folders
    details: dict[str, Any] = field(default_factory=dict)  # split, subset, revision actually read

    @property
    def columns(self) -> list[str]:
        """Column names in first-seen order over all rows."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)


def read_source(source: Any, options: SourceOptions | None = None) -> SourceRows:
    """Read rows from a path, a hub id, a `datasets.Dataset`/`DatasetDict` or a list of dicts."""
    options = options or SourceOptions()
    if isinstance(source, list | tuple):
        return _python_rows(list(source))
    if not isinstance(source, str | Path):
        if hasattr(source, "to_dicts"):  # a polars DataFrame
            return _python_rows(source.to_dicts())
        if hasattr(source, "to_list") or hasattr(source, "keys"):
            return _from_dataset_object(source, options, origin="<datasets object>", kind="python")
        raise InputError(f"cannot read preference rows from a {type(source).__name__}")
    path = Path(source).expanduser()
    if path.exists():
        return read_path(path, options)
    text = str(source)
    if looks_like_hub_id(text):
        return read_hub(text, options)
    raise InputError(
        "does not exist",
        file=text,
        hint="give a JSONL/JSON/CSV/Parquet file, a `datasets` save_to_disk folder or a hub id like org/name",
    )


def read_path(path: Path, options: SourceOptions) -> SourceRows:
    """Rows of a local file or folder (a prefkit artifact or a `datasets` save_to_disk folder)."""
    if path.is_dir():
        return _read_folder(path, options)
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"unsupported file type '{path.suffix or '(none)'}'",
            file=path,
            hint="use .jsonl, .json, .csv or .parquet, a `datasets` folder or a hub id",
        )
    reader = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet}[kind]
    rows, numbers = reader(path)
    return SourceRows(rows=rows, row_numbers=numbers, origin=str(path), kind=kind)


def _read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    rows, numbers = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"is not valid JSON ({error.msg})", file=path, row=number) from None
            _check_object(row, path, number)
            rows.append(row)
            numbers.append(number)
    return rows, numbers


def _read_json(path: Path) -> tuple[list[dict], list[int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"is not valid JSON ({error.msg} at line {error.lineno})", file=path) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]  # the {"data": [...]} wrapper some exporters write
    if not isinstance(data, list):
        raise InputError("a JSON file must hold a list of objects (or use JSONL)", file=path)
    for number, row in enumerate(data, start=1):
        _check_object(row, path, number)
    return data, list(range(1, len(data) + 1))


def _read_csv(path: Path) -> tuple[list[dict], list[int]]:
    import polars as pl

    try:
        # every cell as text: a prompt "42" stays a string; numeric columns are converted where used
        frame = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as error:
        raise InputError(f"is not a readable CSV file ({str(error).splitlines()[0]})", file=path) from None
    return frame.to_dicts(), list(range(1, frame.height + 1))


def _read_parquet(path: Path) -> tuple[list[dict], list[int]]:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(
            f"is not a readable Parquet file ({str(error).splitlines()[0]})", file=path
        ) from None
    return frame.to_dicts(), list(range(1, frame.height + 1))


def _check_object(row: Any, path: Path, number: int) -> None:
    if not isinstance(row, dict):
        raise InputError(f"expected an object, got {type(row).__name__}", file=path, row=number)


def _read_folder(path: Path, options: SourceOptions) -> SourceRows:
    if (path / MANIFEST_FILE).exists() and (path / DATA_FILE).exists():
        rows, numbers = _read_parquet(path / DATA_FILE)
        stage = read_manifest(path).stage
        return SourceRows(rows, numbers, str(path), "prefkit-artifact", artifact_stage=stage)
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        datasets = require_module("datasets", DATASETS_INSTALL)
        try:
            loaded = datasets.load_from_disk(str(path))
        except (OSError, ValueError) as error:
            raise InputError(
                f"is not a readable `datasets` folder ({_first_line(error)})", file=path
            ) from None
        return _from_dataset_object(loaded, options, origin=str(path), kind="datasets-folder")
    if (path / DATA_FILE).exists():
        rows, numbers = _read_parquet(path / DATA_FILE)
        return SourceRows(rows, numbers, str(path / DATA_FILE), "parquet")
    raise InputError(
        "is a folder, but neither a prefkit artifact nor a `datasets` save_to_disk folder",
        file=path,
        hint="give a JSONL/JSON/CSV/Parquet file or a folder written by Dataset.save_to_disk",
    )


def read_hub(dataset_id: str, options: SourceOptions) -> SourceRows:
    """Rows of a hub dataset through `datasets.load_dataset`; offline, one line saying how to pass a copy."""
    local_copy_hint = (
        f"offline: download it where you have network (datasets.load_dataset('{dataset_id}')"
        ".save_to_disk('FOLDER')) and pass FOLDER, or pass a JSONL/Parquet copy"
    )
    datasets = require_module("datasets", DATASETS_INSTALL)
    # offline, `datasets` can still serve a cached copy without touching the network (fast);
    # with no network and no offline setting it would retry for a minute, so that case fails here
    if not offline_setting() and not hub_reachable():
        raise InputError("the Hugging Face Hub cannot be reached", file=dataset_id, hint=local_copy_hint)
    split = options.split or "train"
    try:
        loaded = datasets.load_dataset(
            dataset_id, name=options.subset, split=split, revision=options.revision
        )
    except (ConnectionError, OSError) as error:
        if offline_setting():
            raise InputError(
                "is a hub dataset id, but HF_HUB_OFFLINE is set and no cached copy exists",
                file=dataset_id,
                hint=local_copy_hint,
            ) from None
        raise InputError(f"could not load hub dataset ({_first_line(error)})", file=dataset_id) from None
    except ValueError as error:  # unknown split or subset
        raise InputError(_first_line(error), file=dataset_id, field="split/subset") from None
    rows = _from_dataset_object(loaded, options, origin=dataset_id, kind="hub")
    rows.details.update({"split": split, "subset": options.subset, "revision": options.revision})
    return rows


def _from_dataset_object(loaded: Any, options: SourceOptions, *, origin: str, kind: str) -> SourceRows:
    details: dict[str, Any] = {}
    if hasattr(loaded, "keys") and not hasattr(loaded, "to_list"):  # a DatasetDict
        splits = list(loaded.keys())
        split = options.split or ("train" if "train" in splits else splits[0] if len(splits) == 1 else None)
        if split is None or split not in splits:
            wanted = f"split '{options.split}' is not in it" if options.split else "it holds several splits"
            raise InputError(
                f"{wanted} (splits: {', '.join(splits)})",
                file=origin,
                field="split",
                hint="pick one with --split",
            )
        loaded = loaded[split]
        details["split"] = split
    rows = loaded.to_list()
    return SourceRows(rows, list(range(1, len(rows) + 1)), origin, kind, details=details)


def _python_rows(rows: Sequence[Any]) -> SourceRows:
    for number, row in enumerate(rows, start=1):
        _check_object(row, Path("<rows>"), number)
    return SourceRows(list(rows), list(range(1, len(rows) + 1)), "<rows>", "python")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__
