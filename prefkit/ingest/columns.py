"""`--columns prompt=question,chosen=response_j,rejected=response_k`: rename a data set's columns to
prefkit's names before its format is detected."""

from __future__ import annotations

from collections.abc import Mapping

from prefkit.errors import ConfigError, InputError
from prefkit.ingest.sources import SourceRows

TARGETS = (
    "prompt",
    "chosen",
    "rejected",
    "prompt_id",
    "score_chosen",
    "score_rejected",
    "messages",
    "completions",
    "reference",
)


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """{prefkit name: column in the data} from `prompt=question,chosen=a` or a mapping; names are checked."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        pairs = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if "=" not in part:
                raise ConfigError(
                    f"'{part}' is not NAME=COLUMN", field="columns", hint="e.g. prompt=question,chosen=good"
                )
            target, column = (side.strip() for side in part.split("=", 1))
            pairs.append((target, column))
    mapping: dict[str, str] = {}
    for target, column in pairs:
        if target not in TARGETS:
            raise ConfigError(
                f"unknown name '{target}' (map to one of {', '.join(TARGETS)})", field="columns"
            )
        if not column:
            raise ConfigError(f"'{target}=' names no column", field="columns")
        if target in mapping:
            raise ConfigError(f"maps '{target}' twice", field="columns")
        mapping[target] = column
    return mapping


def apply_columns(source: SourceRows, mapping: Mapping[str, str]) -> SourceRows:
    """The rows with each mapped column renamed to its prefkit name (an unmapped target column is dropped,
    so `prompt=question` wins over an unrelated `prompt` column)."""
    if not mapping:
        return source
    seen = source.columns
    for target, column in mapping.items():
        if column not in seen:
            raise InputError(
                f"--columns maps '{target}' to '{column}', which is not a column (columns: {', '.join(seen)})",
                file=source.origin,
                field=column,
            )
    renamed = []
    for row in source.rows:
        new = {key: value for key, value in row.items() if key not in mapping}
        new.update({target: row.get(column) for target, column in mapping.items()})
        renamed.append(new)
    return SourceRows(
        renamed, source.row_numbers, source.origin, source.kind, source.artifact_stage, dict(source.details)
    )
