"""Helpers for tests and smoke runs: tiny models built locally in seconds, test tokenizers in chat styles."""

from prefkit.testing.chat_templates import CHAT_STYLES, with_chat_style
from prefkit.testing.tiny_model import build_tiny_llama

__all__ = ["CHAT_STYLES", "build_tiny_llama", "with_chat_style"]
