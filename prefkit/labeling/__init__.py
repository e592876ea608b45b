"""Labeling: score candidates and build (prompt, chosen, rejected) preference pairs."""
