"""Plugin discovery through entry points (`prefkit.samplers`, `.labelers`, `.trainers`, `.evals`)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from prefkit.errors import ConfigError, DependencyError

GROUPS = {
    "samplers": "prefkit.samplers",
    "labelers": "prefkit.labelers",
    "trainers": "prefkit.trainers",
    "evals": "prefkit.evals",
}

# the option that names a plugin of each kind (errors name it as the field)
OPTION_NAMES = {"samplers": "backend", "labelers": "labeler", "trainers": "trainer", "evals": "evaluator"}


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str
    distribution: str


def list_plugins(kind: str) -> list[PluginInfo]:
    """Every installed plugin of one kind, sorted by name."""
    group = GROUPS[kind]
    found = []
    for entry in metadata.entry_points(group=group):
        dist = entry.dist.name if entry.dist is not None else "?"
        found.append(PluginInfo(group=group, name=entry.name, target=entry.value, distribution=dist))
    return sorted(found, key=lambda info: info.name)


def load_plugin(kind: str, name: str) -> Any:
    """Load the object a plugin's entry point names; a clear error lists the installed alternatives."""
    group = GROUPS[kind]
    entries = {entry.name: entry for entry in metadata.entry_points(group=group)}
    if name not in entries:
        available = ", ".join(sorted(entries)) or "none"
        raise ConfigError(
            f"no {kind[:-1]} plugin named '{name}' (installed: {available})", field=OPTION_NAMES[kind]
        )
    try:
        return entries[name].load()
    except ImportError as error:
        raise DependencyError(
            f"the {kind[:-1]} plugin '{name}' could not be imported: {error}",
            hint="install the optional dependency it needs (see README, 'Install')",
        ) from None
