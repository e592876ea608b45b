"""Fixtures for the sampling tests: one transformers sampler on the tiny model, shared by the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def transformers_sampler(tiny_model_dir):
    """A TransformersSampler on the tiny Llama (float32, CPU, batches of 2 prompts)."""
    from prefkit.sampling.options import SamplerOptions
    from prefkit.sampling.transformers_backend import TransformersSampler

    sampler = TransformersSampler(
        str(tiny_model_dir), SamplerOptions(dtype="float32", device="cpu", batch_size=2)
    )
    yield sampler
    sampler.close()
