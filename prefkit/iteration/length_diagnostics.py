"""Why length moves: what round k's policy did, against its reference, to the quantities that set length.

Two small forward passes per round (policy and reference, no gradients), written to
`length_diagnostics/round-KK.json` and shown as one table row per round in the run report:

- on the reference's own held-out answers (the reward-kl samples of the reference's round): the stop
  token's log-prob where the reference stopped (`why_stop_lp_ref`, `why_stop_lp_change`: policy − reference),
  the change of the stop token's log-prob at every earlier position (`why_stop_elsewhere_change`), and the
  change per content token (`why_token_change`). A policy that lowered the stop token's log-prob where
  the reference ended, while content tokens barely moved, lengthens by declining to stop;
- on the round's training pairs: the change of log-prob per token of chosen and rejected answers, for
  answers shorter and longer than the pairs' median trained length (`why_chosen_short`, ...): DPO should
  raise chosen and lower rejected; a long/short asymmetry shows which lengths the update favoured.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefkit.artifacts import atomic_write_text

DIAGNOSTICS_DIR = "length_diagnostics"
PREFIX = "why_"


@dataclass(frozen=True)
class TokenScores:
    """Per completion token: log p(token) and log p(stop token) at that position (same length)."""

    token: Sequence[float]
    stop: Sequence[float]


@dataclass(frozen=True)
class ScoredSequence:
    """One completion scored by the policy and the reference; `stopped`: its last token is the stop token."""

    policy: TokenScores
    reference: TokenScores
    stopped: bool


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def sample_statistics(samples: Sequence[ScoredSequence]) -> dict[str, float]:
    """Stop-token and content-token log-prob changes on the reference's answers (see the module doc)."""
    stop_ref, stop_change, elsewhere, content = [], [], [], []
    for sample in samples:
        count = len(sample.reference.token)
        content_positions = count - 1 if sample.stopped else count
        if sample.stopped:
            stop_ref.append(sample.reference.token[-1])
            stop_change.append(sample.policy.token[-1] - sample.reference.token[-1])
        for position in range(content_positions):
            elsewhere.append(sample.policy.stop[position] - sample.reference.stop[position])
            content.append(sample.policy.token[position] - sample.reference.token[position])
    values = {
        "stop_lp_ref": _mean(stop_ref),
        "stop_lp_change": _mean(stop_change),
        "stop_elsewhere_change": _mean(elsewhere),
        "token_change": _mean(content),
        "samples": float(len(samples)),
        "stopped_share": len(stop_ref) / len(samples) if samples else None,
    }
    return {f"{PREFIX}{key}": value for key, value in values.items() if value is not None}


def pair_statistics(chosen: Sequence[ScoredSequence], rejected: Sequence[ScoredSequence]) -> dict[str, float]:
    """Mean change per token (policy − reference) of chosen and rejected answers, split at the median length."""
    lengths = [len(s.reference.token) for s in (*chosen, *rejected)]
    if not lengths:
        return {}
    median = statistics.median(lengths)
    groups: dict[str, list[float]] = {}
    for side, sequences in (("chosen", chosen), ("rejected", rejected)):
        for sequence in sequences:
            count = len(sequence.reference.token)
            change = (sum(sequence.policy.token) - sum(sequence.reference.token)) / max(count, 1)
            groups.setdefault(f"{side}_{'long' if count > median else 'short'}", []).append(change)
    values = {name: statistics.fmean(changes) for name, changes in groups.items()}
    values["pairs"] = float(len(chosen))
    values["median_tokens"] = float(median)
    return {f"{PREFIX}{key}": value for key, value in values.items()}


def score_sequences(
    model, pairs: Sequence[tuple[list[int], list[int]]], stop_ids: Sequence[int], batch_size=8
):
    """TokenScores of each (prompt ids, completion ids) under `model`, with `stop_ids[i]` as its stop token."""
    from prefkit.scoring import completion_log_softmax

    results: list[TokenScores | None] = [None] * len(pairs)
    for index, rows, targets in completion_log_softmax(model, pairs, batch_size):
        token = rows.gather(1, targets.unsqueeze(1)).squeeze(1)
        results[index] = TokenScores(token.tolist(), rows[:, stop_ids[index]].tolist())
    return results


