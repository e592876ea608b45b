"""The Markdown report of an eval run: what was run, the leaderboard, the plots, and how to read them."""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from prefkit.artifacts import now_iso, redact_secrets
from prefkit.evaluation.leaderboard import markdown_table

PLOT_CAPTIONS = {
    "reward_vs_kl.png": (
        "Mean reward against the sequence KL(π || π_ref) estimated from the samples (mean over samples of "
        "log π(y|x) − log π_ref(y|x)). Up and to the left is better; the dashed line joins the checkpoints "
        "no other checkpoint beats on both."
    ),
    "win_rate.png": "Win rate against the baseline, with standard-error bars; 50 % is parity.",
    "lengths.png": "Average completion length in characters: watch for reward bought with verbosity.",
}
METRIC_NOTES = {
    "reward-kl": (
        "reward-kl: reward is averaged per prompt, then across prompts (± standard error across prompts); "
        "length in characters and tokens; KL 0 means the subject was its own reference."
    ),
    "alpaca-eval": (
        "alpaca-eval: AlpacaEval 2 against GPT-4 Preview; win rate = 100·mean(preference − 1) ± 100·stdev/√n; "
        "the LC win rate needs the full 805 instructions and df_gamed.csv (otherwise the reason is given)."
    ),
}


def render_report(frame: pl.DataFrame, plots: Sequence[str], config) -> str:
    """Markdown putting together the run settings, the leaderboard table and the plots."""
    options = json.dumps(redact_secrets(config.options), indent=2, sort_keys=True, default=str)
    lines = [
        "# Evaluation report",
        "",
        f"Generated {now_iso()} by `prefkit eval` for {frame.height} checkpoint(s) with "
        f"{', '.join(f'`{name}`' for name in config.evaluators)}.",
        "",
        "## Checkpoints",
        "",
        *[
            f"- **{row['subject']}**: `{row['model']}` (content {str(row['content_hash'])[:12]})"
            for row in frame.iter_rows(named=True)
        ],
        "",
        "## Leaderboard",
        "",
        markdown_table(frame),
        "",
        *[METRIC_NOTES[name] + "\n" for name in config.evaluators if name in METRIC_NOTES],
    ]
    if plots:
        lines += ["## Plots", ""]
        for name in plots:
            lines += [f"![{name}]({name})", "", PLOT_CAPTIONS.get(name, ""), ""]
    lines += ["## Options", "", "```json", options, "```", ""]
    return "\n".join(lines)
