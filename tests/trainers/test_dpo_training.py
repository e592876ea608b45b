"""End-to-end training of the tiny model: learning, artifacts, caching, resume, sweeps, variants, errors."""

from __future__ import annotations

import json

import pytest
import torch
from prefkit_trainers.dpo.losses import LOSS_NAMES
from prefkit_trainers.dpo.telemetry import read_metrics
from trainer_helpers import easy_rows, write_preferences

from prefkit.errors import ConfigError, ModelError
from prefkit.training.stage import TrainConfig, find_degeneracy, train


def tiny_config(model_dir, **overrides) -> TrainConfig:
    values = {
        "policy": str(model_dir),
        "learning_rate": 1e-3,
        "epochs": 2,
        "batch_size": 4,
        "save_every_steps": 0,
    }
    return TrainConfig(**{**values, **overrides})


def test_training_increases_margin_and_writes_a_loadable_checkpoint(
    tiny_model_dir, easy_preferences, tmp_path
):
    from prefkit.models import load_causal_lm, load_tokenizer
    from prefkit.scoring import completion_logprobs

    out = tmp_path / "checkpoint"
    artifact = train(
        easy_preferences, out, tiny_config(tiny_model_dir, epochs=3, eval_fraction=0.25), progress=False
    )
    history = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in history] == list(range(1, artifact.manifest.counts["steps"] + 1))
    assert history[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy == reference at step 1
    assert history[-1]["rewards/margins"] > 0.3 and history[-1]["rewards/accuracies"] == 1.0
    assert history[-1]["eval/rewards/accuracies"] == 1.0  # held-out prompts move too
    assert history[-1]["loss"] < history[0]["loss"] - 0.2
    for key in (
        "lr",
        "grad_norm",
        "pairs_per_s",
        "memory/peak_rss_mb",
        "memory/params_mb",
        "memory/optimizer_mb",
    ):
        assert key in history[-1]
    assert artifact.manifest.stage == "checkpoint" and artifact.manifest.extra["degenerate"] is None
    assert (out / "README.md").exists() and (out / "model.safetensors").exists()
    assert not (out / ".train-state").exists()

    # an independent check through prefkit.scoring: chosen minus rejected log-prob grew on every pair
    rows = easy_rows()
    prompts = [r["prompt"] for r in rows]
    tokenizer = load_tokenizer(str(out))

    def gap(model_dir):
        model = load_causal_lm(str(model_dir), device="cpu")
        chosen = completion_logprobs(
            model, tokenizer, prompts, [r["chosen"] for r in rows], use_chat_template=True
        )
        rejected = completion_logprobs(
            model, tokenizer, prompts, [r["rejected"] for r in rows], use_chat_template=True
        )
        return [c - r for c, r in zip(chosen, rejected, strict=True)]

    assert all(after > before for before, after in zip(gap(tiny_model_dir), gap(out), strict=True))


def test_rerun_is_skipped_and_reference_logprobs_are_reused(tiny_model_dir, easy_preferences, tmp_path):
    first = train(easy_preferences, tmp_path / "a", tiny_config(tiny_model_dir, epochs=1), progress=False)
    again = train(easy_preferences, tmp_path / "a", tiny_config(tiny_model_dir, epochs=1), progress=False)
    assert again.manifest.finished_at == first.manifest.finished_at  # skipped, not retrained
    other_beta = train(
        easy_preferences, tmp_path / "b", tiny_config(tiny_model_dir, epochs=1, beta=0.5), progress=False
    )
    assert other_beta.manifest.extra["reference_cache"] == "hit"
    with pytest.raises(Exception, match="different inputs or config"):
        train(easy_preferences, tmp_path / "a", tiny_config(tiny_model_dir, epochs=2), progress=False)


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_loss_curve(
    tiny_model_dir, easy_preferences, tmp_path, monkeypatch
):
    from prefkit_trainers.dpo import loop

    config = tiny_config(tiny_model_dir, batch_size=2, save_every_steps=3)  # 6 steps per epoch, 12 in all
    reference = read_metrics(
        train(easy_preferences, tmp_path / "full", config, progress=False).path / "metrics.jsonl"
    )

    original_advance = loop.ProgressBar.advance

    def advance_then_die(self, record):
        original_advance(self, record)
        if record["step"] == 8:
            raise KeyboardInterrupt  # killed after step 8; the last saved state is step 6

    monkeypatch.setattr(loop.ProgressBar, "advance", advance_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(easy_preferences, tmp_path / "resumed", config, progress=False)
    partial = tmp_path / ".resumed.partial"
    assert json.loads((partial / ".train-state" / "progress.json").read_text())["step"] == 6
    monkeypatch.setattr(loop.ProgressBar, "advance", original_advance)
    resumed = read_metrics(
        train(easy_preferences, tmp_path / "resumed", config, progress=False).path / "metrics.jsonl"
    )
    assert [r["step"] for r in resumed] == list(range(1, 13))
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in reference], abs=1e-6)


