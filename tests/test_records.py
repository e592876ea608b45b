"""Prompt reading and artifact checks: every bad input names file, row and field."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefkit.artifacts import StageRun, open_artifact
from prefkit.errors import ArtifactError, InputError
from prefkit.ingest import read_prompts


def test_reads_jsonl_prompts(prompts_file):
    records = read_prompts(prompts_file)
    assert [r.prompt_id for r in records][:2] == ["t0", "t1"]
    assert records[0].prompt == "Write one sentence about a movie."


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"prompt": "ok"}', "{not json"], "line 2 is not valid JSON"),
        (['{"prompt": "ok"}', '{"text": "x"}'], "row 2, field 'prompt': is missing"),
        (['{"prompt": ""}'], "row 1, field 'prompt': is empty"),
        (['{"prompt": 5}'], "row 1, field 'prompt': must be a string or a list of chat messages, got int"),
        (['{"prompt_id": "a", "prompt": "x"}', '{"prompt_id": "a", "prompt": "y"}'], "duplicate id 'a'"),
    ],
)
def test_bad_prompt_rows_name_file_row_and_field(tmp_path, lines, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_prompts(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_prompts_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_prompts(tmp_path / "nope.jsonl")


def test_stage_run_skips_finished_and_refuses_other_config(tmp_path, prompts_file):
    out = tmp_path / "art"
    run = StageRun(out, "prompts", {"a": 1}, {"prompts": prompts_file})
    assert not run.already_done
    run.open()
    run.write_data(pl.DataFrame({"prompt_id": ["x"], "prompt": ["y"]}))
    run.finish(counts={"rows": 1})
    assert not (tmp_path / ".art.partial").exists()
    assert StageRun(out, "prompts", {"a": 1}, {"prompts": prompts_file}).already_done
    with pytest.raises(ArtifactError, match="different inputs or config"):
        StageRun(out, "prompts", {"a": 2}, {"prompts": prompts_file})
    assert StageRun(out, "prompts", {"a": 2}, {"prompts": prompts_file}, force=True).already_done is False


def test_manifest_never_holds_secrets(tmp_path, prompts_file):
    run = StageRun(
        tmp_path / "art",
        "prompts",
        {
            "api_key": "sk-123",
            "nested": {"token": "t", "judge_api_key": "k", "ok": 1, "max_tokens": 5, "github_token": "ghp-9"},
            "tokenizer": {"eos_token": "</s>", "wandb_token": "w-1", "price_per_token": 0.5},
        },
        {"p": prompts_file},
    )
    run.open()
    run.write_data(pl.DataFrame({"prompt_id": ["x"], "prompt": ["y"]}))
    run.finish()
    text = (tmp_path / "art" / "manifest.json").read_text()
    assert "sk-123" not in text and '"token"' not in text
    assert "ghp-9" not in text and "w-1" not in text
    assert json.loads(text)["config"]["nested"] == {"ok": 1, "max_tokens": 5}
    assert json.loads(text)["config"]["tokenizer"] == {"eos_token": "</s>", "price_per_token": 0.5}


def test_open_artifact_rejects_wrong_stage(tmp_path, prompts_file):
    run = StageRun(tmp_path / "cands", "candidates", {}, {"p": prompts_file})
    run.open()
    run.write_data(pl.DataFrame({"prompt_id": ["x"]}))
    run.finish()
    with pytest.raises(
        ArtifactError, match="is a 'candidates' artifact, but a 'preferences' artifact is expected"
    ):
        open_artifact(tmp_path / "cands", "preferences")
    with pytest.raises(InputError, match="field 'prompt': column is missing"):
        open_artifact(tmp_path / "cands", "candidates")


HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Name a colour."},
]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_reads_conversational_prompts_and_messages_rows(tmp_path):
    prompts = read_prompts(_write_jsonl(tmp_path / "chat.jsonl", [{"prompt_id": "a", "prompt": HISTORY}]))
    assert prompts[0].prompt == HISTORY and prompts[0].reference is None
    transcript = HISTORY + [{"role": "assistant", "content": "Blue."}]
    rows = [{"messages": transcript}, {"messages": HISTORY}]
    records = read_prompts(_write_jsonl(tmp_path / "messages.jsonl", rows))
    assert [r.prompt for r in records] == [HISTORY, HISTORY]
    assert [r.reference for r in records] == ["Blue.", None]  # a trailing assistant turn is the reference


def test_conversational_prompts_round_trip_through_parquet(tmp_path):
    from prefkit.conversation import CONVERSATION_DTYPE

    path = tmp_path / "chat.parquet"
    frame = pl.DataFrame(
        {"prompt_id": ["a", "b"], "prompt": [HISTORY, HISTORY[1:2]]},
        schema={"prompt_id": pl.String(), "prompt": CONVERSATION_DTYPE},
    )
    frame.write_parquet(path)
    assert [r.prompt for r in read_prompts(path)] == [HISTORY, HISTORY[1:2]]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [{"prompt": "plain"}, {"prompt": HISTORY}],
            "row 2, field 'prompt': is a message list, but earlier rows",
        ),
        ([{"prompt": HISTORY}, {"prompt": "plain"}], "row 2, field 'prompt': is a string, but earlier rows"),
        ([{"prompt": HISTORY[:3]}], "row 1, field 'prompt': must end with a user turn"),
        (
            [{"prompt": [{"role": "bot", "content": "x"}]}],
            "row 1, field 'prompt[0].role': unknown role 'bot'",
        ),
        ([{"prompt": [{"role": "user", "content": " "}]}], "row 1, field 'prompt[0].content': is empty"),
        ([{"messages": [{"role": "assistant", "content": "x"}]}], "row 1, field 'messages': holds only"),
        (
            [{"messages": HISTORY + [{"role": "assistant", "content": "a"}], "reference": "b"}],
            "row 1, field 'reference': has both",
        ),
    ],
)
def test_bad_conversations_name_file_row_and_field(tmp_path, rows, expected):
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError) as info:
        read_prompts(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_open_artifact_accepts_conversational_columns(tmp_path, prompts_file):
    from prefkit.conversation import CONVERSATION_DTYPE
    from prefkit.records import stage_schema

    schema = stage_schema("preferences", conversational=True)
    assert schema["prompt"] == schema["chosen"] == schema["rejected"] == CONVERSATION_DTYPE
    row = {
        "prompt_id": "a",
        "prompt": HISTORY,
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "No."}],
        "score_chosen": 1.0,
        "score_rejected": 0.0,
        "len_chosen": 2,
        "len_rejected": 1,
    }
    run = StageRun(tmp_path / "prefs", "preferences", {}, {"p": prompts_file})
    run.open()
    run.write_data(pl.DataFrame([row], schema=schema))
    run.finish()
    table = open_artifact(tmp_path / "prefs", "preferences").table()
    assert table.row(0, named=True)["chosen"] == [{"role": "assistant", "content": "Blue."}]
