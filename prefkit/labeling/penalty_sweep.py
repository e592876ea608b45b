"""Deprecated name of `prefkit.labeling.length_penalty_sweep` (kept for one release; import that instead)."""

from __future__ import annotations

import warnings

from prefkit.labeling.length_penalty_sweep import (
    PenaltyPoint,
    length_neutral_penalty,
    length_penalty_sweep,
    render_sweep,
    sweep_point,
)

warnings.warn(
    "prefkit.labeling.penalty_sweep is deprecated, use prefkit.labeling.length_penalty_sweep",
    DeprecationWarning,
    stacklevel=2,
)

# the old function name; same function
penalty_sweep = length_penalty_sweep

__all__ = [
    "PenaltyPoint",
    "length_neutral_penalty",
    "length_penalty_sweep",
    "penalty_sweep",
    "render_sweep",
    "sweep_point",
]
