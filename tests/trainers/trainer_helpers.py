"""Small preference artifacts for trainer tests, written directly as StageRun outputs."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefkit.artifacts import StageRun
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
