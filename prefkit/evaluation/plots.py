"""Plots of an eval leaderboard (matplotlib, Agg): reward vs KL frontier, win rates with error bars, lengths.

Each plot is drawn only when the leaderboard has the columns it needs; `write_plots` returns what it wrote.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

REWARD = "reward-kl/reward_mean"
REWARD_SE = "reward-kl/reward_se"
KL = "reward-kl/kl_mean"
BEST_OF_REWARD = "reward-kl/best_of_n_reward_mean"
BEST_OF_KL = "reward-kl/best_of_n_kl"
KL_SE = "reward-kl/kl_se"
LENGTH_METRICS = ("length_chars", "avg_length")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(frame: pl.DataFrame, folder: Path) -> list[Path]:
    """Write every plot the leaderboard supports into `folder`; return their paths."""
    written = []
    for plot in (plot_reward_vs_kl, plot_win_rates, plot_lengths):
        path = plot(frame, folder)
        if path is not None:
            written.append(path)
    return written


def frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower KL, higher reward), sorted by KL."""
    keep = []
    for i, (kl, reward) in enumerate(points):
        dominated = any(
            (other_kl <= kl and other_reward >= reward) and (other_kl, other_reward) != (kl, reward)
            for j, (other_kl, other_reward) in enumerate(points)
            if j != i
        )
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])


def plot_reward_vs_kl(frame: pl.DataFrame, folder: Path) -> Path | None:
    """Mean reward against sequence KL(pi || pi_ref), with standard errors and the frontier."""
    if REWARD not in frame.columns or KL not in frame.columns:
        return None
    rows = [
        r
        for r in frame.iter_rows(named=True)
        if _number(r[REWARD]) is not None and _number(r[KL]) is not None
    ]
    if not rows:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5))
    points = [(float(r[KL]), float(r[REWARD])) for r in rows]
    axes.errorbar(
        [p[0] for p in points],
        [p[1] for p in points],
        xerr=[_number(r.get(KL_SE)) or 0.0 for r in rows],
        yerr=[_number(r.get(REWARD_SE)) or 0.0 for r in rows],
        fmt="o",
        capsize=3,
    )
    for row, (kl, reward) in zip(rows, points, strict=True):
        axes.annotate(
            str(row["subject"]), (kl, reward), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    # Best-of-N is a baseline of the reference itself: only the subject with zero KL to it has one here
    best_of = [r for r in rows if _number(r.get(BEST_OF_REWARD)) is not None and float(r[KL]) == 0.0]
    if best_of:
        axes.scatter(
            [float(r[BEST_OF_KL]) for r in best_of],
            [float(r[BEST_OF_REWARD]) for r in best_of],
            marker="s",
            color="tab:orange",
            label="best-of-N of the reference (analytic KL bound)",
        )
    best = frontier(points)
    if len(best) > 1:
        axes.plot(
            [points[i][0] for i in best], [points[i][1] for i in best], "--", color="gray", label="frontier"
        )
    if len(best) > 1 or best_of:
        axes.legend(loc="lower right", fontsize=8)
    axes.set_xlabel("sequence KL(π || π_ref) (nats)")
    axes.set_ylabel("mean reward (± SE over prompts)")
    axes.set_title("Reward vs KL")
    return _save(figure, folder / "reward_vs_kl.png")


def plot_win_rates(frame: pl.DataFrame, folder: Path) -> Path | None:
    """Win rate (and LC win rate) per subject with standard-error bars, one group per evaluator metric."""
    series = [c for c in frame.columns if c.endswith(("/win_rate", "/lc_win_rate"))]
    series = [c for c in series if any(_number(v) is not None for v in frame[c])]
    if not series:
        return None
    from prefkit.evaluation.leaderboard import standard_error_column

    errors = {}
    for column in series:
        se_column = standard_error_column(frame, column)
        errors[column] = [_number(v) or 0.0 for v in frame[se_column]] if se_column else None
    figure, axes = _grouped_bars(frame, series, errors)
    axes.axhline(50, color="gray", linewidth=0.8, linestyle=":")
    axes.set_ylabel("win rate (%) ± SE")
    from prefkit.evaluation.leaderboard import judge_conflicts

    # bars from different judges are not comparable: say so on the figure itself
    title = "Win rate per checkpoint" + (
        "\n(NOT COMPARABLE: judged differently)" if judge_conflicts(frame) else ""
    )
    axes.set_title(title)
    axes.legend(fontsize=8)
    return _save(figure, folder / "win_rate.png")


def plot_lengths(frame: pl.DataFrame, folder: Path) -> Path | None:
    """Average completion length (characters) per subject, one bar group per evaluator."""
    series = [c for c in frame.columns if c.rpartition("/")[2] in LENGTH_METRICS]
    series = [c for c in series if any(_number(v) is not None for v in frame[c])]
    if not series:
        return None
    figure, axes = _grouped_bars(frame, series, errors={})
    axes.set_ylabel("average length (characters)")
    axes.set_title("Completion length per checkpoint")
    axes.legend(fontsize=8)
    return _save(figure, folder / "lengths.png")


def _grouped_bars(frame: pl.DataFrame, series: list[str], errors: dict[str, list[float] | None]):
    """One bar group per subject, one bar per series (with error bars where given); x ticks = subjects."""
    plt = _pyplot()
    subjects = [str(s) for s in frame["subject"]]
    figure, axes = plt.subplots(figsize=(max(6, 1.2 * len(subjects) * len(series)), 4.5))
    width = 0.8 / len(series)
    for index, column in enumerate(series):
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(subjects))]
        values = [_number(v) or 0.0 for v in frame[column]]
        axes.bar(positions, values, width, yerr=errors.get(column), capsize=3, label=column)
    axes.set_xticks(range(len(subjects)), subjects, rotation=20, ha="right")
    return figure, axes


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path
