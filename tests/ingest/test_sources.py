"""Reading rows from files, `datasets` folders and hub ids (offline: one line, at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from ingest_helpers import rows_for, write_jsonl

from prefkit.errors import InputError, ModelError
from prefkit.ingest.sources import SourceOptions, read_source

REPO = Path(__file__).resolve().parents[2]


def test_jsonl_rows_keep_their_line_numbers(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    rows = read_source(path)
    assert rows.rows == [{"a": 1}, {"a": 2}] and rows.row_numbers == [1, 3] and rows.kind == "jsonl"


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InputError) as error:
        read_source(path)
    assert error.value.row == 2 and str(path) in str(error.value)


def test_json_list_csv_and_parquet_give_the_same_rows(tmp_path):
    rows = rows_for("trl-standard")
    (tmp_path / "p.json").write_text(json.dumps(rows))
    pl.DataFrame(rows).write_csv(tmp_path / "p.csv")
    pl.DataFrame(rows).write_parquet(tmp_path / "p.parquet")
    for name in ("p.json", "p.csv", "p.parquet"):
        assert read_source(tmp_path / name).rows == rows, name


def test_csv_cells_stay_text(tmp_path):
    (tmp_path / "p.csv").write_text("prompt,chosen\n42,007\n")
    assert read_source(tmp_path / "p.csv").rows == [{"prompt": "42", "chosen": "007"}]


def test_unsupported_suffix_and_missing_file_are_one_line(tmp_path):
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        read_source(tmp_path / "p.txt")
    with pytest.raises(InputError, match="does not exist"):
        read_source(tmp_path / "nope.jsonl")


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = rows_for("trl-conversational")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:3]), "test": datasets.Dataset.from_list(rows[3:])}
    )
    both.save_to_disk(str(tmp_path / "dict"))
    assert read_source(tmp_path / "single").rows == rows
    assert read_source(tmp_path / "dict").rows == rows[:3]  # train by default
    test = read_source(tmp_path / "dict", SourceOptions(split="test"))
    assert test.rows == rows[3:] and test.details == {"split": "test"}
    with pytest.raises(InputError, match="split 'dev' is not in it \\(splits: train, test\\)"):
        read_source(tmp_path / "dict", SourceOptions(split="dev"))


def test_a_datasets_object_and_a_list_of_dicts_are_sources():
    datasets = pytest.importorskip("datasets")
    rows = rows_for("trl-standard")
    assert read_source(datasets.Dataset.from_list(rows)).rows == rows
    assert read_source(rows).rows == rows


def test_offline_hub_dataset_id_fails_at_once_naming_a_local_copy(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(InputError) as error:
        read_source("no-such-org/no-such-set", SourceOptions(split="train"))
    assert time.perf_counter() - started < 10
    text = str(error.value)
    assert "HF_HUB_OFFLINE" in text and "save_to_disk" in text and "\n" not in text


def test_offline_hub_model_id_fails_at_once(monkeypatch):
    from prefkit.models import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelError) as error:
        load_tokenizer("no-such-org/no-such-model")
    assert time.perf_counter() - started < 5
    assert "offline" in str(error.value) and "\n" not in str(error.value)


def test_train_cli_on_an_offline_hub_id_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / ".pp"), HF_HUB_OFFLINE="1", PREFKIT_HOME=str(tmp_path))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "prefkit", "train", "no-such-org/prefs", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-org/prefs" in lines[0] and "save_to_disk" in lines[0]
    assert elapsed < 30  # the interpreter and imports; no network retries
    assert not (tmp_path / "o").exists()


def test_jsonl_writer_helper_round_trips(tmp_path):
    rows = rows_for("hh-rlhf")
    assert read_source(write_jsonl(tmp_path / "hh.jsonl", rows)).rows == rows


def test_a_polars_frame_is_a_source():
    rows = rows_for("trl-standard")
    assert read_source(pl.DataFrame(rows)).rows == rows


def test_hub_id_passes_split_subset_and_revision_to_datasets(monkeypatch):
    """The hub itself is out of reach in tests; this checks what prefkit asks `datasets` for."""
    datasets = pytest.importorskip("datasets")
    from prefkit.ingest import sources

    calls = []

    def load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return datasets.Dataset.from_list(rows_for("trl-standard"))

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "offline_setting", lambda: False)
    monkeypatch.setattr(sources, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    read = read_source("org/prefs", SourceOptions(split="test", subset="en", revision="v1"))
    assert calls == [("org/prefs", {"name": "en", "split": "test", "revision": "v1"})]
    assert read.kind == "hub" and read.details == {"split": "test", "subset": "en", "revision": "v1"}
    assert read.rows == rows_for("trl-standard")


def test_unreachable_hub_without_offline_setting_fails_at_once(monkeypatch):
    pytest.importorskip("datasets")
    from prefkit.ingest import sources

    monkeypatch.setattr(sources, "offline_setting", lambda: False)
    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    with pytest.raises(InputError, match="cannot be reached .*save_to_disk"):
        read_source("org/prefs")