def test_beta_sweep_writes_one_checkpoint_per_beta_and_a_table(tiny_model_dir, easy_preferences, tmp_path):
    import polars as pl

    from prefkit.models import load_causal_lm

    out = tmp_path / "sweep"
    artifact = train(
        easy_preferences, out, tiny_config(tiny_model_dir, epochs=1, beta="0.05,0.5"), progress=False
    )
    assert artifact.manifest.stage == "checkpoint-sweep"
    table = pl.read_parquet(out / "data.parquet")
    assert table["beta"].to_list() == [0.05, 0.5] and table["checkpoint"].to_list() == [
        "beta-0.05",
        "beta-0.5",
    ]
    assert (
        "| beta |" in (out / "sweep.md").read_text()
        and len(json.loads((out / "sweep.json").read_text())) == 2
    )
    for name in ("beta-0.05", "beta-0.5"):
        assert load_causal_lm(str(out / name), device="cpu") is not None
    # implicit rewards scale with beta, so the larger beta reports the larger margin after the same updates
    last = [
        read_metrics(out / name / "metrics.jsonl")[-1]["rewards/margins"]
        for name in ("beta-0.05", "beta-0.5")
    ]
    assert last[1] > last[0] > 0


def test_degenerate_runs_are_named():
    steady = [{"logps/chosen_mean": -2.0}, {"logps/chosen_mean": -2.1}]
    collapsed = [{"logps/chosen_mean": -2.0}, {"logps/chosen_mean": -3.0}, {"logps/chosen_mean": -4.5}]
    assert find_degeneracy(steady, None, 1.0) is None
    assert "collapsed" in find_degeneracy(collapsed, None, 1.0)
    assert "non-finite" in find_degeneracy(steady, "non-finite loss or gradient at step 3", 1.0)
    assert find_degeneracy([], None, 1.0) == "no optimizer step was taken"


def test_nan_loss_stops_without_applying_the_update(tiny_model_dir, easy_preferences, tmp_path, monkeypatch):
    from prefkit_trainers.dpo import loop

    real_loss = loop.preference_loss

    def poisoned(*args, **kwargs):
        loss, metrics = real_loss(*args, **kwargs)
        return loss * float("nan"), metrics

    monkeypatch.setattr(loop, "preference_loss", poisoned)
    artifact = train(
        easy_preferences, tmp_path / "nan", tiny_config(tiny_model_dir, epochs=1), progress=False
    )
    assert "non-finite" in artifact.manifest.extra["degenerate"]
    assert artifact.manifest.counts["steps"] == 0


LOSS_RUNS = [(name, {}) for name in LOSS_NAMES if name not in ("exo_pair", "robust", "rdpo", "simpo")] + [
    ("exo_pair", {"label_smoothing": 0.1}),
    ("robust", {"label_smoothing": 0.1}),
    ("rdpo", {"alpha": 0.01}),
    ("simpo", {"gamma": 0.5}),
    ("sigmoid", {"label_smoothing": 0.1}),
    ("sigmoid:1,sft:0.2", {}),
    ("sigmoid", {"f_divergence": "js_divergence"}),
    ("sigmoid", {"wpo": True}),
    ("sigmoid", {"ld_alpha": 0.5}),
    ("sigmoid", {"layout": "padding_free"}),
]


@pytest.mark.parametrize(
    ("loss", "options"), LOSS_RUNS, ids=[f"{loss}-{options}" for loss, options in LOSS_RUNS]
)
def test_every_loss_trains(tiny_model_dir, easy_preferences, tmp_path, loss, options):
    """`prefkit train --loss X` on the tiny model: three steps on one batch of all 12 pairs lower the loss."""
    config = tiny_config(
        tiny_model_dir,
        epochs=3,
        batch_size=12,
        warmup_ratio=0.0,
        scheduler="constant",
        loss=loss,
        options=options,
    )
    history = read_metrics(
        train(easy_preferences, tmp_path / "run", config, progress=False).path / "metrics.jsonl"
    )
    losses = [record["loss"] for record in history]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 1e-4, losses


