"""The stage skeleton (`with StageRun(...) as run:`): skip when done, nothing on disk before `open()`,
finish on a clean exit, keep the work folder for resume on an error."""

from __future__ import annotations

import polars as pl
import pytest

from prefkit.artifacts import StageRun, read_manifest
from prefkit.errors import ArtifactError, InputError

FRAME = pl.DataFrame({"prompt_id": ["a", "b"], "prompt": ["x", "y"]})


def write_prompts_artifact(out, config: dict, *, shards: int = 0) -> StageRun:
    """One run of a toy 'prompts' stage through the skeleton, as every stage uses it."""
    with StageRun(out, "prompts", config, {}) as run:
        if run.already_done:
            return run
        run.open()
        for index in range(shards):
            run.write_shard(index, FRAME.slice(index, 1))
        run.write_data(FRAME)
        run.set_result(counts={"rows": FRAME.height}, card="# toy\n", extra={"note": "hi", "api_key": "k"})
    return run


def test_clean_exit_finishes_the_artifact_and_removes_the_work_folder(tmp_path):
    out = tmp_path / "art"
    run = write_prompts_artifact(out, {"a": 1}, shards=2)
    assert run.finished and not (tmp_path / ".art.partial").exists()
    manifest = read_manifest(out)
    assert (manifest.stage, manifest.counts, manifest.extra) == ("prompts", {"rows": 2}, {"note": "hi"})
    assert (out / "README.md").read_text() == "# toy\n"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data.parquet", "manifest.json"]
    assert run.artifact().table().equals(FRAME)


def test_a_finished_artifact_is_skipped_untouched(tmp_path):
    out = tmp_path / "art"
    write_prompts_artifact(out, {"a": 1})
    before = (out / "manifest.json").read_bytes()
    again = write_prompts_artifact(out, {"a": 1})
    assert again.already_done and not again.opened and not again.finished
    assert (out / "manifest.json").read_bytes() == before
    assert not (tmp_path / ".art.partial").exists()


def test_an_error_after_open_keeps_the_work_folder_and_the_rerun_resumes_it(tmp_path):
    out = tmp_path / "art"
    with pytest.raises(RuntimeError, match="killed"):
        with StageRun(out, "prompts", {"a": 1}, {}) as run:
            run.open()
            run.write_shard(0, FRAME.slice(0, 1))
            run.set_result(counts={"rows": 1})
            raise RuntimeError("killed")
    assert not out.exists() and (tmp_path / ".art.partial" / "shards" / "shard-00000.parquet").exists()
    with StageRun(out, "prompts", {"a": 1}, {}) as resumed:
        resumed.open()
        assert resumed.completed_shards() == {0}
        resumed.write_data(resumed.read_shards())
    assert read_manifest(out).counts == {}  # no set_result: the clean exit still finishes
    assert resumed.artifact().table().height == 1


def test_nothing_exists_on_disk_when_validation_fails_or_the_run_never_opens(tmp_path):
    out = tmp_path / "art"
    with pytest.raises(InputError):
        with StageRun(out, "prompts", {"a": 1}, {}) as run:
            raise InputError("bad row", row=3)
    with StageRun(out, "prompts", {"a": 1}, {}) as run:
        pass  # e.g. a training process that is not the main one: it never opens nor finishes
    assert not run.finished
    assert list(tmp_path.iterdir()) == []


def test_replace_same_stage_replaces_only_an_artifact_of_that_stage(tmp_path):
    out = tmp_path / "art"
    write_prompts_artifact(out, {"a": 1})
    with pytest.raises(ArtifactError, match="different inputs or config"):
        StageRun(out, "prompts", {"a": 2}, {})
    with StageRun(out, "prompts", {"a": 2}, {}, replace_same_stage=True) as run:
        assert not run.already_done
        run.open()
        run.write_data(FRAME.head(1))
    assert read_manifest(out).config == {"a": 2} and run.artifact().table().height == 1
    with pytest.raises(ArtifactError, match="already holds a finished 'prompts' artifact"):
        StageRun(out, "eval", {"a": 3}, {}, replace_same_stage=True)
