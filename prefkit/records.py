"""The records passed between stages, their Parquet schemas, and validation with file/row/field errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from prefkit.artifacts import DATA_FILE, MANIFEST_FILE, Manifest, read_manifest
from prefkit.conversation import CONVERSATION_DTYPE, Prompt, is_conversation, validate_conversation
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
# columns that hold a plain string or, for conversational data, a message list (CONVERSATION_DTYPE)
CONVERSATIONAL_COLUMNS = {
    "prompts": ("prompt",),
    "candidates": ("prompt",),
    "preferences": ("prompt", "chosen", "rejected"),
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


def stage_schema(stage: str, conversational: bool) -> dict[str, pl.DataType]:
    """A stage's schema; conversational data stores prompt (and chosen/rejected) as CONVERSATION_DTYPE."""
    schema = dict(STAGE_SCHEMAS[stage])
    if conversational:
        schema.update({name: CONVERSATION_DTYPE for name in CONVERSATIONAL_COLUMNS[stage]})
    return schema


def is_conversational(schema: dict[str, pl.DataType]) -> bool:
    """True when a table's `prompt` column holds message lists rather than strings."""
    return schema.get("prompt") == CONVERSATION_DTYPE


@dataclass(frozen=True)
class PromptRecord:
    """One prompt: a stable id, the user text or conversation, and an optional reference answer."""

    prompt_id: str
    prompt: Prompt
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
    if expected_stage in STAGE_SCHEMAS:
        with reading(artifact.data_path):  # a deleted or corrupt data.parquet is one clear line
            actual = pl.read_parquet_schema(artifact.data_path)
        expected = stage_schema(expected_stage, is_conversational(actual))
        check_columns(actual, expected, artifact.data_path)
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
    """Read prompts from JSONL, JSON (a list), Parquet, a prompts artifact or `builtin:NAME`; rows are validated.

    A row holds `prompt` (a string or a list of chat messages ending with a user turn) or `messages` (a
    chat transcript; a trailing assistant turn becomes the `reference`), plus optional `prompt_id` and
    `reference`. A file holds string prompts or conversations, never both.
    """
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
    conversational: bool | None = None  # set by the first row; every later row must be of that kind
    for index, item in enumerate(rows):
        row_number, row = item if isinstance(item, tuple) else (index + first_row, item)
        if not isinstance(row, dict):
            raise InputError(f"expected an object, got {type(row).__name__}", file=path, row=row_number)
        prompt, answer = _row_prompt(row, path, row_number)
        if conversational is None:
            conversational = is_conversation(prompt)
        elif is_conversation(prompt) != conversational:
            kind, earlier = (
                ("a message list", "strings") if is_conversation(prompt) else ("a string", "message lists")
            )
            raise InputError(
                f"is {kind}, but earlier rows are {earlier} (a file holds one kind)",
                file=path,
                row=row_number,
                field="messages" if "messages" in row and "prompt" not in row else "prompt",
            )
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
        if answer is not None and reference is not None:
            raise InputError(
                "has both a 'reference' and a trailing assistant turn in 'messages'",
                file=path,
                row=row_number,
                field="reference",
                hint="keep one: the trailing assistant turn is used as the reference answer",
            )
        reference = reference if answer is None else answer
        records.append(PromptRecord(prompt_id=prompt_id, prompt=prompt, reference=reference))
    if not records:
        raise InputError("holds no prompts", file=path)
    return records


def _row_prompt(row: dict, path: Path, row_number: int) -> tuple[Prompt, str | None]:
    """A row's prompt (a string or a validated conversation) and the reference answer a `messages` row
    carries as its trailing assistant turn (None otherwise)."""
    if "prompt" not in row and "instruction" not in row and "messages" in row:
        messages = validate_conversation(
            row["messages"], file=path, row=row_number, field="messages", must_end_with_user=False
        )
        answer = None
        if messages[-1]["role"] == "assistant":  # a chat transcript: its last answer is the reference
            answer = messages.pop()["content"]
            if not messages:
                raise InputError("holds only an assistant turn", file=path, row=row_number, field="messages")
        return validate_conversation(messages, file=path, row=row_number, field="messages"), answer
    prompt = row.get("prompt", row.get("instruction"))
    if prompt is None:
        raise InputError(
            "is missing",
            file=path,
            row=row_number,
            field="prompt",
            hint="a row needs 'prompt' (a string or a list of chat messages) or 'messages'",
        )
    if is_conversation(prompt):
        return validate_conversation(prompt, file=path, row=row_number, field="prompt"), None
    if not isinstance(prompt, str):
        raise InputError(
            f"must be a string or a list of chat messages, got {type(prompt).__name__}",
            file=path,
            row=row_number,
            field="prompt",
        )
    if not prompt.strip():
        raise InputError("is empty", file=path, row=row_number, field="prompt")
    return prompt, None
