"""Prompt sets from anywhere: `builtin:NAME`, JSONL/JSON/Parquet files, prompts artifacts, CSV files,
`datasets` folders and hub ids, read into validated prompt records (prefkit.records)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from prefkit.artifacts import DATA_FILE, MANIFEST_FILE, read_manifest
from prefkit.datasets import builtin_prompt_file, is_builtin
from prefkit.errors import InputError
from prefkit.hub import looks_like_hub_id
from prefkit.ingest.columns import apply_columns, parse_columns
from prefkit.ingest.sources import SourceOptions, SourceRows, read_hub, read_source
from prefkit.models import cache_home
from prefkit.records import PromptRecord, prompt_records

HUB_COPIES = "hub"


def resolve_prompts(spec: str | Path) -> Path:
    """A prompts path, `builtin:NAME` for a shipped set (see data_cards/), or a hub dataset id (its train
    split, copied once into $PREFKIT_HOME/hub/)."""
    text = str(spec)
    if is_builtin(text):
        return builtin_prompt_file(text)
    if looks_like_hub_id(text) and not Path(text).exists():
        return local_copy(text)  # a hub id: read once into a local `datasets` folder
    return Path(text)


def read_prompts(path: str | Path) -> list[PromptRecord]:
    """Read prompts from JSONL, JSON (a list), Parquet, a prompts artifact or `builtin:NAME`; rows are validated.

    A row holds `prompt` (a string or a list of chat messages ending with a user turn) or `messages` (a
    chat transcript; a trailing assistant turn becomes the `reference`), plus optional `prompt_id` and
    `reference`. A file holds string prompts or conversations, never both.
    """
    path = resolve_prompts(path)
    if needs_ingest(path):  # CSV, `datasets` folders and hub ids are read by prefkit.ingest
        source = prompt_rows(path)
        return prompt_records(list(zip(source.row_numbers, source.rows, strict=True)), path, first_row=1)
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        artifact_data = path / DATA_FILE
        if not artifact_data.exists():
            raise InputError("folder has no data.parquet; give a JSONL/JSON/Parquet prompts file", file=path)
        if (path / MANIFEST_FILE).exists():
            stage = read_manifest(path).stage
            if stage not in ("prompts", "candidates", "preferences"):
                raise InputError(f"is a '{stage}' artifact, not a prompts file", file=path)
        return prompt_records(pl.read_parquet(artifact_data).to_dicts(), artifact_data, first_row=1)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return prompt_records(_read_jsonl(path), path, first_row=1)
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON ({error.msg} at line {error.lineno})", file=path) from None
        if not isinstance(rows, list):
            raise InputError("a JSON prompts file must hold a list of objects", file=path)
        return prompt_records(rows, path, first_row=1)  # rows count from 1, as in JSONL and Parquet
    if suffix == ".parquet":
        return prompt_records(pl.read_parquet(path).to_dicts(), path, first_row=1)
    raise InputError("unsupported prompts format; use .jsonl, .json or .parquet", file=path)


def _read_jsonl(path: Path) -> list[object]:
    rows: list[object] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise InputError(
                    f"line {number} is not valid JSON ({error.msg})", file=path, row=number
                ) from None
    return rows


def is_datasets_folder(path: Path) -> bool:
    """True for a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def needs_ingest(path: Path) -> bool:
    """True for what read_prompts' own readers do not read: CSV, `datasets` folders, hub ids."""
    if not path.exists():
        return looks_like_hub_id(str(path))
    return path.suffix.lower() == ".csv" or is_datasets_folder(path)


def prompt_rows(
    source: str | Path,
    *,
    columns: str | Mapping[str, str] | None = None,
    options: SourceOptions | None = None,
) -> SourceRows:
    """Raw prompt rows (dicts with `prompt` / `messages` / `instruction` ...) of any source."""
    return apply_columns(read_source(source, options), parse_columns(columns))


def local_copy(dataset_id: str, options: SourceOptions | None = None) -> Path:
    """A `datasets` folder holding a hub data set (read once, then reused), so that stages can hash and
    re-read it like any local folder."""
    options = options or SourceOptions()
    key = "|".join(str(part) for part in (dataset_id, options.split, options.subset, options.revision))
    name = dataset_id.replace("/", "__") + "-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    target = cache_home() / HUB_COPIES / name
    if is_datasets_folder(target):
        return target
    rows = read_hub(dataset_id, options)
    import datasets

    tmp = target.parent / f".{target.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.Dataset.from_list(rows.rows).save_to_disk(str(tmp))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    return target


def materialise_prompts(
    source: str | Path,
    *,
    columns: str | Mapping[str, str] | None = None,
    options: SourceOptions | None = None,
) -> Path:
    """A local JSONL of a prompt set read with `--columns` / `--split` / `--subset` / `--revision`,
    validated first (errors name the original file and row) and keyed by content under
    `$PREFKIT_HOME/imports/`, so stages hash and re-read it like any prompts file."""
    spec = str(source)
    local = spec if is_builtin(spec) or Path(spec).exists() else None
    rows = prompt_rows(resolve_prompts(local) if local else spec, columns=columns, options=options)
    records = prompt_records(list(zip(rows.row_numbers, rows.rows, strict=True)), Path(rows.origin))
    lines = [
        json.dumps(
            {"prompt_id": r.prompt_id, "prompt": r.prompt, "reference": r.reference}, ensure_ascii=False
        )
        for r in records
    ]
    text = "\n".join(lines) + "\n"
    target = cache_home() / "imports" / f"prompts-{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return target
