"""The records passed between stages, their Parquet schemas, and validation with file/row/field errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from prefkit.artifacts import DATA_FILE, MANIFEST_FILE, Manifest, read_manifest
from prefkit.datasets import resolve_prompts
from prefkit.errors import ArtifactError, InputError
from prefkit.validation import reading

PROMPTS_SCHEMA: dict[str, pl.DataType] = {"prompt_id": pl.String(), "prompt": pl.String()}
CANDIDATES_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "prompt": pl.String(),
    "completions": pl.List(pl.String()),
    "completion_tokens": pl.List(pl.Int64()),
    "completion_logprobs": pl.List(pl.Float64()),
}
PREFERENCES_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "prompt": pl.String(),
    "chosen": pl.String(),
    "rejected": pl.String(),
    "score_chosen": pl.Float64(),
    "score_rejected": pl.Float64(),
    "len_chosen": pl.Int64(),
    "len_rejected": pl.Int64(),
}
# Written by `prefkit label` since the truncation option; optional on read (older artifacts lack them).
# finish_*: the sampler's finish reason (stop / length; null when unrecorded); eos_*: whether the
# trainer closes that completion with an EOS (false only for a cut completion under `no-eos`).
PREFERENCES_TRUNCATION_SCHEMA: dict[str, pl.DataType] = {
    "finish_chosen": pl.String(),
    "finish_rejected": pl.String(),
    "eos_chosen": pl.Boolean(),
    "eos_rejected": pl.Boolean(),
}
STAGE_SCHEMAS = {
    "prompts": PROMPTS_SCHEMA,
    "candidates": CANDIDATES_SCHEMA,
    "preferences": PREFERENCES_SCHEMA,
}
STAGE_COMMANDS = {
    "candidates": "prefkit sample",
    "preferences": "prefkit label",
    "checkpoint": "prefkit train",
}


@dataclass(frozen=True)
class PromptRecord:
    """One prompt: a stable id, the user text, and an optional reference answer (for win rates)."""

    prompt_id: str
    prompt: str
    reference: str | None = None


@dataclass(frozen=True)
class Artifact:
    """A finished artifact folder and its manifest; `table()` reads its data."""

    path: Path
    manifest: Manifest

    @property
    def data_path(self) -> Path:
        return self.path / DATA_FILE

    def table(self) -> pl.DataFrame:
        return pl.read_parquet(self.data_path)


def open_artifact(path: str | Path, expected_stage: str) -> Artifact:
    """Open a finished artifact and check it is of `expected_stage`; errors say what was given instead."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError("does not exist", file=path)
    if path.is_file():
        raise ArtifactError(
            f"is a file, but a '{expected_stage}' artifact folder was expected",
            file=path,
            hint=f"give the folder written by `{STAGE_COMMANDS.get(expected_stage, 'prefkit')}`",
        )
    if not (path / MANIFEST_FILE).exists():
        partial = path.parent / f".{path.name}.partial"
        hint = "the run that writes it did not finish; rerun it to resume" if partial.exists() else None
        raise ArtifactError("is not a finished prefkit artifact (no manifest.json)", file=path, hint=hint)
    manifest = read_manifest(path)
    if manifest.stage != expected_stage:
        raise ArtifactError(
            f"is a '{manifest.stage}' artifact, but a '{expected_stage}' artifact is expected here",
            file=path,
            hint=f"give the output of `{STAGE_COMMANDS.get(expected_stage, 'prefkit')}`",
        )
    artifact = Artifact(path=path, manifest=manifest)
    schema = STAGE_SCHEMAS.get(expected_stage)
    if schema is not None:
        with reading(artifact.data_path):  # a deleted or corrupt data.parquet is one clear line
            actual = pl.read_parquet_schema(artifact.data_path)
        check_columns(actual, schema, artifact.data_path)
        if expected_stage == "preferences":
            optional = {
                name: dtype for name, dtype in PREFERENCES_TRUNCATION_SCHEMA.items() if name in actual
            }
            check_columns(actual, optional, artifact.data_path)
    return artifact


def check_columns(actual: dict[str, pl.DataType], expected: dict[str, pl.DataType], file: Path) -> None:
    """Raise InputError naming the first missing column or the first column of the wrong type."""
    from prefkit.conversation import CONVERSATION_DTYPE

    for name, dtype in expected.items():
        if name not in actual:
            raise InputError("column is missing", file=file, field=name)
        # prompt/chosen/rejected may hold conversations (prefkit.conversation)
        conversational = name in ("prompt", "chosen", "rejected") and actual[name] == CONVERSATION_DTYPE
        if actual[name] != dtype and not (actual[name] == pl.Null()) and not conversational:
            raise InputError(f"has type {actual[name]}, expected {dtype}", file=file, field=name)


# -- prompt files ---------------------------------------------------------------------------------
def read_prompts(path: str | Path) -> list[PromptRecord]:
    """Read prompts from JSONL, JSON (a list), Parquet, a prompts artifact or `builtin:NAME`; rows are validated."""
    path = resolve_prompts(path)
    from prefkit.ingest.prompts import needs_ingest, prompt_rows

    if needs_ingest(path):  # CSV, `datasets` folders and hub ids are read by prefkit.ingest
        source = prompt_rows(path)
        return _prompts_from_rows(list(zip(source.row_numbers, source.rows, strict=True)), path, first_row=1)
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
        return _prompts_from_rows(pl.read_parquet(artifact_data).to_dicts(), artifact_data, first_row=1)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _prompts_from_rows(_read_jsonl(path), path, first_row=1)
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON ({error.msg} at line {error.lineno})", file=path) from None
        if not isinstance(rows, list):
            raise InputError("a JSON prompts file must hold a list of objects", file=path)
        return _prompts_from_rows(rows, path, first_row=1)  # rows count from 1, as in JSONL and Parquet
    if suffix == ".parquet":
        return _prompts_from_rows(pl.read_parquet(path).to_dicts(), path, first_row=1)
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


def _prompts_from_rows(rows: list, path: Path, first_row: int) -> list[PromptRecord]:
    records: list[PromptRecord] = []
    seen: set[str] = set()
    for index, item in enumerate(rows):
        row_number, row = item if isinstance(item, tuple) else (index + first_row, item)
        if not isinstance(row, dict):
            raise InputError(f"expected an object, got {type(row).__name__}", file=path, row=row_number)
        prompt = row.get("prompt", row.get("instruction"))
        if prompt is None:
            raise InputError("is missing", file=path, row=row_number, field="prompt")
        if not isinstance(prompt, str):
            raise InputError(
                f"must be a string, got {type(prompt).__name__}", file=path, row=row_number, field="prompt"
            )
        if not prompt.strip():
            raise InputError("is empty", file=path, row=row_number, field="prompt")
        prompt_id = row.get("prompt_id", row.get("id", f"p{len(records):06d}"))
        if not isinstance(prompt_id, str | int) or isinstance(prompt_id, bool):
            raise InputError(
                f"must be a string or integer, got {type(prompt_id).__name__}",
                file=path,
                row=row_number,
                field="prompt_id",
            )
        prompt_id = str(prompt_id)
        if prompt_id in seen:
            raise InputError(f"duplicate id '{prompt_id}'", file=path, row=row_number, field="prompt_id")
        seen.add(prompt_id)
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise InputError("must be a string", file=path, row=row_number, field="reference")
        records.append(PromptRecord(prompt_id=prompt_id, prompt=prompt, reference=reference))
    if not records:
        raise InputError("holds no prompts", file=path)
    return records
