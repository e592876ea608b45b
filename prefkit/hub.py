"""Whether the Hugging Face Hub can be reached, decided up front (offline setting, then one quick probe).

Without this, a hub id given while offline spends a minute in the hub client's retries before failing;
with it, prefkit fails at once with one line saying how to pass a local copy instead.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 1.5
TRUE_VALUES = ("1", "on", "yes", "true")


def offline_setting() -> bool:
    """True when HF_HUB_OFFLINE (or HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE) says offline."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in TRUE_VALUES:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


@functools.cache
def _endpoint_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """False when offline is set or the hub endpoint does not answer a TCP connect within 1.5 s."""
    if offline_setting():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    return _endpoint_reachable(endpoint.hostname or "huggingface.co", port)


def looks_like_hub_id(text: str) -> bool:
    """`org/name` (one slash, no path prefix, no file suffix): what a hub dataset or model id looks like."""
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        return False
    org, name = text.split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return bool(org) and bool(name) and set(org + name) <= allowed and not name.endswith(SUFFIXES)


SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def cached_on_disk(
    repo_id: str, filenames: tuple[str, ...] = ("config.json", "tokenizer_config.json")
) -> bool:
    """True when the local Hugging Face cache holds one of `filenames` of model repo `repo_id`."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for filename in filenames:
        try:
            found = try_to_load_from_cache(repo_id, filename)
        except ValueError:  # not a valid repo id
            return False
        if isinstance(found, str):
            return True
    return False
