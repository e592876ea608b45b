"""Fixtures for labeling tests: candidates artifacts written the way the sampling stage writes them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from prefkit.artifacts import StageRun
from prefkit.conversation import is_conversation
from prefkit.records import stage_schema


def write_candidates(
    out: Path, rows: list[dict], *, extra: dict | None = None, config: dict | None = None
) -> Path:
    """A finished 'candidates' artifact holding `rows` (missing token counts filled by word count;
    message-list prompts give a conversational artifact)."""
    filled = []
    for row in rows:
        row = dict(row)
        if "completion_tokens" not in row:
            row["completion_tokens"] = [len(text.split()) for text in row["completions"] or []]
        row.setdefault("completion_logprobs", None)
        filled.append(row)
    run = StageRun(out, "candidates", config or {"model": "test"}, {})
    run.open()
    # finish_reasons is written by the sampler but optional on read: include it only when a test gives it
    conversational = bool(rows) and is_conversation(rows[0]["prompt"])
    schema = stage_schema("candidates", conversational) | (
        {"finish_reasons": pl.List(pl.String())} if any("finish_reasons" in row for row in rows) else {}
    )
    run.write_data(pl.DataFrame(filled, schema=schema))
    run.finish(
        counts={"prompts": len(rows)}, extra=extra if extra is not None else {"use_chat_template": True}
    )
    return out


SENTIMENT_ROWS = [
    {
        "prompt_id": f"p{index}",
        "prompt": f"Write one sentence about a {topic}.",
        "completions": [
            f"The {topic} was wonderful and I love it.",
            f"The {topic} was terrible and awful.",
            f"The {topic} was there.",
        ],
    }
    for index, topic in enumerate(["movie", "book", "city", "song", "meal", "garden", "friend", "trip"])
]


@pytest.fixture()
def sentiment_candidates(tmp_path) -> Path:
    """Eight prompts, three candidates each: one clearly positive, one negative, one neutral."""
    return write_candidates(tmp_path / "candidates", SENTIMENT_ROWS)


@pytest.fixture(scope="session")
def sentiment_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A tiny trained POSITIVE/NEGATIVE classifier."""
    from tests.labeling.classifiers import build_sentiment_classifier

    return build_sentiment_classifier(tiny_model_dir, tmp_path_factory.mktemp("models") / "sentiment")


@pytest.fixture(scope="session")
def reward_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A tiny trained reward model (chat template from the tiny Llama's tokenizer)."""
    from tests.labeling.classifiers import build_reward_model

    return build_reward_model(tiny_model_dir, tmp_path_factory.mktemp("models") / "reward")
