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
    """A prompts path, `builtin:NAME` for a shipped set (see data_cards/), or a hub dataset id (its train
    split, copied once into $PREFKIT_HOME/hub/)."""
    text = str(spec)
    if not text.startswith(BUILTIN_PREFIX):
        from prefkit.ingest.hub import looks_like_hub_id

        if looks_like_hub_id(text) and not Path(text).exists():
            from prefkit.ingest.prompts import local_copy

            return local_copy(text)  # a hub id: read once into a local `datasets` folder
        return Path(text)
    name = text[len(BUILTIN_PREFIX) :]
    sets = builtin_prompt_sets()
    if name not in sets:
        raise InputError(f"no built-in prompt set '{name}' (available: {', '.join(sets)})", file=text)
    return sets[name]
