"""Fixtures for trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_helpers import easy_rows, write_preferences


@pytest.fixture()
def easy_preferences(tmp_path) -> Path:
    return write_preferences(tmp_path / "preferences", easy_rows())
