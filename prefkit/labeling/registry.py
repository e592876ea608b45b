"""Finding and constructing labelers by name (entry points in the `prefkit.labelers` group)."""

from __future__ import annotations

import inspect
from typing import Any

from prefkit.errors import ConfigError
from prefkit.labeling.base import Labeler
from prefkit.plugins import load_plugin
from prefkit.validation import refuse_non_finite


def load_labeler(name: str, options: dict[str, Any] | None = None) -> Labeler:
    """Construct the labeler plugin `name` as `Cls(**options)`; unknown options raise one clear ConfigError."""
    return check_labeler(name, options)(**dict(options or {}))


def check_labeler(name: str, options: dict[str, Any] | None = None) -> Any:
    """The labeler plugin's factory, after checking that it exists and accepts `options` (nothing is loaded)."""
    factory = load_plugin("labelers", name)
    options = dict(options or {})
    refuse_non_finite(options, "labeler_options")
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        raise ConfigError(
            f"labeler '{name}' does not accept these options ({error})",
            field="labeler_options",
            hint=f"see docs/labeling.md for the options of '{name}'",
        ) from None
    return factory