def score_under(policy: str, reference: str, encoded, stopped: Sequence[bool], stop_id: int):
    """Score encoded completions under policy and reference (each model loaded once, one after the other)."""
    from prefkit.models import load_causal_lm

    stop_ids = [
        completion[-1] if done else stop_id for (_, completion), done in zip(encoded, stopped, strict=True)
    ]
    scores = {}
    for name, location in (("policy", policy), ("reference", reference)):
        model = load_causal_lm(location, dtype="float32")
        model.eval()
        scores[name] = score_sequences(model, encoded, stop_ids)
        del model
    return [
        ScoredSequence(p, r, done)
        for p, r, done in zip(scores["policy"], scores["reference"], stopped, strict=True)
    ]


def round_diagnostics(
    policy: str,
    reference: str,
    reference_samples: Path | None,
    heldout_prompts: dict[str, Any],
    preferences: Path,
    max_items: int,
) -> dict[str, float]:
    """The round's diagnostics: up to `max_items` reference answers to held-out prompts and `max_items` pairs."""
    import polars as pl

    from prefkit.chat import encode_answer, encode_prompt
    from prefkit.models import load_tokenizer

    tokenizer = load_tokenizer(policy)
    stop_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    groups: dict[str, list[tuple[Any, str, bool]]] = {"samples": [], "chosen": [], "rejected": []}
    if reference_samples is not None and reference_samples.exists():
        rows = [json.loads(line) for line in reference_samples.read_text().splitlines() if line.strip()]
        rows = [row for row in rows if row["prompt_id"] in heldout_prompts and row["completion"].strip()]
        groups["samples"] = [
            (heldout_prompts[row["prompt_id"]], row["completion"], row["finish_reason"] == "stop")
            for row in rows[:max_items]
        ]
    frame = pl.read_parquet(preferences / "data.parquet").head(max_items)
    for side in ("chosen", "rejected"):
        eos = frame[f"eos_{side}"].to_list() if f"eos_{side}" in frame.columns else [True] * frame.height
        groups[side] = list(zip(frame["prompt"].to_list(), frame[side].to_list(), eos, strict=True))
    items = [(name, prompt, text, flag) for name, rows in groups.items() for prompt, text, flag in rows]
    encoded = [
        (encode_prompt(tokenizer, prompt), encode_answer(tokenizer, prompt, text, add_eos=flag))
        for _, prompt, text, flag in items
    ]
    kept = [index for index, (_, completion) in enumerate(encoded) if completion]
    scored = score_under(policy, reference, [encoded[i] for i in kept], [items[i][3] for i in kept], stop_id)
    by_group: dict[str, list[ScoredSequence]] = {name: [] for name in groups}
    for index, sequence in zip(kept, scored, strict=True):
        by_group[items[index][0]].append(sequence)
    values: dict[str, float] = {}
    if by_group["samples"]:
        values.update(sample_statistics(by_group["samples"]))
    values.update(pair_statistics(by_group["chosen"], by_group["rejected"]))
    return values


def diagnostics_path(run_dir: Path, round_index: int) -> Path:
    return run_dir / DIAGNOSTICS_DIR / f"round-{round_index:02d}.json"


def write_round_diagnostics(run_dir: Path, round_index: int, values: dict[str, float], key: dict) -> None:
    """Store one round's diagnostics with the options they were computed with (a changed key recomputes)."""
    path = diagnostics_path(run_dir, round_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, "values": values}, indent=2))


def read_round_diagnostics(
    run_dir: Path, round_index: int, key: dict | None = None
) -> dict[str, float] | None:
    """A round's stored diagnostics (None when missing, or computed with another key when one is given)."""
    path = diagnostics_path(run_dir, round_index)
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    if key is not None and stored.get("key") != key:
        return None
    return stored["values"]
