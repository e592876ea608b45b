"""The sampling stage: artifact contents, card, no-op reruns, resume after a failure, refusals."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

import prefkit.plugins as plugins
from prefkit.artifacts import open_artifact
from prefkit.errors import ArtifactError, InputError
from prefkit.records import CANDIDATES_SCHEMA
from prefkit.sampling.stage import SampleConfig, sample


def tiny_config(model_dir, **overrides) -> SampleConfig:
    settings = {
        "model": str(model_dir),
        "backend": "transformers",
        "n": 2,
        "max_new_tokens": 6,
        "shard_size": 3,
    }
    return SampleConfig(**(settings | {"dtype": "float32", "batch_size": 4} | overrides))


@pytest.fixture()
def reuse_sampler(monkeypatch, transformers_sampler):
    """Make the stage reuse the session's tiny-model sampler and record what it is asked to sample."""
    calls: list[list[str]] = []

    class Recording:
        name = "transformers"
        max_model_len = transformers_sampler.max_model_len

        def __init__(self, model, options):
            assert options.use_chat_template is True  # resolved by the stage before the backend starts

        def generate(self, prompts, params):
            calls.append(list(prompts))
            return transformers_sampler.generate(prompts, params)

        def close(self):
            pass

    monkeypatch.setattr(plugins, "load_plugin", lambda kind, name: Recording)
    return calls


def test_sample_writes_a_candidates_artifact_with_manifest_and_card(
    tmp_path, tiny_model_dir, prompts_file, reuse_sampler
):
    artifact = sample(
        prompts_file, tmp_path / "cands", tiny_config(tiny_model_dir, logprobs=False), progress=False
    )

    table = open_artifact(artifact.path, "candidates").table()
    assert table.height == 8
    assert {name: table.schema[name] for name in CANDIDATES_SCHEMA} == CANDIDATES_SCHEMA
    assert table["prompt_id"].to_list() == [f"t{i}" for i in range(8)]
    assert table["completions"].list.len().to_list() == [2] * 8
    assert all(value is None for value in table["completion_logprobs"].explode().to_list())
    tokens = table["completion_tokens"].explode()
    assert tokens.min() >= 1 and tokens.max() <= 6
    manifest = artifact.manifest
    assert manifest.extra["use_chat_template"] is True
    assert manifest.extra["sampler"]["backend"] == "transformers"
    assert manifest.counts["prompts"] == 8 and manifest.counts["completions"] == 16
    assert manifest.counts["completion_tokens"] == int(tokens.sum())
    assert len(reuse_sampler) == 3  # shards of 3, 3 and 2 prompts

    card = (artifact.path / "README.md").read_text()
    front_matter = yaml.safe_load(card.split("---")[1])
    assert front_matter["license"] == "other"
    assert front_matter["size_categories"] == ["n<1K"]
    assert front_matter["source_prompts"]["sha256"] == manifest.inputs["prompts"]
    assert "<|im_start|>user\nWrite one sentence about a movie.<|im_end|>" in card
    assert f"| tokens | {round(float(tokens.mean()), 2)} |" in card


def test_rerun_with_same_inputs_is_a_no_op(
    tmp_path, tiny_model_dir, prompts_file, reuse_sampler, monkeypatch
):
    config = tiny_config(tiny_model_dir)
    first = sample(prompts_file, tmp_path / "cands", config, progress=False)

    def no_sampler(kind, name):
        raise AssertionError("a finished artifact must not start a sampler")

    monkeypatch.setattr(plugins, "load_plugin", no_sampler)
    again = sample(prompts_file, tmp_path / "cands", config, progress=False)
    assert again.manifest == first.manifest


