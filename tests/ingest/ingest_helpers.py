"""Small preference files in every accepted format, written in the test (no hub)."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ["movie", "book", "city", "song"]


def good(topic: str) -> str:
    return f"The {topic} was wonderful and I felt happy about it."


def bad(topic: str) -> str:
    return f"The {topic} was terrible and I felt sad about it."


def question(topic: str) -> str:
    return f"Write one sentence about a {topic}."


def history(topic: str) -> list[dict]:
    """A system prompt and a 3-turn history ending with the user turn."""
    return [
        {"role": "system", "content": "You are a friendly assistant."},
        {"role": "user", "content": f"Do you know a {topic}?"},
        {"role": "assistant", "content": f"Yes, I know a {topic}."},
        {"role": "user", "content": question(topic)},
    ]


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def rows_for(format_name: str) -> list[dict]:
    """Four rows of `format_name` whose chosen answers are positive and rejected ones negative."""
    rows = []
    for topic in TOPICS:
        if format_name == "trl-standard":
            rows.append({"prompt": question(topic), "chosen": good(topic), "rejected": bad(topic)})
        elif format_name == "trl-conversational":
            rows.append(
                {
                    "prompt": history(topic),
                    "chosen": assistant(good(topic)),
                    "rejected": assistant(bad(topic)),
                }
            )
        elif format_name == "implicit-prompt":
            prefix = f"Question: {question(topic)} Answer:"
            rows.append({"chosen": f"{prefix} {good(topic)}", "rejected": f"{prefix} {bad(topic)}"})
        elif format_name == "implicit-prompt-conversational":
            rows.append(
                {
                    "chosen": history(topic) + assistant(good(topic)),
                    "rejected": history(topic) + assistant(bad(topic)),
                }
            )
        elif format_name == "hh-rlhf":
            transcript = f"\n\nHuman: Do you know a {topic}?\n\nAssistant: Yes.\n\nHuman: {question(topic)}\n\nAssistant:"
            rows.append({"chosen": f"{transcript} {good(topic)}", "rejected": f"{transcript} {bad(topic)}"})
        elif format_name == "ultrafeedback-binarized":
            user = {"role": "user", "content": question(topic)}
            rows.append(
                {
                    "prompt": question(topic),
                    "prompt_id": f"uf-{topic}",
                    "chosen": [user, *assistant(good(topic))],
                    "rejected": [user, *assistant(bad(topic))],
                    "messages": [user, *assistant(good(topic))],
                    "score_chosen": 9.0,
                    "score_rejected": 2.5,
                }
            )
        else:
            raise ValueError(format_name)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def bad_row(format_name: str) -> tuple[dict, str, str]:
    """A broken second row for `format_name`, the field its error must name, and words it must hold."""
    row = dict(rows_for(format_name)[1])
    if format_name == "trl-standard":
        return dict(row, chosen=["not", "a string"]), "chosen", "must be a string"
    if format_name == "trl-conversational":
        broken = [dict(m) for m in row["prompt"]]
        broken[1]["role"] = "narrator"
        return dict(row, prompt=broken), "prompt[1].role", "unknown role"
    if format_name == "ultrafeedback-binarized":
        return dict(row, score_chosen="high"), "score_chosen", "must be a number"
    if format_name == "hh-rlhf":
        return dict(row, rejected="no markers at all"), "rejected", "not an HH-RLHF transcript"
    if format_name == "implicit-prompt":
        return dict(row, rejected="Completely different text"), "rejected", "word boundary"
    if format_name == "implicit-prompt-conversational":
        changed = [*row["rejected"][:2], {"role": "assistant", "content": "No."}, *row["rejected"][3:]]
        return dict(row, rejected=changed), "rejected", "differ before"
    raise ValueError(format_name)
