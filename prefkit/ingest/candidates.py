"""Candidates files a user already has (JSONL, JSON, CSV, Parquet or `datasets` rows holding a
`prompt` and a `completions` list) imported as a candidates artifact for `prefkit label`.

Rows are checked here (prompt, completions, optional `completion_tokens`), so a bad file fails in one line
naming the file, row and field before any labeler loads. The artifact is keyed by the rows' content hash
under `$PREFKIT_HOME/imports/`, so labeling the same file again is skipped as for a sampled artifact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import MANIFEST_FILE, Artifact, StageRun, open_artifact
from prefkit.conversation import (
    column_dtype,
    completion_text,
    is_conversation,
    prompt_key,
    validate_conversation,
)
from prefkit.errors import InputError
from prefkit.ingest.columns import apply_columns, parse_columns
from prefkit.ingest.importer import IMPORTS_FOLDER
from prefkit.ingest.sources import SourceOptions, SourceRows, read_source
from prefkit.models import cache_home
from prefkit.records import CANDIDATES_SCHEMA


def resolve_candidates(
    source: Any,
    *,
    columns: str | Mapping[str, str] | None = None,
    options: SourceOptions | None = None,
) -> Artifact:
    """A candidates artifact for `source`: a prefkit artifact folder as is, a file or data set imported."""
    if isinstance(source, str | Path) and (Path(source) / MANIFEST_FILE).exists():
        return open_artifact(source, "candidates")
    rows = apply_columns(read_source(source, options), parse_columns(columns))
    return import_candidates(rows)


def candidate_records(source: SourceRows) -> tuple[list[dict[str, Any]], bool]:
    """The rows as candidates records (CANDIDATES_SCHEMA fields) and whether prompts are conversations."""
    if not source.rows:
        raise InputError("holds no rows", file=source.origin)
    first = source.rows[0]
    if "completions" not in first or not ({"prompt", "messages", "instruction"} & set(first)):
        raise InputError(
            f"is not a candidates file (columns: {', '.join(source.columns)}); a row needs 'prompt' and "
            "'completions' (a list of strings)",
            file=source.origin,
            hint="rename columns with --columns prompt=COLUMN,completions=COLUMN",
        )
    records, conversational = [], is_conversation(first.get("prompt", first.get("messages")))
    seen: dict[str, int] = {}
    for row, number in zip(source.rows, source.row_numbers, strict=True):
        prompt = _prompt(row, source.origin, number, conversational)
        completions = row.get("completions")
        if not isinstance(completions, list | tuple) or not completions:
            raise InputError("must be a non-empty list", file=source.origin, row=number, field="completions")
        texts = []
        for index, completion in enumerate(completions):
            if is_conversation(completion):  # [{"role": "assistant", "content": ...}]
                completion = completion_text(completion)
            if not isinstance(completion, str):
                raise InputError(
                    f"must be a string, got {type(completion).__name__}",
                    file=source.origin,
                    row=number,
                    field=f"completions[{index}]",
                )
            texts.append(completion)
        tokens = row.get("completion_tokens")
        if tokens is not None and (
            not isinstance(tokens, list | tuple)
            or len(tokens) != len(texts)
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens)
        ):
            raise InputError(
                f"must be a list of {len(texts)} integers (one per completion)",
                file=source.origin,
                row=number,
                field="completion_tokens",
            )
        prompt_id = str(row.get("prompt_id", row.get("id")) or "p" + _digest(prompt_key(prompt))[:12])
        if prompt_id in seen:
            raise InputError(
                f"duplicate id '{prompt_id}' (first seen at row {seen[prompt_id]})",
                file=source.origin,
                row=number,
                field="prompt_id",
            )
        seen[prompt_id] = number
        records.append(
            {
                "prompt_id": prompt_id,
                "prompt": prompt,
                "completions": texts,
                "completion_tokens": list(tokens) if tokens is not None else None,
                "completion_logprobs": None,
            }
        )
    return records, conversational


def _prompt(row: dict, origin: str, number: int, conversational: bool):
    field = "prompt" if "prompt" in row else "messages" if "messages" in row else "instruction"
    prompt = row.get(field)
    if is_conversation(prompt) != conversational:
        kind = "a message list" if is_conversation(prompt) else "not a message list"
        raise InputError(
            f"is {kind}, unlike row 1 (a file holds one kind)", file=origin, row=number, field=field
        )
    if conversational:
        return validate_conversation(prompt, file=origin, row=number, field=field)
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("must be a non-empty string or a message list", file=origin, row=number, field=field)
    return prompt


def import_candidates(source: SourceRows) -> Artifact:
    """Write (or reuse) the candidates artifact of these rows, keyed by their content hash."""
    records, conversational = candidate_records(source)
    digest = _digest("\n".join(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in records))
    out = cache_home() / IMPORTS_FOLDER / f"candidates-{digest[:16]}"
    with StageRun(out, "candidates", {"format": "candidates-file", "rows_sha256": digest}, {}) as run:
        if run.already_done:
            return run.artifact()
        run.open()
        schema = {**CANDIDATES_SCHEMA, "prompt": column_dtype(conversational)}
        run.write_data(pl.DataFrame(records, schema=schema))
        card = (
            f"# Imported candidates\n\n{len(records)} prompts with their completions, imported from "
            f"`{source.origin}` ({source.kind}); {'conversational' if conversational else 'plain-string'} prompts.\n"
            f"Content hash of the rows: `{digest}`.\n"
        )
        extra = {
            "format": "candidates-file",
            "source": {"origin": source.origin, "kind": source.kind, **source.details},
            "use_chat_template": None,
        }
        run.set_result(counts={"prompts": len(records)}, card=card, extra=extra)
    return run.artifact()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