@pytest.mark.slow
def test_reference_free_and_stronger_reference(tiny_model_dir, easy_preferences, tmp_path):
    free = train(
        easy_preferences,
        tmp_path / "free",
        tiny_config(tiny_model_dir, epochs=1, reference="none"),
        progress=False,
    )
    assert free.manifest.extra["reference_cache"] == "reference-free"
    first = read_metrics(free.path / "metrics.jsonl")[0]
    assert first["rewards/chosen"] == pytest.approx(0.1 * first["logps/chosen"], rel=1e-5)
    # a reference model folder (here: a trained checkpoint, same tokenizer) is accepted and cached
    other = train(
        easy_preferences,
        tmp_path / "other",
        tiny_config(tiny_model_dir, epochs=1, reference=str(free.path)),
        progress=False,
    )
    assert read_metrics(other.path / "metrics.jsonl")[0]["rewards/margins"] != pytest.approx(0.0, abs=1e-4)


def test_reference_with_another_tokenizer_is_refused(tiny_model_dir, easy_preferences, tmp_path):
    from prefkit.testing import build_tiny_llama

    stranger = build_tiny_llama(tmp_path / "stranger", vocab_size=300)
    with pytest.raises(ModelError, match="tokenizer differs"):
        train(
            easy_preferences,
            tmp_path / "x",
            tiny_config(tiny_model_dir, reference=str(stranger)),
            progress=False,
        )


def test_bad_config_values_fail_early(tiny_model_dir):
    with pytest.raises(ValueError, match="beta"):
        tiny_config(tiny_model_dir, beta="0.1,abc")
    with pytest.raises(ValueError, match="scheduler"):
        tiny_config(tiny_model_dir, scheduler="exp")
    assert tiny_config(tiny_model_dir, beta="0.01, 0.05").betas() == [0.01, 0.05]


def test_unknown_loss_names_the_choices(tiny_model_dir, easy_preferences, tmp_path):
    with pytest.raises(ConfigError, match="sigmoid"):
        train(easy_preferences, tmp_path / "x", tiny_config(tiny_model_dir, loss="kto"), progress=False)


def test_lora_adapters_are_merged_on_save(tiny_model_dir, easy_preferences, tmp_path):
    pytest.importorskip("peft")
    from prefkit.models import load_causal_lm

    out = train(
        easy_preferences,
        tmp_path / "lora",
        tiny_config(tiny_model_dir, epochs=1, lora=True, lora_r=4),
        progress=False,
    ).path
    assert not (out / "adapter_config.json").exists()
    trained, base = load_causal_lm(str(out), device="cpu"), load_causal_lm(str(tiny_model_dir), device="cpu")
    changed = [
        not torch.equal(a, b)
        for a, b in zip(trained.state_dict().values(), base.state_dict().values(), strict=True)
    ]
    assert any(changed)


def test_chat_template_is_taken_from_the_preferences_manifest(tiny_model_dir, tmp_path):
    plain = write_preferences(tmp_path / "plain", easy_rows(4), use_chat_template=False)
    chat = write_preferences(tmp_path / "chat", easy_rows(4), use_chat_template=True)
    a = train(plain, tmp_path / "a", tiny_config(tiny_model_dir, epochs=1), progress=False)
    b = train(chat, tmp_path / "b", tiny_config(tiny_model_dir, epochs=1), progress=False)
    first_a = read_metrics(a.path / "metrics.jsonl")[0]["logps/chosen"]
    first_b = read_metrics(b.path / "metrics.jsonl")[0]["logps/chosen"]
    assert first_a != pytest.approx(first_b)  # different prompt renderings -> different log-probs


def test_token_budget_and_checkpointing_train_the_same_steps(tiny_model_dir, easy_preferences, tmp_path):
    """A token budget and per-layer checkpointing change how a step is computed, not what it computes."""
    plain = tiny_config(tiny_model_dir, epochs=1, batch_size=6, warmup_ratio=0.0, scheduler="constant")
    varied = plain.model_copy(
        update={"options": {"max_tokens_per_batch": 64, "activation_checkpointing": "every_2"}}
    )
    runs = [
        train(easy_preferences, tmp_path / name, c, progress=False)
        for name, c in (("a", plain), ("b", varied))
    ]
    losses = [[r["loss"] for r in read_metrics(run.path / "metrics.jsonl")] for run in runs]
    assert len(losses[1]) == 2 and losses[1] == pytest.approx(losses[0], abs=1e-5)
    extra = runs[1].manifest.extra
    assert extra["activation_checkpointing"] == "every_2" and extra["max_tokens_per_batch"] == 64
    assert runs[0].manifest.extra["activation_checkpointing"] == "off"
