"""Small preference artifacts for trainer tests, written directly as StageRun outputs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from prefkit.artifacts import Artifact, StageRun, read_manifest
from prefkit.conversation import CONVERSATION_DTYPE, assistant_turn
from prefkit.records import PREFERENCES_SCHEMA, PREFERENCES_TRUNCATION_SCHEMA

TOPICS = [
    "movie",
    "book",
    "city",
    "song",
    "meal",
    "garden",
    "friend",
    "trip",
    "phone",
    "game",
    "teacher",
    "weather",
]


def easy_rows(count: int = 12) -> list[dict]:
    """Pairs where the chosen completion is always positive and the rejected one negative."""
    rows = []
    for index in range(count):
        topic = TOPICS[index % len(TOPICS)]
        chosen = f"The {topic} was wonderful and I felt happy about it."
        rejected = f"The {topic} was terrible and I felt sad about it, really awful."
        rows.append(
            {
                "prompt_id": f"p{index}",
                "prompt": f"Write one sentence about a {topic}.",
                "chosen": chosen,
                "rejected": rejected,
                "score_chosen": 0.9,
                "score_rejected": -0.8,
                "len_chosen": len(chosen),
                "len_rejected": len(rejected),
            }
        )
    return rows


def write_preferences(out: Path, rows: list[dict], use_chat_template: bool | None = True) -> Path:
    """A finished 'preferences' artifact holding `rows`."""
    run = StageRun(out, "preferences", {"rows": len(rows), "chat": use_chat_template}, {})
    run.open()
    # the truncation columns are optional: written only when a test gives them
    schema = PREFERENCES_SCHEMA | {
        name: dtype for name, dtype in PREFERENCES_TRUNCATION_SCHEMA.items() if rows and name in rows[0]
    }
    run.write_data(pl.DataFrame(rows, schema=schema))
    run.finish(counts={"pairs": len(rows)}, extra={"use_chat_template": use_chat_template})
    return out


def conversation_rows(count: int = 8) -> list[dict]:
    """TRL conversational preference rows: a system prompt and a three-user-turn history each."""
    rows = []
    for index in range(count):
        topic, other = TOPICS[index % len(TOPICS)], TOPICS[(index + 3) % len(TOPICS)]
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": "You answer in one short sentence."},
                    {"role": "user", "content": f"Write one sentence about a {topic}."},
                    {"role": "assistant", "content": f"The {topic} was nice."},
                    {"role": "user", "content": f"Now one about a {other}."},
                    {"role": "assistant", "content": f"The {other} was good."},
                    {"role": "user", "content": f"And how did the {topic} feel?"},
                ],
                "chosen": assistant_turn(f"The {topic} was wonderful and I felt happy about it."),
                "rejected": assistant_turn(f"The {topic} was terrible and I felt sad about it."),
            }
        )
    return rows


def write_conversation_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def conversational_artifact(out: Path, rows: list[dict]) -> Artifact:
    """A finished preferences artifact whose prompt/chosen/rejected columns are message lists."""
    frame = pl.DataFrame(
        {
            "prompt_id": [f"c{i}" for i in range(len(rows))],
            "prompt": [r["prompt"] for r in rows],
            "chosen": [r["chosen"] for r in rows],
            "rejected": [r["rejected"] for r in rows],
            "score_chosen": [1.0] * len(rows),
            "score_rejected": [0.0] * len(rows),
        },
        schema_overrides={name: CONVERSATION_DTYPE for name in ("prompt", "chosen", "rejected")},
    )
    run = StageRun(out, "preferences", {"rows": len(rows)}, {})
    run.open()
    run.write_data(frame)
    run.finish(counts={"pairs": len(rows)}, extra={"use_chat_template": True})
    return Artifact(out, read_manifest(out))


def train_request(artifact: Artifact, config, tmp_path: Path):
    """A TrainRequest on every pair of `artifact` (no eval split), with folders under tmp_path."""
    from prefkit.training.stage import TrainRequest

    work = tmp_path / "work"
    work.mkdir()
    return TrainRequest(
        preferences=artifact,
        config=config,
        work_dir=work,
        state_dir=tmp_path / "state",
        use_chat_template=None,
        train_indices=list(range(artifact.table().height)),
        eval_indices=[],
        cache_dir=tmp_path / "cache",
        progress=False,
    )
