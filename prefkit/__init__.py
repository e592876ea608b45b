"""prefkit: prompts -> preference data -> DPO-trained models -> evaluation, in one reproducible loop.

The Python API has the CLI's names; each function reads artifact folders and writes one:

    prefkit.sample(prompts, out, SampleConfig(...))
    prefkit.label(candidates, out, LabelConfig(...))
    prefkit.train(preferences, out, TrainConfig(...))
    prefkit.evaluate([checkpoint, ...], out, EvalConfig(...))
    prefkit.iterate(IterateConfig(...), run_dir)
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "sample": ("prefkit.sampling.stage", "sample"),
    "SampleConfig": ("prefkit.sampling.options", "SampleConfig"),
    "label": ("prefkit.labeling.stage", "label"),
    "LabelConfig": ("prefkit.labeling.config", "LabelConfig"),
    "train": ("prefkit.training.stage", "train"),
    "TrainConfig": ("prefkit.training.stage", "TrainConfig"),
    "evaluate": ("prefkit.evaluation.stage", "evaluate"),
    "EvalConfig": ("prefkit.evaluation.config", "EvalConfig"),
    "iterate": ("prefkit.iteration.stage", "iterate"),
    "IterateConfig": ("prefkit.iteration.stage", "IterateConfig"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # heavy modules (torch, vllm) load only when their stage is used
    if name in _EXPORTS:
        import importlib

        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'prefkit' has no attribute '{name}'")
