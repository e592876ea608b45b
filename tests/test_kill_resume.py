"""Kill -9 and resume: each stage killed at several points (down to the last moments before and inside
`finish`) and rerun gives the artifact an uninterrupted run gives (data byte-equal, weights bit-equal,
metrics equal, TensorBoard with each step once).

The kills happen in a subprocess at named points (`PREFKIT_TEST_KILL_AT=POINT[:N]`, see
`prefkit.validation.kill_point`): `<stage>-shard` after a shard is written, `<stage>-finish` when
`StageRun.finish` starts, `<stage>-rename` after the manifest is written and before the rename into
place, `train-step` after a training step is logged. Each rerun resumes what the killed run left, and
is itself killed at the next point, so one chain checks several resumes of the same work folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prefkit.cli import main

pytestmark = pytest.mark.slow


def prefkit_subprocess(
    args: list[str], kill_at: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m prefkit ARGS` with this test's environment, optionally killed at a named point."""
    env = dict(os.environ) | ({"PREFKIT_HOME": str(home)} if home else {})
    env.pop("PREFKIT_TEST_KILL_AT", None)
    if kill_at:
        env["PREFKIT_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "prefkit", *args], env=env, capture_output=True, text=True, timeout=300
    )


def kill_chain(args: list[str], points: list[str], home: Path | None = None) -> None:
    """Run `args`, killed at each point in turn (each run resumes the last), then once to the end."""
    for point in points:
        result = prefkit_subprocess(args, point, home)
        assert result.returncode == -signal.SIGKILL, f"{point}: not killed\n{result.stderr[-2000:]}"
    final = prefkit_subprocess(args, home=home)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "Traceback" not in final.stderr


def run_in_process(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code in (0, None)


def assert_same_files(resumed: Path, baseline: Path, names: list[str]) -> None:
    for name in names:
        assert (resumed / name).read_bytes() == (baseline / name).read_bytes(), name
    assert not list(resumed.parent.glob(f".{resumed.name}.*")), "a work folder was left behind"


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def tensorboard_steps(folder: Path) -> list[int]:
    """Every step logged for 'loss' across all event files of a checkpoint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    for events in sorted((folder / "tensorboard").glob("events.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "loss" in accumulator.Tags()["scalars"]:
            steps += [event.step for event in accumulator.Scalars("loss")]
    return steps


def without_timings(path: Path) -> list[dict]:
    drop = ("pairs_per_s", "tokens_per_s", "memory/")
    return [
        {key: value for key, value in json.loads(line).items() if not key.startswith(drop)}
        for line in path.read_text().splitlines()
    ]


def write_pairs(out: Path, count: int) -> Path:
    """A finished preferences artifact of `count` clear pairs (positive chosen, negative rejected)."""
    import polars as pl

    from prefkit.artifacts import StageRun
    from prefkit.records import PREFERENCES_SCHEMA

    rows = [
        {
            "prompt_id": f"p{index}",
            "prompt": f"Write one sentence about thing {index}.",
            "chosen": f"Thing {index} was wonderful and I was happy.",
            "rejected": f"Thing {index} was awful and sad.",
            "score_chosen": 0.9,
            "score_rejected": -0.7,
            "len_chosen": 8,
            "len_rejected": 6,
        }
        for index in range(count)
    ]
    run = StageRun(out, "preferences", {"pairs": count}, {})
    run.open()
    run.write_data(pl.DataFrame(rows, schema=PREFERENCES_SCHEMA))
    run.finish(counts={"pairs": count}, extra={"use_chat_template": False})
    return out


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Uninterrupted sample -> label -> train runs (the baselines), in this process."""
    root = tmp_path_factory.mktemp("baseline")
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": f"Write one sentence about thing {i}."}) + "\n" for i in range(6))
    )
    model = str(tiny_model_dir)
    paths = {"root": root, "prompts": prompts, "model": tiny_model_dir}
    paths["sample_args"] = [
        "sample", str(prompts), "--model", model, "--backend", "transformers", "-n", "3",
        "--max-new-tokens", "6", "--shard-size", "2", "--quiet",
    ]  # fmt: skip
    run_in_process([*paths["sample_args"], "--out", str(root / "candidates")])
    paths["label_args"] = ["label", str(root / "candidates"), "--shard-size", "2", "--no-progress"]
    run_in_process([*paths["label_args"], "--out", str(root / "preferences")])
    write_pairs(root / "pairs", count=8)  # 8 pairs, batch 2, 2 epochs: 8 steps to kill between
    paths["train_args"] = [
        "train", str(root / "pairs"), "--policy", model, "--epochs", "2", "--batch-size", "2",
        "--lr", "1e-3", "--save-every-steps", "1", "--no-progress",
    ]  # fmt: skip
    run_in_process([*paths["train_args"], "--out", str(root / "checkpoint")])
    return paths


