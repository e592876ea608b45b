"""Finding and constructing labelers by name (entry points in the `prefkit.labelers` group)."""

from __future__ import annotations

from typing import Any

from prefkit.plugins import check_plugin, construct_plugin
from prefkit.protocols import Labeler


def load_labeler(name: str, options: dict[str, Any] | None = None) -> Labeler:
    """Construct the labeler plugin `name` as `Cls(**options)`; unknown options raise one clear ConfigError."""
    return construct_plugin("labelers", name, options)


def check_labeler(name: str, options: dict[str, Any] | None = None) -> Any:
    """The labeler plugin's factory, after checking that it exists and accepts `options` (nothing is loaded)."""
    return check_plugin("labelers", name, options)
