"""The same conversational JSONL through TRL's DPOTrainer: its token ids against ours, and one step trains."""

from __future__ import annotations

import math

import pytest
from trainer_helpers import (
    conversation_rows,
    conversational_artifact,
    train_request,
    write_conversation_jsonl,
)


@pytest.mark.slow
def test_trl_tokenizes_conversations_like_us_but_for_the_trailing_newline(tiny_model_dir, tmp_path):
    """TRL keeps what the template writes after <|im_end|> (ChatML's '\\n') in each completion; we stop at
    <|im_end|>, where generation stops (docs/conversations.md). Every other id is the same."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from prefkit_trainers.dpo.data import tokenize_pairs

    from prefkit.models import load_causal_lm, load_tokenizer

    rows = conversation_rows(4)
    path = write_conversation_jsonl(tmp_path / "pairs.jsonl", rows)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    dataset = datasets.load_dataset("json", data_files=str(path), split="train")
    args = trl.DPOConfig(
        output_dir=str(tmp_path / "trl"),
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        bf16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=load_causal_lm(str(tiny_model_dir), device="cpu"),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    ours, _ = tokenize_pairs(
        tokenizer,
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=None,
        max_length=1024,
    )
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert len(newline) == 1
    for theirs, mine in zip(trainer.train_dataset, ours, strict=True):
        assert theirs["prompt_ids"] == mine.prompt  # system + history + generation prompt: identical
        assert theirs["chosen_ids"] == mine.chosen + newline  # the one difference: TRL trains on the '\n'
        assert theirs["rejected_ids"] == mine.rejected + newline
        assert mine.chosen[-1] == tokenizer.eos_token_id  # ours ends at <|im_end|>

    trainer.train()
    assert trainer.state.global_step == 1
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and math.isfinite(losses[0])


@pytest.mark.slow
def test_trl_plugin_passes_conversations_as_is(tiny_model_dir, tmp_path):
    """`--trainer trl` on message-list preferences hands TRL the messages (TRL then applies the template)."""
    pytest.importorskip("trl")
    from prefkit_trainers.trl.plugin import TRLTrainerPlugin, trl_row

    from prefkit.training.stage import TrainConfig

    rows = conversation_rows(4)
    assert trl_row(rows[0], chat_template=True) == rows[0]
    plain = {"prompt": rows[0]["prompt"], "chosen": "Fine.", "rejected": "Bad."}
    assert trl_row(plain, chat_template=True)["chosen"] == [{"role": "assistant", "content": "Fine."}]
    artifact = conversational_artifact(tmp_path / "preferences", rows)
    result = TRLTrainerPlugin().train(
        train_request(
            artifact, TrainConfig(policy=str(tiny_model_dir), trainer="trl", epochs=1, batch_size=2), tmp_path
        )
    )
    assert result.steps == 2 and result.extra["conversational"] is True
    assert all(math.isfinite(record["loss"]) for record in result.history)


# what each family's template writes after the end-of-turn token: TRL trains on it, prefkit stops before it
TRAILING_TEXT = {"chatml": "\n", "llama3": "", "mistral": "", "gemma": "\n"}


@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(TRAILING_TEXT))
def test_trl_ids_per_template_family(tiny_model_dir, tmp_path, style):
    """Prompt ids equal TRL's for all four families; completions differ by exactly the trailing text."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from jinja2.exceptions import TemplateError

    from prefkit.chat import encode_answer, encode_prompt
    from prefkit.models import load_causal_lm, load_tokenizer
    from prefkit.testing.chat_templates import with_chat_style

    tokenizer = with_chat_style(load_tokenizer(str(tiny_model_dir)), style)
    model = load_causal_lm(str(tiny_model_dir), device="cpu")
    row = conversation_rows(1)[0]
    history = row["prompt"][1:]  # TRL refuses a system turn under Mistral and Gemma (checked below)

    def trl_ids(prompt):
        args = trl.DPOConfig(output_dir=str(tmp_path / "trl"), report_to=[], use_cpu=True, bf16=False)
        data = datasets.Dataset.from_list([{**row, "prompt": prompt}])
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
        return trainer.train_dataset[0]

    theirs = trl_ids(history)
    trailing = tokenizer(TRAILING_TEXT[style], add_special_tokens=False)["input_ids"]
    assert theirs["prompt_ids"] == encode_prompt(tokenizer, history)
    assert theirs["chosen_ids"] == encode_answer(tokenizer, history, row["chosen"]) + trailing
    assert theirs["rejected_ids"] == encode_answer(tokenizer, history, row["rejected"]) + trailing
    if style in ("mistral", "gemma"):
        # with the system turn TRL stops at the template's error; prefkit merges it into the first user turn
        with pytest.raises(TemplateError):
            trl_ids(row["prompt"])
        assert "You answer in one short sentence.\n\nWrite one sentence" in tokenizer.decode(
            encode_prompt(tokenizer, row["prompt"])
        )
