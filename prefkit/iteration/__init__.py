"""Iterative DPO: rounds of sample -> label -> train -> eval (`stage.py`), the per-round report and win rates."""
