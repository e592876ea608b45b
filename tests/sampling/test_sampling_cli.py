"""`prefkit sample` as a user runs it: bad input gives one clear line and exit code 2; good input an artifact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefkit.artifacts import open_artifact


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "prefkit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_clear_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_prompts_file(tmp_path, tiny_model_dir):
    result = run_cli("sample", "nowhere.jsonl", "-o", "out", "--model", str(tiny_model_dir), cwd=tmp_path)
    assert_one_clear_error(result, "nowhere.jsonl", "not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_malformed_jsonl_line_names_file_and_row(tmp_path, tiny_model_dir):
    (tmp_path / "prompts.jsonl").write_text(
        '{"prompt_id": "a", "prompt": "hi"}\n{"prompt_id": "b", "prompt": \n'
    )
    result = run_cli("sample", "prompts.jsonl", "-o", "out", "--model", str(tiny_model_dir), cwd=tmp_path)
    assert_one_clear_error(result, "prompts.jsonl", "row 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl"]


def test_invalid_option_value_is_a_config_error(tmp_path, tiny_model_dir, prompts_file):
    result = run_cli("sample", str(prompts_file), "-o", "out", "--top-p", "2", cwd=tmp_path)
    assert_one_clear_error(result, "top_p")


def test_missing_model_folder(tmp_path, prompts_file):
    result = run_cli("sample", str(prompts_file), "-o", "out", "--model", "./no-such-model", cwd=tmp_path)
    assert_one_clear_error(result, "no-such-model", "does not exist")
    assert not (tmp_path / "out").exists()


def test_sample_command_writes_the_artifact(tmp_path, tiny_model_dir, prompts_file):
    args = [
        "sample",
        str(prompts_file),
        "-o",
        "out",
        "--model",
        str(tiny_model_dir),
        "--backend",
        "transformers",
    ]
    args += ["-n", "2", "--max-new-tokens", "4", "--dtype", "float32", "--logprobs", "--quiet"]
    result = run_cli(*args, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    table = open_artifact(tmp_path / "out", "candidates").table()
    assert table.height == 8
    assert all(value < 0 for value in table["completion_logprobs"].explode().to_list())
    assert "wrote" in result.stderr
