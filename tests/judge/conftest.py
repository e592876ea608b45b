"""Judge test fixtures."""

from __future__ import annotations

import pytest

from tests.judge.fakes import fast_judge_options


@pytest.fixture()
def fast_settings(tmp_path) -> dict:
    """Judge options for tests: tiny timeouts and backoff, a private cache file."""
    return fast_judge_options(tmp_path)
