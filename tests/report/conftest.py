"""Small known artifacts for the report tests: written by hand (Parquet + manifest) so every text and
number on the page is known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from prefkit.artifacts import Manifest
from prefkit.conversation import CONVERSATION_DTYPE

TOPICS = ["movie", "book", "city", "song", "meal", "garden"]


def write_artifact(
    folder: Path, stage: str, frame: pl.DataFrame, *, counts=None, extra=None, config=None
) -> Path:
    folder.mkdir(parents=True)
    frame.write_parquet(folder / "data.parquet")
    manifest = Manifest(
        stage=stage, fingerprint="f" * 64, config=config or {}, counts=counts or {}, extra=extra or {}
    )
    (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\n---\n# {stage} card\n")
    return folder


def pair_rows(round_index: int, count: int = 6) -> dict[str, list]:
    """Pair i of round r: chosen 'Round r: a lovely <topic>.' vs rejected 'Round r: a dull <topic>, sadly...'."""
    topics = [TOPICS[i % len(TOPICS)] for i in range(count)]
    chosen = [f"Round {round_index}: a lovely {t}." for t in topics]
    rejected = [f"Round {round_index}: a dull {t}, sadly, and more words here." for t in topics]
    return {
        "prompt_id": [f"p{i}" for i in range(count)],
        "prompt": [f"Write one sentence about a {t}." for t in topics],
        "chosen": chosen,
        "rejected": rejected,
        "score_chosen": [0.5 + 0.01 * i for i in range(count)],
        "score_rejected": [-0.2 - 0.1 * i for i in range(count)],
        "len_chosen": [len(c.split()) for c in chosen],
        "len_rejected": [len(r.split()) for r in rejected],
        "margin": [0.7 + 0.11 * i for i in range(count)],
        "chosen_index": [0] * count,
        "rejected_index": [1] * count,
        # the first pair's rejected answer was cut at the token limit
        "finish_chosen": ["stop"] * count,
        "finish_rejected": ["length"] + ["stop"] * (count - 1),
    }


def write_preferences(folder: Path, round_index: int, count: int = 6) -> Path:
    return write_artifact(
        folder,
        "preferences",
        pl.DataFrame(pair_rows(round_index, count)),
        counts={"pairs": count, "dropped": {"tie": 2}},
        extra={"length_unit": "tokens", "length_penalty": 0.0},
    )


def write_candidates(folder: Path, round_index: int) -> Path:
    rows = pair_rows(round_index)
    frame = pl.DataFrame(
        {
            "prompt_id": rows["prompt_id"],
            "prompt": rows["prompt"],
            "completions": [
                [c, r, "a third answer"] for c, r in zip(rows["chosen"], rows["rejected"], strict=True)
            ],
            "completion_tokens": [[5, 9, 3]] * 6,
            "completion_logprobs": [[None, None, None]] * 6,
            "finish_reasons": [["stop", "length", "stop"]] * 6,
        },
        schema_overrides={"completion_logprobs": pl.List(pl.Float64())},
    )
    return write_artifact(folder, "candidates", frame)


def write_eval(folder: Path) -> Path:
    subjects = ["round-00", "round-01", "round-02"]
    frame = pl.DataFrame(
        {
            "subject": subjects,
            "model": ["base", "run/round-01/checkpoint", "run/round-02/checkpoint"],
            "content_hash": ["a" * 64, "b" * 64, "c" * 64],
            "reward-kl/reward_mean": [0.1, 0.3, 0.5],
            "reward-kl/reward_se": [0.05, 0.04, 0.03],
            "reward-kl/kl_mean": [0.0, 2.0, 5.0],
            "reward-kl/kl_se": [0.0, 0.2, 0.4],
            "reward-kl/length_chars": [20.0, 22.0, 30.0],
            "reward-kl/labeler": ["vader"] * 3,
            "reward-kl/n_prompts": [2] * 3,
        }
    )
    write_artifact(folder, "eval", pl.DataFrame({"x": [1]}))
    frame.write_parquet(folder / "leaderboard.parquet")
    samples = folder / "results" / "round-01" / "reward-kl"
    samples.mkdir(parents=True)
    lines = [  # prompt a: lengths 10 and 20 (mean 15); prompt b: 30 (mean 30) -> mean 22.5, se 7.5
        {"prompt_id": "a", "completion": "x" * 10},
        {"prompt_id": "a", "completion": "x" * 20},
        {"prompt_id": "b", "completion": "x" * 30},
    ]
    (samples / "reward_kl_samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


@pytest.fixture()
def run_folder(tmp_path) -> Path:
    """An iterate run of two rounds with pairs, candidates, a round report and an evaluation."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "iterate.json").write_text(json.dumps({"name": "known-run", "rounds": 2}))
    for index in (1, 2):
        write_preferences(run / f"round-{index:02d}" / "preferences", index)
    write_candidates(run / "round-01" / "candidates", 1)
    pl.DataFrame(
        {
            "round": [0, 1, 2],
            "reward_mean": [0.1, 0.3, 0.5],
            "reward_se": [0.05, 0.04, 0.03],
            "kl_mean": [0.0, 2.0, 5.0],
            "kl_se": [0.0, 0.2, 0.4],
            "length_chars": [20.0, 22.0, 30.0],
            "length_penalty": [None, 0.001, 0.002],
            "pairs": [None, 6, 6],
            "len_chosen_tokens": [None, 5.0, 5.0],
            "len_rejected_tokens": [None, 9.0, 9.0],
            "win_vs_previous": [None, 0.6, 0.55],
            "win_vs_previous_low": [None, 0.5, 0.45],
            "win_vs_previous_high": [None, 0.7, 0.65],
        }
    ).write_parquet(run / "report.parquet")
    write_eval(run / "eval")
    return run


@pytest.fixture()
def conversation_preferences(tmp_path) -> Path:
    """Preferences whose prompts are conversations (system + user + assistant + user)."""
    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a colour."},
    ]
    frame = pl.DataFrame(
        {
            "prompt_id": ["c0"],
            "prompt": [history],
            "chosen": [[{"role": "assistant", "content": "Blue."}]],
            "rejected": [[{"role": "assistant", "content": "I cannot say."}]],
            "score_chosen": [1.0],
            "score_rejected": [0.0],
            "len_chosen": [2],
            "len_rejected": [4],
            "margin": [1.0],
        },
        schema_overrides={
            "prompt": CONVERSATION_DTYPE,
            "chosen": CONVERSATION_DTYPE,
            "rejected": CONVERSATION_DTYPE,
        },
    )
    return write_artifact(tmp_path / "conv-prefs", "preferences", frame, extra={"length_unit": "tokens"})
