"""Reading a candidates artifact for labeling: one cheap check of the whole file, then shards.

The check runs before any scoring, so a malformed file fails at once with one line naming the file,
row and field, and never halfway through an expensive labeling run. Problems of data rather than of
structure (empty completions, a single candidate) are left to pairing, which counts them as drops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from prefkit.errors import InputError


@dataclass(frozen=True)
class CandidateShard:
    """Rows `first_row`.. (1-based, as in error messages) of the candidates file."""

    index: int
    first_row: int
    frame: pl.DataFrame


def check_candidates(path: Path, length_unit: str) -> int:
    """Validate structure (ids unique, prompts present, token counts aligned); return the row count."""
    columns = pl.read_parquet_schema(path)
    has_tokens = "completion_tokens" in columns
    has_reasons = "finish_reasons" in columns
    frame = (
        pl.scan_parquet(path)
        .select(
            pl.col("prompt_id"),
            pl.col("prompt").is_null().alias("prompt_missing"),
            pl.col("completions").list.len().alias("n_completions"),
            (pl.col("completion_tokens").list.len() if has_tokens else pl.lit(None, pl.UInt32)).alias(
                "n_tokens"
            ),
            (
                pl.col("completion_tokens").list.eval(pl.element().is_null()).list.any()
                if has_tokens
                else pl.lit(None, pl.Boolean)
            ).alias("token_nulls"),
            (pl.col("finish_reasons").list.len() if has_reasons else pl.lit(None, pl.UInt32)).alias(
                "n_reasons"
            ),
        )
        .with_row_index("row", offset=1)
        .collect()
    )
    _first_failure(frame, pl.col("prompt_id").is_null(), path, "prompt_id", "is missing")
    repeats = frame.filter(pl.col("prompt_id").is_first_distinct().not_())
    if repeats.height:
        repeat = repeats.row(0, named=True)
        first_seen = frame.filter(pl.col("prompt_id") == repeat["prompt_id"])["row"][0]
        raise InputError(
            f"duplicate id '{repeat['prompt_id']}' (first seen at row {first_seen})",
            file=path,
            row=repeat["row"],
            field="prompt_id",
        )
    _first_failure(frame, pl.col("prompt_missing"), path, "prompt", "is missing")
    if length_unit == "tokens":
        hint = "the sampler did not record token counts; use length_unit 'chars'"
        _first_failure(
            frame,
            pl.col("n_tokens").is_null() & pl.col("n_completions").is_not_null(),
            path,
            "completion_tokens",
            "is missing",
            hint,
        )
        _first_failure(
            frame, pl.col("token_nulls").fill_null(False), path, "completion_tokens", "holds a null", hint
        )
    for count_column, field in (("n_tokens", "completion_tokens"), ("n_reasons", "finish_reasons")):
        mismatched = pl.col(count_column).is_not_null() & (
            pl.col(count_column) != pl.col("n_completions").fill_null(0)
        )
        rows = frame.filter(mismatched)
        if rows.height:
            first = rows.row(0, named=True)
            raise InputError(
                f"has {first[count_column]} entries but 'completions' has {first['n_completions'] or 0}",
                file=path,
                row=first["row"],
                field=field,
            )
    return frame.height


def _first_failure(
    frame: pl.DataFrame, condition: pl.Expr, path: Path, field: str, message: str, hint: str | None = None
) -> None:
    rows = frame.filter(condition)
    if rows.height:
        raise InputError(message, file=path, row=int(rows["row"][0]), field=field, hint=hint)


def iter_candidate_shards(
    path: Path, shard_size: int, skip: set[int] | frozenset = frozenset()
) -> Iterator[CandidateShard]:
    """Stream the file in shards of `shard_size` rows (bounded memory); shards in `skip` are not decoded."""
    parquet = pq.ParquetFile(path)
    columns = [
        name
        for name in ("prompt_id", "prompt", "completions", "completion_tokens", "finish_reasons")
        if name in parquet.schema_arrow.names
    ]
    first_row = 1
    for index, batch in enumerate(parquet.iter_batches(batch_size=shard_size, columns=columns)):
        if index not in skip:
            yield CandidateShard(index=index, first_row=first_row, frame=pl.from_arrow(batch))
        first_row += batch.num_rows
