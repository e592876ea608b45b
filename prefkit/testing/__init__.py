"""Helpers for tests and smoke runs: tiny models built locally in seconds."""

from prefkit.testing.tiny_model import build_tiny_llama

__all__ = ["build_tiny_llama"]
