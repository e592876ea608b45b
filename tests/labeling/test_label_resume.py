"""A label run stopped at any point before `finish` resumes (issue 12: no dead end without shard counts)."""

from __future__ import annotations

import shutil

import pytest

from prefkit.artifacts import StageRun
from prefkit.labeling.stage import LabelConfig, label


class StopBeforeFinish(Exception):
    pass


def stopped_before_finish(candidates, out, config, monkeypatch):
    """Run label until the moment StageRun.finish is called, and stop there (the work folder stays)."""

    def stop(self, *args, **kwargs):
        raise StopBeforeFinish

    with monkeypatch.context() as patch:
        patch.setattr(StageRun, "finish", stop)
        with pytest.raises(StopBeforeFinish):
            label(candidates, out, config, progress=False)
    return out.parent / f".{out.name}.partial"


def test_rerun_after_the_shard_counts_were_removed_resumes(sentiment_candidates, tmp_path, monkeypatch):
    config = LabelConfig(shard_size=3)
    baseline = label(sentiment_candidates, tmp_path / "baseline", config, progress=False)
    work = stopped_before_finish(sentiment_candidates, tmp_path / "prefs", config, monkeypatch)
    # the state a kill between removing the per-shard counts and finish() used to leave
    for folder in [path for path in work.rglob("shard-counts") if path.is_dir()]:
        shutil.rmtree(folder)
    assert list(work.rglob("shard-*.parquet")), "the completed shards are still there"
    resumed = label(sentiment_candidates, tmp_path / "prefs", config, progress=False)
    assert resumed.data_path.read_bytes() == baseline.data_path.read_bytes()
    assert resumed.manifest.counts == baseline.manifest.counts
    assert not work.exists()


def test_a_shard_without_its_counts_is_labeled_again(sentiment_candidates, tmp_path, monkeypatch):
    config = LabelConfig(shard_size=3)
    baseline = label(sentiment_candidates, tmp_path / "baseline", config, progress=False)
    work = stopped_before_finish(sentiment_candidates, tmp_path / "prefs", config, monkeypatch)
    next(work.rglob("shard-counts/00001.json")).unlink()
    resumed = label(sentiment_candidates, tmp_path / "prefs", config, progress=False)
    assert resumed.manifest.counts == baseline.manifest.counts
    assert resumed.data_path.read_bytes() == baseline.data_path.read_bytes()
