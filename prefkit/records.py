"""The records passed between stages, their Parquet schemas, and prompt-row validation with file/row/field
errors. The lowest of the data modules: prefkit.artifacts opens artifact folders against these schemas and
prefkit.ingest reads files into these records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from prefkit.conversation import CONVERSATION_DTYPE, Prompt, is_conversation, validate_conversation
from prefkit.errors import InputError

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


def check_columns(actual: dict[str, pl.DataType], expected: dict[str, pl.DataType], file: Path) -> None:
    """Raise InputError naming the first missing column or the first column of the wrong type."""
    for name, dtype in expected.items():
        if name not in actual:
            raise InputError("column is missing", file=file, field=name)
        # prompt/chosen/rejected may hold conversations (prefkit.conversation)
        conversational = name in ("prompt", "chosen", "rejected") and actual[name] == CONVERSATION_DTYPE
        if actual[name] != dtype and not (actual[name] == pl.Null()) and not conversational:
            raise InputError(f"has type {actual[name]}, expected {dtype}", file=file, field=name)


def prompt_records(rows: list, path: Path, first_row: int = 1) -> list[PromptRecord]:
    """Validate prompt rows (dicts, or (row number, dict) pairs) into records; errors name `path` and the row.

    A row holds `prompt` (a string or a list of chat messages ending with a user turn) or `messages` (a
    chat transcript; a trailing assistant turn becomes the `reference`), plus optional `prompt_id` and
    `reference`. A file holds string prompts or conversations, never both.
    """
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
