"""The GPU check's table: rows from the step files, a failed or skipped step named, the TRL ratio computed."""

from __future__ import annotations

import json

from tests.benchmarks.gpu_modules import load

report = load("report")


def write_status(logs, step, rc=0, **extra):
    status = {"step": step, "rc": rc, "started": 100.0, "ended": 112.5} | extra
    (logs / f"{step}.status.json").write_text(json.dumps(status))


def sampling_json(vllm_rate: float, transformers_rate: float) -> dict:
    return {
        "arguments": {"num_prompts": "256", "n": "4", "max_new_tokens": "256", "batch_size": "16"},
        "results": [
            {"backend": "transformers", "tokens_per_second": transformers_rate, "load_seconds": 3.0},
            {"backend": "vllm", "tokens_per_second": vllm_rate, "load_seconds": 40.0},
        ],
    }


def test_rows_in_step_order_with_failures_and_skips_named(tmp_path):
    write_status(tmp_path, "sampling")
    (tmp_path / "sampling.json").write_text(json.dumps(sampling_json(20_000.0, 1_600.0)))
    write_status(tmp_path, "reward-scoring", rc=124)
    write_status(tmp_path, "sampling-smollm2", rc=None, skipped="SmolLM2 weights not present")
    write_status(tmp_path, "models")  # ran, but wrote no models.json
    rows = report.collect(tmp_path)
    assert [row["step"] for row in rows] == [
        "models",
        "sampling: vLLM vs transformers",
        "sampling: vLLM vs transformers, SmolLM2",
        "reward scoring: vLLM pooling vs transformers",
    ]
    models, sampling, smollm2, reward = rows
    assert models["status"] == "failed" and "models.json was not written" in models["result"]
    assert sampling["status"] == "ok" and sampling["seconds"] == 12.5
    assert "1,600 tok/s (batch 16); 12.50x (meets the 10x target)" in sampling["result"]  # 20,000 / 1,600
    assert smollm2["status"] == "skipped" and smollm2["result"] == "SmolLM2 weights not present"
    assert reward["status"] == "failed" and reward["result"] == "timed out; see reward-scoring.log"
    assert report.main([str(tmp_path)]) == 1
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[2] == "| step | status | wall s | peak memory | result |"
    assert len(table) == 4 + len(rows)


def test_a_backend_that_did_not_run_fails_the_row(tmp_path):
    data = sampling_json(1.0, 1.0)
    data["results"] = data["results"][:1]
    data["skipped"] = {"vllm": "vllm is not installed"}
    write_status(tmp_path, "sampling")
    (tmp_path / "sampling.json").write_text(json.dumps(data))
    (row,) = report.collect(tmp_path)
    assert row["status"] == "failed" and "vllm is not installed" in row["result"]


def test_iterate_rows_one_per_stage_with_peak_memory(tmp_path):
    write_status(tmp_path, "iterate")
    stage = {"status": "ok", "seconds": 30.0, "peak_mib": 71_680.0, "memory": "gpu"}
    stages = [
        stage
        | {
            "stage": "sample",
            "counts": {"prompts": 4, "completions": 16, "completion_tokens": 4000, "seconds": 2.0},
        },
        stage
        | {
            "stage": "label",
            "counts": {"candidates": 16, "pairs": 4, "labeler_usage": {"samples_per_s": 8.0}},
        },
        stage | {"stage": "train", "counts": {"train_pairs": 4, "steps": 1}},
        {"stage": "eval", "status": "failed", "error": "no eval/manifest.json"},
    ]
    shape = {"prompts": 4, "n": 4, "max_new_tokens": 256, "heldout": 2}
    (tmp_path / "iterate.json").write_text(json.dumps({"rc": 1, "shape": shape, "stages": stages}))
    rows = report.collect(tmp_path)
    assert [row["status"] for row in rows] == ["failed", "ok", "ok", "ok", "failed"]
    assert rows[1]["peak"] == "70.0 GiB GPU" and "2,000 tok/s" in rows[1]["result"]
    assert "exit code 1" in rows[0]["result"]


def test_train_json_rows_fastest_prefkit_against_fastest_trl(tmp_path):
    write_status(tmp_path, "train")
    rows = [
        {
            "name": "prefkit separate",
            "trainer": "prefkit",
            "pairs_per_s": 10.0,
            "mfu": 0.3,
            "batch_size": 8,
        },
        {
            "name": "prefkit shared_prefix",
            "trainer": "prefkit",
            "pairs_per_s": 14.0,
            "mfu": 0.42,
            "batch_size": 8,
            "peak_memory_mb": 30720,
        },
        {"name": "prefkit shared_prefix, largest batch (64)", "trainer": "prefkit", "oom": True},
        {
            "name": "prefkit shared_prefix, largest batch (32)",
            "trainer": "prefkit",
            "pairs_per_s": 30.0,
            "batch_size": 32,
        },
        {
            "name": "trl default (checkpointing, reference in each step)",
            "trainer": "trl",
            "pairs_per_s": 4.0,
            "batch_size": 8,
        },
        {"name": "trl without checkpointing", "trainer": "trl", "pairs_per_s": 7.0, "batch_size": 8},
        {"name": "trl precompute_ref_log_probs", "trainer": "trl", "failed": True},
    ]
    (tmp_path / "train.json").write_text(json.dumps({"preset": "realistic", "rows": rows}))
    (row,) = report.collect(tmp_path)
    assert row["result"] == (
        "5 of 7 rows ran; prefkit best at batch 8: prefkit shared_prefix 14.00 pairs/s (MFU 42.0 %); "
        "TRL best: trl without checkpointing 7.00 (2.00x)"
    )
    assert row["peak"] == "30.0 GiB"
