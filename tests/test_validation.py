"""Shared input rules: finite floats, known failures as one clear error, content hashes of the model only."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefkit.artifacts import StageRun, folder_hash
from prefkit.errors import ConfigError, InputError, validated_config
from prefkit.sampling.stage import SampleConfig
from prefkit.training.stage import NOT_MODEL_FILES, TrainConfig
from prefkit.validation import as_prefkit_error, check_finite, reading, refuse_non_finite


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused_with_the_field(value):
    with pytest.raises(ConfigError, match="temperature"):
        validated_config(SampleConfig, {"model": "m", "temperature": value})
    with pytest.raises(ConfigError, match="field 'learning_rate'"):
        validated_config(TrainConfig, {"learning_rate": value})
    with pytest.raises(ConfigError, match="x"):
        check_finite(value, "x")
    with pytest.raises(ConfigError, match=r"options\.a\[1\]"):
        refuse_non_finite({"a": [1.0, value]}, "options")


def test_whole_config_checks_name_their_field():
    with pytest.raises(ConfigError) as raised:
        validated_config(TrainConfig, {"weight_decay": -1})
    assert raised.value.field == "weight_decay" and raised.value.message == "must be >= 0"


def test_known_failures_become_input_errors_and_others_stay_bugs(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="x.parquet: cannot read Parquet"), reading(bad):
        pl.read_parquet(bad)
    utf8 = tmp_path / "x.jsonl"
    utf8.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="x.jsonl: is not UTF-8"), reading(utf8):
        utf8.read_text(encoding="utf-8")
    assert isinstance(as_prefkit_error(json.JSONDecodeError("bad", "{", 0)), InputError)
    assert as_prefkit_error(RuntimeError("a bug")) is None
    with pytest.raises(RuntimeError), reading(bad):
        raise RuntimeError("a bug keeps its type and traceback")


def checkpoint_like(out, log_text: str) -> str:
    run = StageRun(out, "checkpoint", {"same": "config"}, {})
    work = run.open()
    (work / "model.safetensors").write_bytes(b"weights")
    (work / "metrics.jsonl").write_text(log_text)
    (work / "tensorboard").mkdir()
    (work / "tensorboard" / "events.out").write_text(log_text)
    return run.finish(not_hashed=NOT_MODEL_FILES).content_hash


def test_checkpoint_content_hash_covers_the_model_not_its_logs(tmp_path):
    first = checkpoint_like(tmp_path / "a", "run 1 timings")
    second = checkpoint_like(tmp_path / "b", "run 2, resumed, other timings")
    assert first == second
    assert folder_hash(tmp_path / "a") != folder_hash(tmp_path / "b")  # the logs do differ
