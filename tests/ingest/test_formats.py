"""Format detection and normalisation: every accepted format, its exact records, and its bad input."""

from __future__ import annotations

import pytest
from ingest_helpers import assistant, bad, bad_row, good, history, question, rows_for

from prefkit.errors import ConfigError, InputError
from prefkit.ingest.columns import apply_columns, parse_columns
from prefkit.ingest.formats import detect_format, normalise_preferences
from prefkit.ingest.prefix import split_text
from prefkit.ingest.sources import read_source
from prefkit.ingest.transcripts import parse_transcript


def normalised(rows):
    return normalise_preferences(read_source(rows))


@pytest.mark.parametrize(
    "format_name",
    ["trl-standard", "trl-conversational", "implicit-prompt", "hh-rlhf", "ultrafeedback-binarized"],
)
def test_each_format_is_detected(format_name):
    assert detect_format(read_source(rows_for(format_name))) == format_name


def test_trl_standard_rows_stay_strings_and_share_an_id_per_prompt():
    rows = rows_for("trl-standard")
    result = normalised(rows + [dict(rows[0], chosen="Another fine answer.")])
    assert not result.conversational
    first = result.rows[0]
    assert (first["prompt"], first["chosen"], first["rejected"]) == (
        question("movie"),
        good("movie"),
        bad("movie"),
    )
    assert first["len_chosen"] == len(good("movie")) and first["score_chosen"] is None
    assert result.rows[4]["prompt_id"] == first["prompt_id"] != result.rows[1]["prompt_id"]


def test_trl_conversational_keeps_the_history_and_one_assistant_turn():
    result = normalised(rows_for("trl-conversational"))
    assert result.conversational
    assert result.rows[0]["prompt"] == history("movie")
    assert result.rows[0]["chosen"] == assistant(good("movie"))


def test_ultrafeedback_keeps_scores_and_ids_and_strips_the_repeated_prompt():
    result = normalised(rows_for("ultrafeedback-binarized"))
    row = result.rows[0]
    assert row["prompt"] == [{"role": "user", "content": question("movie")}]
    assert row["chosen"] == assistant(good("movie")) and row["rejected"] == assistant(bad("movie"))
    assert (row["score_chosen"], row["score_rejected"], row["prompt_id"]) == (9.0, 2.5, "uf-movie")


def test_hh_rlhf_transcripts_become_turns():
    result = normalised(rows_for("hh-rlhf"))
    row = result.rows[0]
    assert row["prompt"] == [
        {"role": "user", "content": "Do you know a movie?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": question("movie")},
    ]
    assert row["chosen"] == assistant(good("movie")) and row["rejected"] == assistant(bad("movie"))


def test_parse_transcript_keeps_a_preamble_as_system():
    turns = parse_transcript("Be brief.\n\nHuman: hi\n\nAssistant: hello")
    assert [m["role"] for m in turns] == ["system", "user", "assistant"]


def test_implicit_prompt_splits_strings_at_a_word_boundary():
    row = normalised(rows_for("implicit-prompt")).rows[0]
    # the answers share "The movie was " too; the split keeps whole words, the space goes with the answer
    assert row["prompt"] == f"Question: {question('movie')} Answer: The movie was"
    assert row["chosen"] == " wonderful and I felt happy about it."
    assert row["rejected"] == " terrible and I felt sad about it."
    assert split_text("Say it. A: fine", "Say it. A: foul") == ("Say it. A:", " fine", " foul")


def test_implicit_prompt_splits_message_lists_at_a_turn_boundary():
    result = normalised(rows_for("implicit-prompt-conversational"))
    assert result.format == "implicit-prompt" and result.conversational
    assert result.rows[0]["prompt"] == history("movie")


def test_columns_mapping_renames_before_detection():
    rows = [{"question": question(t), "response_j": good(t), "response_k": bad(t)} for t in ("a", "b")]
    mapping = parse_columns("prompt=question,chosen=response_j,rejected=response_k")
    result = normalise_preferences(apply_columns(read_source(rows), mapping))
    assert result.format == "trl-standard" and result.rows[1]["chosen"] == good("b")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("prompt", "not NAME=COLUMN"), ("answer=x", "unknown name 'answer'"), ("prompt=a,prompt=b", "twice")],
)
def test_bad_columns_mapping_is_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_columns(spec)


def test_columns_mapping_to_a_missing_column_lists_the_columns():
    with pytest.raises(InputError, match="'question', which is not a column .*chosen, rejected"):
        apply_columns(read_source(rows_for("implicit-prompt")), parse_columns("prompt=question"))


def test_unknown_shape_lists_columns_and_formats():
    with pytest.raises(InputError) as error:
        detect_format(read_source([{"text": "hi", "label": 1}]))
    text = str(error.value)
    assert "columns: text, label" in text and "hh-rlhf" in text and "--columns" in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "format_name",
    [
        "trl-standard",
        "trl-conversational",
        "ultrafeedback-binarized",
        "hh-rlhf",
        "implicit-prompt",
        "implicit-prompt-conversational",
    ],
)
def test_bad_row_names_row_and_field(format_name):
    rows = rows_for(format_name)
    rows[1], field, words = bad_row(format_name)
    with pytest.raises(InputError) as error:
        normalised(rows)
    assert (error.value.row, error.value.field) == (2, field)
    assert words in error.value.message


def test_chosen_history_that_differs_from_the_prompt_is_refused():
    row = rows_for("trl-conversational")[0]
    row["chosen"] = [{"role": "user", "content": "something else"}, *row["chosen"]]
    row["rejected"] = [{"role": "user", "content": "something else"}, *row["rejected"]]
    with pytest.raises(InputError, match="differs from 'prompt'"):
        normalised([row])
