"""Import a preference set from anywhere into a preferences artifact (Parquet + manifest + card + hash).

The artifact lives under `$PREFKIT_HOME/imports/`, keyed by the normalised rows' content hash, so
importing the same data again reuses it, and training's reference-log-prob cache and resume see the same
input as for an artifact written by `prefkit label`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import MANIFEST_FILE, Artifact, StageRun, open_artifact
from prefkit.conversation import column_dtype, completion_text, display_prompt
from prefkit.errors import ConfigError
from prefkit.ingest.columns import apply_columns, parse_columns
from prefkit.ingest.formats import FORMATS, PreferenceSet, normalise_preferences
from prefkit.ingest.sources import SourceOptions, SourceRows, read_source
from prefkit.models import cache_home
from prefkit.records import PREFERENCES_SCHEMA

IMPORTS_FOLDER = "imports"


def resolve_preferences(
    source: Any,
    *,
    columns: str | Mapping[str, str] | None = None,
    options: SourceOptions | None = None,
) -> Artifact:
    """A preferences artifact for `source`: a prefkit artifact folder as is, anything else imported."""
    mapping = parse_columns(columns)
    if isinstance(source, str | Path) and (Path(source) / MANIFEST_FILE).exists():
        if mapping:
            raise ConfigError(
                "--columns applies to imported data sets, not prefkit artifacts", field="columns"
            )
        return open_artifact(source, "preferences")
    rows = apply_columns(read_source(source, options), mapping)
    return import_preferences(rows, columns=mapping)


def import_preferences(source: SourceRows, *, columns: Mapping[str, str] | None = None) -> Artifact:
    """Normalise the rows, then write (or reuse) the artifact keyed by their content hash."""
    preferences = normalise_preferences(source)
    digest = rows_hash(preferences)
    out = cache_home() / IMPORTS_FOLDER / f"preferences-{digest[:16]}"
    config = {"format": preferences.format, "rows_sha256": digest}
    with StageRun(out, "preferences", config, {}) as run:
        if run.already_done:
            return run.artifact()
        run.open()
        run.write_data(preferences_frame(preferences))
        extra = {
            "format": preferences.format,
            "conversational": preferences.conversational,
            "source": {"origin": source.origin, "kind": source.kind, **source.details},
            "columns": dict(columns or {}),
            "use_chat_template": None,  # auto: the policy's chat template when it has one
            "length_unit": "chars",  # len_chosen / len_rejected count characters (formats.py)
        }
        run.set_result(
            counts={"pairs": len(preferences.rows)},
            card=import_card(preferences, source, digest),
            extra=extra,
        )
    return run.artifact()


def rows_hash(preferences: PreferenceSet) -> str:
    """sha256 of the normalised rows (canonical JSON) and the format."""
    digest = hashlib.sha256(preferences.format.encode())
    for row in preferences.rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def preferences_frame(preferences: PreferenceSet) -> pl.DataFrame:
    """The rows as a polars frame with PREFERENCES_SCHEMA (conversation columns as CONVERSATION_DTYPE)."""
    dtype = column_dtype(preferences.conversational)
    schema = {**PREFERENCES_SCHEMA, "prompt": dtype, "chosen": dtype, "rejected": dtype}
    return pl.DataFrame(preferences.rows, schema=schema)


def import_card(preferences: PreferenceSet, source: SourceRows, digest: str) -> str:
    """A short data card: where the pairs came from, the detected format and one example."""
    example = preferences.rows[0]
    scored = sum(row["score_chosen"] is not None for row in preferences.rows)
    where = ", ".join(f"{key} `{value}`" for key, value in source.details.items() if value is not None)
    lines = [
        "# Imported preference pairs",
        "",
        f"{len(preferences.rows)} pairs imported from `{source.origin}` ({source.kind}{', ' + where if where else ''}).",
        f"Detected format: **{preferences.format}** ({FORMATS[preferences.format]}); "
        f"{'conversational (message lists)' if preferences.conversational else 'plain-string'} prompts; "
        f"{scored} pairs carry scores.",
        f"Content hash of the normalised rows: `{digest}`.",
        "",
        "## Example",
        "",
        "Prompt:",
        "",
        "```",
        display_prompt(example["prompt"]),
        "```",
        "",
        "Chosen:",
        "",
        "```",
        completion_text(example["chosen"]),
        "```",
        "",
        "Rejected:",
        "",
        "```",
        completion_text(example["rejected"]),
        "```",
        "",
    ]
    return "\n".join(lines)
