"""Sampling: a policy writes k completions per prompt (vLLM or transformers backends)."""
