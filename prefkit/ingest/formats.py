"""Detect a preference data set's format and normalise its rows into prefkit preference records.

Formats (detected from the first row, after `--columns` renames; every row must then match):

- `prefkit`: a preferences artifact folder written by `prefkit label` (used as is);
- `trl-standard`: `prompt`, `chosen`, `rejected` strings;
- `trl-conversational`: `prompt` a message list, `chosen` / `rejected` assistant message lists;
- `ultrafeedback-binarized`: `prompt` a string, `chosen` / `rejected` full conversations (user + assistant),
  `score_chosen` / `score_rejected` kept as scores;
- `implicit-prompt`: only `chosen` / `rejected` (strings or message lists); the shared prompt is split off;
- `hh-rlhf`: only `chosen` / `rejected`, Anthropic `\\n\\nHuman: ... \\n\\nAssistant: ...` transcripts.

A prompt may also come from an `instruction` column. Conversational rows follow prefkit.conversation:
prompt = message list ending with a user turn, chosen / rejected = `[{"role": "assistant", ...}]`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from prefkit.conversation import (
    Conversation,
    assistant_turn,
    completion_text,
    is_conversation,
    prompt_key,
    validate_conversation,
)
from prefkit.errors import InputError
from prefkit.ingest.prefix import split_messages, split_text
from prefkit.ingest.sources import SourceRows
from prefkit.ingest.transcripts import is_transcript, parse_transcript

FORMATS = {
    "prefkit": "a preferences artifact folder from `prefkit label`",
    "trl-standard": "prompt, chosen, rejected strings",
    "trl-conversational": "prompt, chosen, rejected message lists",
    "ultrafeedback-binarized": "prompt string + chosen/rejected conversations + score_chosen/score_rejected",
    "implicit-prompt": "only chosen, rejected (strings or message lists sharing the prompt)",
    "hh-rlhf": "only chosen, rejected as '\\n\\nHuman: ... \\n\\nAssistant: ...' transcripts",
}


@dataclass
class PreferenceSet:
    """Normalised preference rows (PREFERENCES_SCHEMA fields), the detected format, and whether the rows
    are conversational (message lists) or plain strings."""

    rows: list[dict[str, Any]]
    format: str
    conversational: bool


def accepted_formats() -> str:
    """One line naming every accepted format and its columns (for error messages)."""
    return "; ".join(f"{name} ({columns})" for name, columns in FORMATS.items())


def detect_format(source: SourceRows) -> str:
    """The format of a data set, from its first row; an unknown shape raises one line listing the columns
    seen and the formats accepted."""
    if source.artifact_stage == "preferences":
        return "prefkit"
    if not source.rows:
        raise InputError("holds no rows", file=source.origin)
    first = source.rows[0]
    has = {name for name, value in first.items() if value is not None}
    if {"chosen", "rejected"} <= has:
        if "prompt" in has or "instruction" in has:
            prompt = first.get("prompt", first.get("instruction"))
            if is_conversation(first["chosen"]) and not is_conversation(prompt):
                if {"score_chosen", "score_rejected"} <= has:
                    return "ultrafeedback-binarized"
                return "trl-conversational"
            if is_conversation(prompt) or is_conversation(first["chosen"]):
                return "trl-conversational"
            return "trl-standard"
        if is_transcript(first["chosen"]):
            return "hh-rlhf"
        return "implicit-prompt"
    raise InputError(
        f"unknown preference format (columns: {', '.join(source.columns) or 'none'}); accepted: "
        f"{accepted_formats()}",
        file=source.origin,
        hint="rename columns with --columns prompt=COLUMN,chosen=COLUMN,rejected=COLUMN",
    )


def normalise_preferences(source: SourceRows, format_name: str | None = None) -> PreferenceSet:
    """Every row as a prefkit preference record; the first bad row raises InputError naming file/row/field."""
    format_name = format_name or detect_format(source)
    conversational = format_name in ("trl-conversational", "ultrafeedback-binarized", "hh-rlhf")
    if format_name == "implicit-prompt" and source.rows:
        conversational = is_conversation(source.rows[0].get("chosen"))
    rows = []
    for row, number in zip(source.rows, source.row_numbers, strict=True):
        where = _Where(source.origin, number)
        if format_name in ("trl-standard", "prefkit"):
            prompt, chosen, rejected = _standard(row, where)
        elif format_name in ("trl-conversational", "ultrafeedback-binarized"):
            prompt, chosen, rejected = _conversational(row, where)
        elif format_name == "hh-rlhf":
            prompt, chosen, rejected = _hh_rlhf(row, where)
        elif format_name == "implicit-prompt":
            prompt, chosen, rejected = _implicit(row, where, conversational)
        else:
            raise InputError(f"unknown format '{format_name}' (accepted: {', '.join(FORMATS)})")
        rows.append(_record(row, where, prompt, chosen, rejected))
    return PreferenceSet(rows=rows, format=format_name, conversational=conversational)


@dataclass(frozen=True)
class _Where:
    file: str
    row: int

    def error(self, message: str, field: str, hint: str | None = None) -> InputError:
        return InputError(message, file=self.file, row=self.row, field=field, hint=hint)


def _text(row: dict, name: str, where: _Where, format_hint: str = "") -> str:
    value = row.get(name)
    if value is None:
        raise where.error("is missing", name)
    if not isinstance(value, str):
        raise where.error(f"must be a string{format_hint}, got {type(value).__name__}", name)
    if not value.strip():
        raise where.error("is empty", name)
    return value


def _standard(row: dict, where: _Where) -> tuple[str, str, str]:
    hint = " (earlier rows are the TRL standard format)"
    prompt_field = "prompt" if "prompt" in row else "instruction"
    return (
        _text(row, prompt_field, where, hint),
        _text(row, "chosen", where, hint),
        _text(row, "rejected", where, hint),
    )


def _conversational(row: dict, where: _Where) -> tuple[Conversation, Conversation, Conversation]:
    prompt_field = "prompt" if "prompt" in row else "instruction"
    prompt = row.get(prompt_field)
    if prompt is None:
        raise where.error("is missing", prompt_field)
    finals, histories = [], []
    for name in ("chosen", "rejected"):
        value = row.get(name)
        if value is None:
            raise where.error("is missing", name)
        if isinstance(value, str):
            value = assistant_turn(value)
        turns = validate_conversation(
            value, file=where.file, row=where.row, field=name, must_end_with_user=False
        )
        if turns[-1]["role"] != "assistant":
            raise where.error(f"must end with an assistant turn, ends with '{turns[-1]['role']}'", name)
        finals.append(turns[-1])
        histories.append(turns[:-1])
    if histories[0] != histories[1]:
        raise where.error("repeats a conversation history that differs from 'chosen'", "rejected")
    history = histories[0]
    if is_conversation(prompt):
        prompt = validate_conversation(prompt, file=where.file, row=where.row, field=prompt_field)
        if history and history != prompt:
            raise where.error("repeats a conversation history that differs from 'prompt'", "chosen")
    elif isinstance(prompt, str) and prompt.strip():
        # UltraFeedback: chosen holds the whole conversation; its history is the prompt as messages
        prompt = history or [{"role": "user", "content": prompt}]
        prompt = validate_conversation(prompt, file=where.file, row=where.row, field="chosen")
    else:
        raise where.error("must be a message list or a non-empty string", prompt_field)
    return prompt, [finals[0]], [finals[1]]


def _hh_rlhf(row: dict, where: _Where) -> tuple[Conversation, Conversation, Conversation]:
    turns = []
    for name in ("chosen", "rejected"):
        text = _text(row, name, where, " (earlier rows are HH-RLHF transcripts)")
        try:
            turns.append(parse_transcript(text))
        except ValueError as error:
            raise where.error(f"is not an HH-RLHF transcript: {error}", name) from None
    try:
        prompt, good, bad = split_messages(turns[0], turns[1])
    except ValueError as error:
        raise where.error(str(error), "rejected") from None
    prompt = validate_conversation(prompt, file=where.file, row=where.row, field="chosen")
    return prompt, [good], [bad]


def _implicit(row: dict, where: _Where, conversational: bool):
    if not conversational:
        hint = " (earlier rows are implicit-prompt strings)"
        chosen, rejected = _text(row, "chosen", where, hint), _text(row, "rejected", where, hint)
        try:
            return split_text(chosen, rejected)
        except ValueError as error:
            raise where.error(str(error), "rejected") from None
    chosen, rejected = (
        validate_conversation(
            row.get(name), file=where.file, row=where.row, field=name, must_end_with_user=False
        )
        for name in ("chosen", "rejected")
    )
    try:
        prompt, good, bad = split_messages(chosen, rejected)
    except ValueError as error:
        raise where.error(str(error), "rejected") from None
    prompt = validate_conversation(prompt, file=where.file, row=where.row, field="chosen")
    return prompt, [good], [bad]


def _score(row: dict, name: str, where: _Where) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise where.error(f"must be a number, got {value!r}", name) from None
    if not math.isfinite(number):
        raise where.error(f"must be finite, got {value!r}", name)
    return number


def _record(row: dict, where: _Where, prompt, chosen, rejected) -> dict[str, Any]:
    prompt_id = row.get("prompt_id", row.get("id"))
    if prompt_id is None or prompt_id == "":
        # pairs of one prompt share an id, so eval splits never put one prompt on both sides
        prompt_id = "p" + hashlib.sha256(prompt_key(prompt).encode()).hexdigest()[:12]
    elif isinstance(prompt_id, bool) or not isinstance(prompt_id, str | int):
        raise where.error(f"must be a string or integer, got {type(prompt_id).__name__}", "prompt_id")
    good, bad = completion_text(chosen), completion_text(rejected)
    if not good.strip():
        raise where.error("is empty", "chosen")
    if not bad.strip():
        raise where.error("is empty", "rejected")
    return {
        "prompt_id": str(prompt_id),
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "score_chosen": _score(row, "score_chosen", where),
        "score_rejected": _score(row, "score_rejected", where),
        "len_chosen": len(good),
        "len_rejected": len(bad),
    }
