"""Conversational records: a prompt is a plain string or a list of chat messages.

This module is the one contract every stage shares for conversations (TRL's conversational format):

- a message is ``{"role": ROLE, "content": TEXT}`` with ROLE one of ``system``, ``user``, ``assistant``,
  ``tool``; a ``system`` message may only come first;
- a conversational prompt is a non-empty list of messages that ends with a ``user`` (or ``tool``) turn;
- a conversational completion (``chosen`` / ``rejected`` in preferences) is
  ``[{"role": "assistant", "content": TEXT}]``.

Parquet stores a conversation as ``list[struct{role, content}]`` (``CONVERSATION_DTYPE``); a column is
either all strings or all conversations, never mixed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.errors import InputError

ROLES = ("system", "user", "assistant", "tool")
PROMPT_END_ROLES = ("user", "tool")
CONVERSATION_DTYPE = pl.List(pl.Struct({"role": pl.String(), "content": pl.String()}))

Message = dict[str, str]
Conversation = list[Message]
Prompt = str | Conversation


def is_conversation(value: Any) -> bool:
    """True for a list (or tuple) value: a conversation, whether or not it is valid yet."""
    return isinstance(value, list | tuple)


def validate_conversation(
    value: Any,
    *,
    file: str | Path | None = None,
    row: int | None = None,
    field: str = "prompt",
    must_end_with_user: bool = True,
) -> Conversation:
    """Check a message list and return it as plain dicts; the first problem raises InputError naming
    the file, row and field (``prompt[2].role`` style)."""
    if not is_conversation(value):
        raise InputError(
            f"must be a list of chat messages, got {type(value).__name__}", file=file, row=row, field=field
        )
    if not value:
        raise InputError("is an empty conversation", file=file, row=row, field=field)
    messages: Conversation = []
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise InputError(
                f"must be an object with 'role' and 'content', got {type(message).__name__}",
                file=file,
                row=row,
                field=where,
            )
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(
                f"unknown role {role!r} (expected one of {', '.join(ROLES)})",
                file=file,
                row=row,
                field=f"{where}.role",
            )
        if role == "system" and index != 0:
            raise InputError("a system message may only come first", file=file, row=row, field=where)
        if not isinstance(content, str):
            raise InputError(
                f"must be a string, got {type(content).__name__}",
                file=file,
                row=row,
                field=f"{where}.content",
            )
        if not content.strip():
            raise InputError("is empty", file=file, row=row, field=f"{where}.content")
        messages.append({"role": role, "content": content})
    if must_end_with_user and messages[-1]["role"] not in PROMPT_END_ROLES:
        raise InputError(
            f"must end with a user turn, but ends with '{messages[-1]['role']}'",
            file=file,
            row=row,
            field=field,
            hint="the last turn is what the model answers; drop the trailing assistant turn",
        )
    if must_end_with_user and not any(m["role"] == "user" for m in messages):
        raise InputError("has no user turn", file=file, row=row, field=field)
    return messages


def assistant_turn(text: str) -> Conversation:
    """A completion in conversational form: one assistant message."""
    return [{"role": "assistant", "content": text}]


def completion_text(completion: str | Sequence[Message]) -> str:
    """The text of a completion: the string itself, or the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    for message in reversed(list(completion)):
        if message.get("role") == "assistant":
            return message["content"]
    raise InputError("a conversational completion has no assistant message")


def prompt_key(prompt: Prompt) -> str:
    """A stable string for a prompt (a dict key, a cache key, a hash input): the text itself, or
    canonical JSON of the messages."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([{"role": m["role"], "content": m["content"]} for m in prompt], ensure_ascii=False)


def last_user_text(prompt: Prompt) -> str:
    """The text a single-turn scorer sees as the question: the string, or the last user message."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt)):
        if message["role"] == "user":
            return message["content"]
    return prompt[-1]["content"]


def display_prompt(prompt: Prompt) -> str:
    """A readable one-string form for logs, cards and reports (``role: text`` per turn)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def column_dtype(conversational: bool) -> pl.DataType:
    """The Parquet dtype of a prompt/chosen/rejected column."""
    return CONVERSATION_DTYPE if conversational else pl.String()


def check_uniform(values: Sequence[Any], *, file: str | Path | None = None, field: str = "prompt") -> bool:
    """True if every value is a conversation, False if every value is a string; a mix raises InputError
    naming the first row (counted from 1) that differs from the first."""
    if not values:
        return False
    first = is_conversation(values[0])
    for index, value in enumerate(values, start=1):
        if is_conversation(value) != first:
            kind = "a message list" if is_conversation(value) else "a string"
            expected = "message lists" if first else "strings"
            raise InputError(
                f"is {kind}, but earlier rows are {expected} (a file holds one kind)",
                file=file,
                row=index,
                field=field,
            )
    return first
