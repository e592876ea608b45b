"""Prompt sets from anywhere: CSV files, `datasets` folders and hub ids next to prefkit's own JSONL/JSON/
Parquet/artifact readers. Rows come back raw (renamed by `--columns`); prefkit.records validates them."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from prefkit.ingest.columns import apply_columns, parse_columns
from prefkit.ingest.hub import looks_like_hub_id
from prefkit.ingest.sources import SourceOptions, SourceRows, read_hub, read_source

HUB_COPIES = "hub"


def is_datasets_folder(path: Path) -> bool:
    """True for a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def needs_ingest(path: Path) -> bool:
    """True for what prefkit.records' own readers do not read: CSV, `datasets` folders, hub ids."""
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
    from prefkit.models import cache_home

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
    import json

    from prefkit.datasets import resolve_prompts
    from prefkit.models import cache_home
    from prefkit.records import _prompts_from_rows

    spec = str(source)
    local = spec if spec.startswith("builtin:") or Path(spec).exists() else None
    rows = prompt_rows(resolve_prompts(local) if local else spec, columns=columns, options=options)
    records = _prompts_from_rows(
        list(zip(rows.row_numbers, rows.rows, strict=True)), Path(rows.origin), first_row=1
    )
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
