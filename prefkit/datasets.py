"""Prompt sets shipped inside the package, addressable by name (e.g. `builtin:sentiment_train`)."""

from __future__ import annotations

from pathlib import Path

from prefkit.errors import InputError

BUILTIN_PREFIX = "builtin:"
PROMPTS_DIR = Path(__file__).parent / "data" / "prompts"


def builtin_prompt_sets() -> dict[str, Path]:
    """Names of the shipped prompt sets and their files."""
    return {path.stem: path for path in sorted(PROMPTS_DIR.glob("*.jsonl"))}


def is_builtin(spec: str | Path) -> bool:
    """True for `builtin:NAME`."""
    return str(spec).startswith(BUILTIN_PREFIX)


def builtin_prompt_file(spec: str) -> Path:
    """The file of `builtin:NAME` (see data_cards/); an unknown name lists the shipped ones."""
    name = spec[len(BUILTIN_PREFIX) :]
    sets = builtin_prompt_sets()
    if name not in sets:
        raise InputError(f"no built-in prompt set '{name}' (available: {', '.join(sets)})", file=spec)
    return sets[name]
