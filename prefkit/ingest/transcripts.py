"""Anthropic HH-RLHF transcripts (`\\n\\nHuman: ... \\n\\nAssistant: ...`) parsed into chat turns."""

from __future__ import annotations

import re

from prefkit.conversation import Conversation

TURN = re.compile(r"\n\n(Human|Assistant): ?")
ROLE = {"Human": "user", "Assistant": "assistant"}


def is_transcript(text: object) -> bool:
    """True for a string holding at least one `\\n\\nHuman:` and one `\\n\\nAssistant:` marker."""
    return isinstance(text, str) and "\n\nHuman:" in text and "\n\nAssistant:" in text


def parse_transcript(text: str) -> Conversation:
    """The turns of a transcript as messages; text before the first marker is a system message.

    Raises ValueError (the caller adds file/row/field) when a marker is missing or a turn is empty,
    except a final empty assistant turn, which HH-RLHF never has but would mean "no answer".
    """
    parts = TURN.split(text)
    messages: Conversation = []
    preamble = parts[0].strip()
    if preamble:
        messages.append({"role": "system", "content": preamble})
    for marker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": ROLE[marker], "content": content.strip()})
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("does not end with an '\\n\\nAssistant:' turn")
    for index, message in enumerate(messages):
        if not message["content"]:
            raise ValueError(f"turn {index + 1} ({message['role']}) is empty")
    return messages