def test_sample_killed_at_each_point_resumes_to_the_same_candidates(pipeline, tmp_path):
    out = tmp_path / "candidates"
    points = ["candidates-shard:2", "candidates-finish", "candidates-rename"]
    kill_chain([*pipeline["sample_args"], "--out", str(out)], points)
    assert_same_files(out, pipeline["root"] / "candidates", ["data.parquet"])
    assert manifest(out)["content_hash"] == manifest(pipeline["root"] / "candidates")["content_hash"]


def test_label_killed_at_each_point_resumes_to_the_same_preferences(pipeline, tmp_path):
    out = tmp_path / "preferences"
    points = ["preferences-shard:2", "preferences-finish", "preferences-rename"]
    kill_chain([*pipeline["label_args"], "--out", str(out)], points)
    assert_same_files(out, pipeline["root"] / "preferences", ["data.parquet"])
    assert manifest(out)["counts"] == manifest(pipeline["root"] / "preferences")["counts"]


def test_train_killed_at_each_point_resumes_to_the_same_weights_and_logs_each_step_once(pipeline, tmp_path):
    out, baseline = tmp_path / "checkpoint", pipeline["root"] / "checkpoint"
    # step 3 is logged but its state is not saved yet (saved every step, after logging): the rerun
    # resumes from step 2 and must not log step 3 twice; the second kill lands at step 5
    points = ["train-step:3", "train-step:3", "checkpoint-finish", "checkpoint-rename"]
    kill_chain([*pipeline["train_args"], "--out", str(out)], points)
    assert_same_files(out, baseline, ["model.safetensors", "config.json", "tokenizer.json"])
    assert without_timings(out / "metrics.jsonl") == without_timings(baseline / "metrics.jsonl")
    steps = tensorboard_steps(out)
    assert steps == sorted(set(steps)) == tensorboard_steps(baseline)
    # the content hash covers the model, not its logs: the resumed and uninterrupted runs share it
    assert manifest(out)["content_hash"] == manifest(baseline)["content_hash"]


def test_eval_killed_at_each_point_resumes_to_the_same_leaderboard(pipeline, tmp_path):
    import polars as pl

    args = [
        "eval", f"base={pipeline['model']}", f"trained={pipeline['root'] / 'checkpoint'}",
        "-O", f"prompts={pipeline['prompts']}", "-O", "n=2", "-O", "max_new_tokens=4", "-O", "max_prompts=3",
        "--no-plots", "--quiet",
    ]  # fmt: skip
    run_in_process([*args, "--out", str(tmp_path / "baseline")])
    # a fresh PREFKIT_HOME: the result cache must be filled (and killed) by the chain itself
    points = ["eval-cache:1", "eval-cache:1", "eval-finish", "eval-rename"]
    kill_chain([*args, "--out", str(tmp_path / "eval")], points, home=tmp_path / "home")
    resumed = pl.read_parquet(tmp_path / "eval" / "leaderboard.parquet")
    baseline = pl.read_parquet(tmp_path / "baseline" / "leaderboard.parquet")
    timing = [c for c in baseline.columns if "cached" in c or "seconds" in c or c.endswith("_per_s")]
    assert resumed.drop(timing).equals(baseline.drop(timing))
    assert not list((tmp_path / "home").rglob("*.partial")), "a cache entry was left half-written"
    assert not list(tmp_path.glob(".eval.*"))


def test_iterate_killed_in_each_stage_resumes_to_the_same_round(pipeline, tmp_path):
    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "policy": str(pipeline["model"]),
                "prompts": str(pipeline["prompts"]),
                "heldout_prompts": None,
                "rounds": 1,
                "evaluators": [],
                "sample": {"backend": "transformers", "n": 3, "max_new_tokens": 6, "shard_size": 2},
                "label": {"shard_size": 2},
                "train": {"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "save_every_steps": 1},
            }
        )
    )
    run_in_process(["iterate", str(config), "--run-dir", str(tmp_path / "baseline")])
    points = ["candidates-shard:2", "preferences-finish", "checkpoint-rename"]
    kill_chain(["iterate", str(config), "--run-dir", str(tmp_path / "run")], points)
    resumed, baseline = tmp_path / "run" / "round-01", tmp_path / "baseline" / "round-01"
    for stage in ("candidates", "preferences"):
        assert_same_files(resumed / stage, baseline / stage, ["data.parquet"])
    assert_same_files(resumed / "checkpoint", baseline / "checkpoint", ["model.safetensors"])
    assert (
        manifest(resumed / "checkpoint")["content_hash"] == manifest(baseline / "checkpoint")["content_hash"]
    )
