"""`prefkit label FILE`: a candidates file the user already has (prompt + completions list)."""

from __future__ import annotations

import polars as pl
import pytest
from ingest_helpers import bad, good, history, question, write_jsonl
from typer.testing import CliRunner

from prefkit.artifacts import open_artifact
from prefkit.cli import app
from prefkit.errors import InputError
from prefkit.ingest.candidates import candidate_records, resolve_candidates
from prefkit.ingest.sources import read_source

TOPICS = ["movie", "book", "city"]


def candidate_rows(conversational: bool = False) -> list[dict]:
    return [
        {
            "prompt": history(topic) if conversational else question(topic),
            "completions": [good(topic), bad(topic), f"A {topic}."],
        }
        for topic in TOPICS
    ]


def test_label_cli_scores_a_jsonl_candidates_file(tmp_path):
    path = write_jsonl(tmp_path / "cands.jsonl", candidate_rows())
    out = tmp_path / "prefs"
    args = ["label", str(path), "--out", str(out), "--length-unit", "chars", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = open_artifact(out, "preferences").table()
    assert table.height == 3
    assert table["chosen"].to_list() == [good(t) for t in TOPICS]  # VADER prefers the positive one
    assert table["rejected"].to_list() == [bad(t) for t in TOPICS]
    again = CliRunner().invoke(app, args)  # the same file again: same import, finished run skipped
    assert again.exit_code == 0 and again.output == result.output


def test_parquet_candidates_with_conversations_and_token_counts(tmp_path):
    rows = [dict(row, completion_tokens=[5, 6, 2]) for row in candidate_rows(conversational=True)]
    pl.DataFrame(rows).write_parquet(tmp_path / "cands.parquet")
    artifact = resolve_candidates(tmp_path / "cands.parquet")
    table = artifact.table()
    assert table["prompt"].to_list()[0] == history("movie")
    assert table["completion_tokens"].to_list()[0] == [5, 6, 2]
    assert artifact.manifest.extra["format"] == "candidates-file"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"completions": "just one string"}, "completions", "non-empty list"),
        ({"completions": ["ok", 3]}, "completions[1]", "must be a string"),
        ({"completion_tokens": [1]}, "completion_tokens", "list of 3 integers"),
        ({"prompt": ""}, "prompt", "non-empty string"),
        ({"prompt_id": "x"}, "prompt_id", "duplicate id 'x'"),
    ],
)
def test_bad_candidates_rows_name_row_and_field(change, field, words):
    rows = candidate_rows()
    rows[0]["prompt_id"] = "x"
    rows[1].update(change)
    with pytest.raises(InputError) as error:
        candidate_records(read_source(rows))
    assert (error.value.row, error.value.field) == (2, field) and words in error.value.message


def test_a_file_without_completions_is_refused_listing_its_columns(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "hi", "answer": "yo"}])
    result = CliRunner().invoke(app, ["label", str(path), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, InputError)
    assert "columns: prompt, answer" in str(result.exception) and not (tmp_path / "o").exists()


def test_label_cli_maps_candidate_columns(tmp_path):
    rows = [{"question": row["prompt"], "responses": row["completions"]} for row in candidate_rows()]
    path = write_jsonl(tmp_path / "cands.jsonl", rows)
    args = ["label", str(path), "--out", str(tmp_path / "prefs"), "--length-unit", "chars", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--columns", "prompt=question,completions=responses"])
    assert result.exit_code == 0, result.output
    assert open_artifact(tmp_path / "prefs", "preferences").table()["chosen"].to_list() == [
        good(t) for t in TOPICS
    ]
