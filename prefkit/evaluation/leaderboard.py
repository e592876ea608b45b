"""The leaderboard of an eval run: one row per subject, one column per `evaluator/metric`, as Parquet and Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import atomic_write_parquet, atomic_write_text

LEADERBOARD_PARQUET = "leaderboard.parquet"
LEADERBOARD_MARKDOWN = "leaderboard.md"
ID_COLUMNS = ("subject", "model", "content_hash")
# metric -> its standard error, where the name does not follow `<metric>_se`
STANDARD_ERRORS = {
    "reward_mean": "reward_se",
    "kl_mean": "kl_se",
    "win_rate": "standard_error",
    "lc_win_rate": "lc_standard_error",
}
LONG_TEXT = 40  # strings longer than this go to footnotes, not table cells
# metrics naming who judged and with what: rows that differ in one are not comparable side by side
JUDGE_IDENTITY = (
    "judge",
    "judge_model",
    "judge_annotator",
    "judge_template",
    "judge_template_sha256",
    "alpaca_eval_version",
    "data_revision",
)


def build_leaderboard(subjects: Sequence, results: Sequence) -> pl.DataFrame:
    """Wide table: subject, model, content_hash, then `evaluator/metric` for every metric of every result."""
    rows: dict[str, dict[str, Any]] = {
        subject.name: {"subject": subject.name, "model": subject.model, "content_hash": ""}
        for subject in subjects
    }
    for result in results:
        row = rows[result.subject.name]
        row["content_hash"] = result.subject_hash
        for metric, value in result.metrics.items():
            row[f"{result.evaluator}/{metric}"] = value
    columns: list[str] = list(ID_COLUMNS)
    for row in rows.values():
        columns.extend(key for key in row if key not in columns)
    series = [pl.Series(name, [row.get(name) for row in rows.values()], strict=False) for name in columns]
    return pl.DataFrame(series)


def write_leaderboard(frame: pl.DataFrame, folder: Path) -> tuple[Path, Path]:
    """Write `leaderboard.parquet` and `leaderboard.md` into `folder`."""
    parquet, markdown = folder / LEADERBOARD_PARQUET, folder / LEADERBOARD_MARKDOWN
    atomic_write_parquet(frame, parquet)
    atomic_write_text(markdown, markdown_table(frame) + "\n")
    return parquet, markdown


def standard_error_column(frame: pl.DataFrame, column: str) -> str | None:
    """The SE column that goes with `column` (e.g. `reward-kl/reward_se` for `reward-kl/reward_mean`)."""
    evaluator, _, metric = column.rpartition("/")
    for candidate in (STANDARD_ERRORS.get(metric), f"{metric}_se"):
        if candidate and f"{evaluator}/{candidate}" in frame.columns:
            return f"{evaluator}/{candidate}"
    return None


def display_columns(frame: pl.DataFrame) -> list[str]:
    """Metric columns worth a table column: not an SE shown beside its metric, not a long text."""
    metrics = [c for c in frame.columns if c not in ID_COLUMNS]
    paired = {standard_error_column(frame, c) for c in metrics} - {None}
    return [c for c in metrics if c not in paired and not _is_long_text(frame[c])]


def judge_conflicts(frame: pl.DataFrame) -> list[str]:
    """One sentence per evaluator whose subjects were judged differently (judge, template, version, data).

    Swapping the AlpacaEval judge moved LC by ~12 points in a public comparison, so such win rates are
    never put side by side without this warning.
    """
    conflicts = []
    evaluators = sorted({c.rpartition("/")[0] for c in frame.columns if "/" in c})
    for evaluator in evaluators:
        differing = []
        for field in JUDGE_IDENTITY:
            column = f"{evaluator}/{field}"
            if column in frame.columns:
                values = sorted({str(v) for v in frame[column].to_list() if v is not None and v != ""})
                if len(values) > 1:
                    differing.append(f"{field} ({' vs '.join(values)})")
        if differing:
            conflicts.append(
                f"{evaluator} results were judged differently: {'; '.join(differing)}. "
                "Their win rates are not comparable and are not ranked against each other."
            )
    return conflicts


def markdown_table(frame: pl.DataFrame) -> str:
    """A Markdown table (`metric ± SE` where an SE exists) followed by footnotes for long text values.

    When subjects were judged differently (see `judge_conflicts`) a warning comes before the table.
    """
    columns = display_columns(frame)
    header = ["subject", *columns]
    warnings = [f"**Not comparable:** {conflict}" for conflict in judge_conflicts(frame)]
    lines = [
        *warnings,
        *([""] if warnings else []),
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in frame.iter_rows(named=True):
        cells = [str(row["subject"])]
        for column in columns:
            se_column = standard_error_column(frame, column)
            cells.append(format_value(row[column], row[se_column] if se_column else None))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {row['subject']}, {column}: {row[column]}"
        for column in frame.columns
        if column not in ID_COLUMNS and _is_long_text(frame[column])
        for row in frame.iter_rows(named=True)
        if row[column]
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def format_value(value: Any, standard_error: Any = None) -> str:
    """Numbers to 4 significant digits (integers as is), with `± SE` when given; missing values as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.4g}"
        if isinstance(standard_error, int | float) and not math.isnan(standard_error):
            text += f" ± {standard_error:.2g}"
        return text
    return str(value).replace("|", "\\|")


def _is_long_text(series: pl.Series) -> bool:
    if series.dtype != pl.String:
        return False
    return any(value is not None and len(value) > LONG_TEXT for value in series)