def test_killed_run_resumes_with_only_the_missing_shards(
    tmp_path, tiny_model_dir, prompts_file, reuse_sampler, monkeypatch
):
    config = tiny_config(tiny_model_dir, shard_size=2, logprobs=True)  # 4 shards of 2 prompts
    reference = sample(prompts_file, tmp_path / "uninterrupted", config, progress=False).table()
    reuse_sampler.clear()

    recording = plugins.load_plugin("samplers", "transformers")

    class FailsOnSecondShard(recording):
        def generate(self, prompts, params):
            if len(reuse_sampler) == 1:
                raise RuntimeError("injected failure")
            return super().generate(prompts, params)

    monkeypatch.setattr(plugins, "load_plugin", lambda kind, name: FailsOnSecondShard)
    out = tmp_path / "cands"
    with pytest.raises(RuntimeError, match="injected failure"):
        sample(prompts_file, out, config, progress=False)
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / ".cands.partial" / "shards").iterdir()) == [
        "shard-00000.parquet"
    ]

    reuse_sampler.clear()
    monkeypatch.setattr(plugins, "load_plugin", lambda kind, name: recording)
    resumed = sample(prompts_file, out, config, progress=False)

    assert reuse_sampler == [
        ["Write one sentence about a " + t + "." for t in pair]
        for pair in (["city", "song"], ["meal", "garden"], ["friend", "trip"])
    ]
    assert resumed.table().equals(reference)
    assert not (tmp_path / ".cands.partial").exists()


def test_changed_config_is_refused_unless_forced(tmp_path, tiny_model_dir, prompts_file, reuse_sampler):
    out = tmp_path / "cands"
    first = sample(prompts_file, out, tiny_config(tiny_model_dir), progress=False).table()

    for change in ({"seed": 1}, {"max_new_tokens": 5}, {"n": 3}):
        with pytest.raises(ArtifactError, match="different inputs or config"):
            sample(prompts_file, out, tiny_config(tiny_model_dir, **change), progress=False)

    replaced = sample(
        prompts_file, out, tiny_config(tiny_model_dir, seed=1), force=True, progress=False
    ).table()
    assert replaced["prompt_id"].to_list() == first["prompt_id"].to_list()
    assert replaced["completions"].to_list() != first["completions"].to_list()


def test_prompt_too_long_names_file_and_prompt_and_leaves_nothing(tmp_path, tiny_model_dir, reuse_sampler):
    prompts = tmp_path / "long.jsonl"
    rows = [
        {"prompt_id": "short", "prompt": "Hello"},
        {"prompt_id": "huge", "prompt": "the book was bad " * 300},
    ]
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "cands"

    with pytest.raises(InputError) as caught:
        sample(prompts, out, tiny_config(tiny_model_dir), progress=False)

    message = str(caught.value)
    assert str(prompts) in message and "'huge'" in message and "512" in message
    assert reuse_sampler == []
    assert not out.exists() and not (tmp_path / ".cands.partial").exists()


def test_finish_reasons_are_stored_and_counted(tmp_path, tiny_model_dir, prompts_file, reuse_sampler):
    artifact = sample(
        prompts_file, tmp_path / "cands", tiny_config(tiny_model_dir, max_new_tokens=2), progress=False
    )
    reasons = artifact.table()["finish_reasons"].explode().to_list()
    assert len(reasons) == 16 and set(reasons) <= {"stop", "length"}
    assert artifact.manifest.counts["finish_reasons"] == dict(Counter(reasons))


def test_already_templated_prompt_is_refused_before_anything_is_written(
    tmp_path, tiny_model_dir, reuse_sampler
):
    """A prompt rendered by hand would be wrapped in the template twice: refused with the way out."""
    prompts = tmp_path / "templated.jsonl"
    rows = [
        {"prompt_id": "plain", "prompt": "Hello"},
        {"prompt_id": "rendered", "prompt": "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"},
    ]
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "cands"

    with pytest.raises(InputError) as caught:
        sample(prompts, out, tiny_config(tiny_model_dir), progress=False)

    message = str(caught.value)
    assert message.startswith(
        f"{prompts}, row 2, field 'prompt': already contains the chat template's special"
    )
    assert "--no-chat-template" in message
    assert reuse_sampler == [] and not out.exists()
