"""Per-round report of an iterative run (Markdown + Parquet + PNG), and a comparison across runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import atomic_write_parquet, atomic_write_text, read_manifest
from prefkit.iteration.length_control import DEFAULT_GAIN
from prefkit.iteration.length_diagnostics import PREFIX as WHY
from prefkit.iteration.length_diagnostics import read_round_diagnostics
from prefkit.iteration.winrates import OPPONENTS, read_round_winrates
from prefkit.labeling.pairing import DEFAULT_TRUNCATION
from prefkit.validation import reading


def pair_statistics(preferences_dir: Path) -> dict[str, float]:
    """Pairs kept, mean chosen/rejected lengths, mean score margin and truncation rates of one round's
    preferences (`truncated_chosen`/`_rejected`: share of pairs whose side was cut at the token limit;
    `truncated_candidates`: share of all candidates cut, which `--truncated drop` hides from the pairs)."""
    frame = pl.read_parquet(preferences_dir / "data.parquet")
    if frame.height == 0:
        return {"pairs": 0}
    manifest = read_manifest(preferences_dir)
    extra = manifest.extra
    unit = extra.get("length_unit", "tokens")
    statistics = {
        "length_penalty": float(extra.get("length_penalty", float("nan"))),
        "pairs": frame.height,
        f"len_chosen_{unit}": float(frame["len_chosen"].mean()),
        f"len_rejected_{unit}": float(frame["len_rejected"].mean()),
        "score_margin": float((frame["score_chosen"] - frame["score_rejected"]).mean()),
    }
    for side in ("chosen", "rejected"):
        column = f"finish_{side}"
        if column in frame.columns and frame[column].null_count() < frame.height:
            statistics[f"truncated_{side}"] = float((frame[column] == "length").mean())
    candidates = manifest.counts.get("candidates", 0)
    if candidates:
        statistics["truncated_candidates"] = manifest.counts.get("candidates_truncated", 0) / candidates
    return statistics


LOSS_LENGTH_COLUMNS = {
    "alpha": "loss_alpha",
    "beta": "loss_beta",
    "ld_alpha": "loss_ld_alpha",
    "length_drift": "loss_length_drift",
}


def loss_length_columns(folder: Path) -> dict[str, float]:
    """The round's loss length setting from its lineage (R-DPO α, the round's β, LD-DPO's ld_alpha)."""
    lineage_path = folder / "lineage.json"
    if not lineage_path.exists():
        return {}
    with reading(lineage_path):
        setting = json.loads(lineage_path.read_text()).get("loss_length_control") or {}
    return {column: float(setting[key]) for key, column in LOSS_LENGTH_COLUMNS.items() if key in setting}


def round_rows(run_dir: Path, report, finished_rounds: int) -> list[dict[str, Any]]:
    """One row per round (round 0 = initial policy): eval metrics joined with pair statistics."""
    eval_rows = {}
    if report is not None:
        for row in report.rows("reward-kl"):
            eval_rows[str(row["subject"])] = row
    rows = []
    for index in range(0, finished_rounds + 1):
        name = f"round-{index:02d}"
        row: dict[str, Any] = {"round": index}
        metrics = eval_rows.get(name, {})
        for key in (
            "reward_mean",
            "reward_se",
            "kl_mean",
            "kl_se",
            "length_chars",
            "length_chars_se",
            "length_tokens",
        ):
            if key in metrics:
                row[key] = metrics[key]
        if "length_chars" in row and rows and rows[0].get("length_chars"):
            # the number iLR-DPO is judged by: the mean length against the initial policy's
            row["length_vs_round0"] = row["length_chars"] / rows[0]["length_chars"] - 1
        if index > 0:
            row.update(pair_statistics(run_dir / name / "preferences"))
            row.update(loss_length_columns(run_dir / name))
            row.update(read_round_diagnostics(run_dir, index) or {})
            row.update(read_round_winrates(run_dir, index))
        rows.append(row)
    return rows


def write_run_report(run_dir: Path, config, report, finished_rounds: int) -> Path:
    """Write report.md, report.parquet and rounds.png in the run folder; return the Markdown path."""
    rows = round_rows(run_dir, report, finished_rounds)
    frame = pl.DataFrame(rows)
    atomic_write_parquet(frame, run_dir / "report.parquet")
    plot_runs({config.name: rows}, run_dir / "rounds.png")
    lines = [
        f"# {config.name}: {finished_rounds} of {config.rounds} rounds",
        "",
        f"policy `{config.policy}`, reference `{config.reference}`, {penalty_description(config)}, "
        f"{loss_length_description(config)}, truncated completions: "
        f"`{config.label.get('truncated', DEFAULT_TRUNCATION)}` (columns truncated_*: share cut at the token limit)",
        "",
        markdown_table([{k: v for k, v in row.items() if not k.startswith(WHY)} for row in rows]),
        "",
        "![reward and length per round](rounds.png)",
        "",
        *why_section(rows),
        "Config: " + json.dumps(config.model_dump(mode="json"), sort_keys=True),
        "",
    ]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


WHY_LEGEND = (
    "Why length moves (policy − reference, nats; `prefkit iterate` scores the reference's held-out answers "
    "and the round's pairs under both): stop_lp_ref = log p(stop token) where the reference stopped, "
    "stop_lp_change = its change, stop_elsewhere_change = change of log p(stop) at earlier positions, "
    "token_change = change per content token; chosen_/rejected_short/long = change per token of the round's "
    "chosen and rejected answers at most / above median_tokens long."
)


