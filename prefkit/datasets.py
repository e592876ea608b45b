"""Prompt sets shipped inside the package, addressable by name (e.g. `builtin:sentiment_train`)."""

from __future__ import annotations

from pathlib import Path

from prefkit.errors import InputError

BUILTIN_PREFIX = "builtin:"
PROMPTS_DIR = Path(__file__).parent / "data" / "prompts"


def builtin_prompt_sets() -> dict[str, Path]:
    """Names of the shipped prompt sets and their files."""
    return {path.stem: path for path in sorted(PROMPTS_DIR.glob("*.jsonl"))}


def resolve_prompts(spec: str | Path) -> Path:
    """A prompts path, or `builtin:NAME` for a shipped set (see data_cards/)."""
    text = str(spec)
    if not text.startswith(BUILTIN_PREFIX):
        return Path(text)
    name = text[len(BUILTIN_PREFIX) :]
    sets = builtin_prompt_sets()
    if name not in sets:
        raise InputError(f"no built-in prompt set '{name}' (available: {', '.join(sets)})", file=text)
    return sets[name]
