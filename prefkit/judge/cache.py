"""A persistent judge cache (SQLite): a crash or a rerun never pays twice for the same judgement.

Keys hash (judge identity, template hash, prompt, first response, second response). Each answer is
committed as soon as it arrives (SQLite transactions are atomic), so an interrupted run keeps every
judgement it paid for. Answers that stayed unparseable after retries are stored too, marked invalid,
so they are counted as invalid again on a rerun instead of being paid for again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from prefkit.conversation import Prompt

SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    template_sha256 TEXT NOT NULL,
    answer TEXT,
    verdict TEXT,
    valid INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


@dataclass(frozen=True)
class CachedJudgement:
    """One stored answer: the raw text, the parsed verdict (JSON; None when invalid) and its token cost."""

    answer: str | None
    verdict: str | float | None
    valid: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0


def judgement_key(judge: str, template_sha256: str, prompt: Prompt, first: str, second: str | None) -> str:
    """The cache key of one judgement (order matters: (a, b) and (b, a) are different questions); a
    conversational prompt enters as its JSON message list."""
    payload = json.dumps([judge, template_sha256, prompt, first, second], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class JudgeCache:
    """SQLite-backed map from judgement key to CachedJudgement; safe to share between processes (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def get(self, key: str) -> CachedJudgement | None:
        row = self._db.execute(
            "SELECT answer, verdict, valid, prompt_tokens, completion_tokens FROM judgements WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        answer, verdict, valid, prompt_tokens, completion_tokens = row
        return CachedJudgement(
            answer=answer,
            verdict=json.loads(verdict) if verdict is not None else None,
            valid=bool(valid),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def put(self, key: str, judge: str, template_sha256: str, judgement: CachedJudgement) -> None:
        verdict = json.dumps(judgement.verdict) if judgement.verdict is not None else None
        with self._db:  # one transaction per answer: committed (or not at all) atomically
            self._db.execute(
                "INSERT OR REPLACE INTO judgements "
                "(key, judge, template_sha256, answer, verdict, valid, prompt_tokens, completion_tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    judge,
                    template_sha256,
                    judgement.answer,
                    verdict,
                    int(judgement.valid),
                    judgement.prompt_tokens,
                    judgement.completion_tokens,
                ),
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    def close(self) -> None:
        self._db.close()
