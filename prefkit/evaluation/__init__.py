"""The eval stage: subjects, the per-checkpoint cache, leaderboard, plots and report (`stage.py`)."""