def why_section(rows: list[dict[str, Any]]) -> list[str]:
    """The length-diagnostics table (one row per round), or nothing when no round has diagnostics."""
    why_rows = [
        {"round": row["round"], **{k[len(WHY) :]: v for k, v in row.items() if k.startswith(WHY)}}
        for row in rows
        if any(key.startswith(WHY) for key in row)
    ]
    if not why_rows:
        return []
    return ["## Why length moves", "", WHY_LEGEND, "", markdown_table(why_rows), ""]


def penalty_description(config) -> str:
    """How the run's length penalty was set, for the report header."""
    unit = config.label.get("length_unit", "tokens").rstrip("s")
    if config.length_penalty_mode == "length-neutral":
        return f"length penalty re-chosen each round (length-neutral, per {unit}; column length_penalty)"
    return f"length penalty {config.label.get('length_penalty', 0.0)} per {unit}"


def loss_length_description(config) -> str:
    """How the loss handled length, for the report header."""
    control = getattr(config, "loss_length_control", None)
    if control is None:
        options = config.train.get("options") or {}
        return f"R-DPO alpha {config.train.get('alpha', options.get('alpha', 0.0))}"
    if control.rule == "fixed":
        return f"loss length control {control.method}, fixed {control.value}"
    if control.rule == "length-target":
        return (
            f"loss length control rdpo, alpha {control.value} in round 1, then moved by gain "
            f"{control.gain or DEFAULT_GAIN} x the sampled length's drift from round 1 "
            "(columns loss_alpha, loss_length_drift)"
        )
    column = "loss_alpha" if control.method == "rdpo" else "loss_beta"
    return f"loss length control {control.method}, re-chosen each round (length-neutral; column {column})"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    columns = sorted(
        {key for row in rows for key in row},
        key=lambda key: list(rows[-1]).index(key) if key in rows[-1] else 99,
    )
    header = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |"
    body = []
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, *body])


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Reward (with standard errors) and mean length per round, one line per run; judge win rates when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judged = any(column in row for rows in runs.values() for row in rows for column in OPPONENTS.values())
    figure, axes = plt.subplots(1, 3 if judged else 2, figsize=(15 if judged else 10, 4))
    reward_axis, length_axis = axes[0], axes[1]
    for name, rows in runs.items():
        rounds = [row["round"] for row in rows if "reward_mean" in row]
        if rounds:
            rewards = [row["reward_mean"] for row in rows if "reward_mean" in row]
            errors = [row.get("reward_se", 0.0) for row in rows if "reward_mean" in row]
            lengths = [row.get("length_chars", float("nan")) for row in rows if "reward_mean" in row]
            reward_axis.errorbar(rounds, rewards, yerr=errors, marker="o", capsize=3, label=name)
            length_axis.plot(rounds, lengths, marker="o", label=name)
        if judged:
            plot_win_rates(axes[2], name, rows)
    reward_axis.set(xlabel="round", ylabel="held-out reward", title="reward per round")
    length_axis.set(xlabel="round", ylabel="mean length (characters)", title="length per round")
    shade_length_band(length_axis, runs)
    if judged:
        axes[2].axhline(0.5, color="grey", linewidth=0.8)
        axes[2].set(xlabel="round", ylabel="judge win rate", title="win rate vs previous / initial round")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)


def shade_length_band(axis, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Shade +-10 % around round 0's length (the band iLR-DPO aims to keep length in)."""
    start = next(
        (
            row["length_chars"]
            for rows in runs.values()
            for row in rows
            if row["round"] == 0 and "length_chars" in row
        ),
        None,
    )
    if start:
        axis.axhspan(0.9 * start, 1.1 * start, color="grey", alpha=0.15, label="round 0 ± 10 %")


def plot_win_rates(axis, name: str, rows: list[dict[str, Any]]) -> None:
    """Win rate vs the previous round (solid) and vs round 0 (dashed), with bootstrap intervals."""
    for opponent, column in OPPONENTS.items():
        judged = [row for row in rows if column in row]
        if not judged:
            continue
        rates = [row[column] for row in judged]
        below = [row[column] - row[f"{column}_low"] for row in judged]
        above = [row[f"{column}_high"] - row[column] for row in judged]
        axis.errorbar(
            [row["round"] for row in judged],
            rates,
            yerr=[below, above],
            marker="o",
            capsize=3,
            linestyle="-" if opponent == "previous" else "--",
            label=f"{name} vs {opponent}",
        )


def compare_runs(run_dirs: list[Path], out: Path) -> Path:
    """Overlay several runs' report.parquet files (e.g. with and without a length penalty) in one plot."""
    runs = {}
    for run_dir in run_dirs:
        report_path = run_dir / "report.parquet"
        if not report_path.exists():
            from prefkit.errors import ArtifactError

            raise ArtifactError("has no report.parquet; run `prefkit iterate` on it first", file=run_dir)
        with reading(report_path):
            runs[run_dir.name] = pl.read_parquet(report_path).to_dicts()
    out.parent.mkdir(parents=True, exist_ok=True)  # only once every input was read
    plot_runs(runs, out)
    return out
