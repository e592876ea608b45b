"""Stage rows of the GPU check's iterate round: times from the manifests, peaks from the memory samples."""

from __future__ import annotations

import csv
import datetime as dt
import json

from tests.benchmarks.gpu_modules import load

iterate_round = load("iterate_round")
memory = load("memory")

T0 = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)


def stamp(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def test_each_stage_gets_its_time_and_the_peak_inside_it(tmp_path):
    run = tmp_path / "run"
    spans = {"sample": (0, 10), "label": (10, 13), "train": (13, 14)}  # eval never finished
    for stage, (start, end) in spans.items():
        folder = run / iterate_round.STAGES[stage]
        folder.mkdir(parents=True)
        manifest = {"started_at": stamp(start), "finished_at": stamp(end), "counts": {"k": start}}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    base = T0.timestamp()
    # the engine holds 80 GiB up to second 10.5: the label stage's first second must not inherit it
    samples = [(base + t / 4, 81920.0 if t / 4 <= 10.5 else 20480.0 + t) for t in range(0, 64)]
    samples[10] = (samples[10][0], 90000.0)  # sampling's own peak, at 2.5 s
    path = tmp_path / "memory.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "mib", "gpu"])
        writer.writerows(samples)

    rows = {row["stage"]: row for row in iterate_round.stage_rows(run, path)}
    assert rows["sample"] | {"counts": None} == {
        "stage": "sample",
        "status": "ok",
        "seconds": 10.0,
        "peak_mib": 90000.0,
        "memory": "gpu",
        "counts": None,
    }
    assert rows["label"]["seconds"] == 3.0
    assert rows["label"]["peak_mib"] == 20480.0 + 56  # samples from 11 s to 14 s
    assert rows["train"]["peak_mib"] == 20480.0 + 60  # a 1 s stage keeps its whole interval: 13 s to 15 s
    assert rows["eval"] == {
        "stage": "eval",
        "status": "failed",
        "error": f"no {run / 'eval' / 'manifest.json'}",
    }


def test_memory_of_a_process_tree_is_sampled_while_it_runs(tmp_path):
    import sys

    code, source = memory.run_sampled(
        [sys.executable, "-c", "import time; block = bytearray(80 * 2**20); time.sleep(1.0)"],
        tmp_path / "memory.csv",
        interval=0.05,
    )
    assert code == 0
    source_read, samples = memory.read_samples(tmp_path / "memory.csv")
    assert source_read == source
    if source == "rss":  # no GPU here: the child's 80 MiB block shows in its resident memory
        assert max(mib for _, mib in samples) > 80
    assert memory.peak_between(samples, 0.0, 1.0) is None  # nothing sampled in 1970
