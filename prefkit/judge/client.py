"""An LLM judge over any OpenAI-compatible endpoint: bounded concurrency, retries, cache, usage counts.

Uses the official `openai` client (AsyncOpenAI) with its own retries switched off, so that every retry
is ours and counted: 429, 408/409, 5xx, timeouts and dropped connections are retried with exponential
backoff and jitter (a server's Retry-After is honoured up to `backoff_max_s`); other 4xx fail at once.
An answer that cannot be parsed is asked again up to `parse_attempts` times, then recorded invalid;
a verdict is never guessed. The API key is read from the environment variable named by `api_key_env`
and is kept out of settings, manifests and logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from prefkit.conversation import Prompt
from prefkit.errors import PrefkitError, require_module, validated_config
from prefkit.judge.cache import CachedJudgement, JudgeCache, judgement_key
from prefkit.judge.templates import JudgeTemplate
from prefkit.models import cache_home
from prefkit.progress import StepProgress
from prefkit.validation import STRICT_CONFIG

RETRY_STATUS = {408, 409, 429}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class JudgeError(PrefkitError):
    """The judge endpoint could not be used (refused request, retries exhausted, missing key)."""


class JudgeSettings(BaseModel):
    """Which judge to ask and how (recorded in manifests; holds no secret)."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    model: str = Field("gpt-4", description="judge model name at the endpoint")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None = api.openai.com")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    max_concurrency: int = Field(8, gt=0, description="requests in flight at once")
    max_attempts: int = Field(6, gt=0, description="tries per request on 429/5xx/timeouts/connection errors")
    parse_attempts: int = Field(
        3, gt=0, description="requests per judgement when the answer cannot be parsed"
    )
    timeout_s: float = Field(60.0, gt=0, description="seconds before a request counts as timed out")
    backoff_initial_s: float = Field(1.0, ge=0, description="first retry delay (doubles each retry)")
    backoff_max_s: float = Field(30.0, ge=0, description="longest retry delay")
    temperature: float = Field(0.0, ge=0, description="judge sampling temperature")
    # named answer_limit, not max_tokens, because configs already use it; manifests would keep either
    # (artifacts.is_secret_key drops credential names such as `token` or `hf_token`, not counts such as `max_tokens`)
    answer_limit: int | None = Field(
        None, gt=0, description="max tokens of the judge's answer; None = the template's"
    )
    cache_path: str | None = Field(
        None, description="SQLite cache file; None = $PREFKIT_HOME/judge/cache.sqlite"
    )

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> JudgeSettings:
        """Validate options; the first problem becomes one ConfigError naming the field."""
        return validated_config(cls, options)

    @property
    def identity(self) -> str:
        """What a cached verdict depends on besides template and texts: model and sampling settings."""
        return f"{self.model}|t={self.temperature}|answer_limit={self.answer_limit}"


@dataclass
class JudgeUsage:
    """Running totals for the manifest: what was paid for, what came from cache, what failed."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    retries: int = 0
    unparseable_answers: int = 0
    invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class JudgeRequest:
    """One judgement: the prompt and one (pointwise) or two (pairwise, in this order) responses."""

    prompt: Prompt  # a string or a conversation (rendered for the judge by the template)
    first: str
    second: str | None = None


class JudgeClient:
    """Asks a judge many questions concurrently; every answer goes through the cache."""

    def __init__(
        self,
        settings: JudgeSettings,
        cache: JudgeCache | None = None,
        *,
        progress: bool = False,
        description: str = "judging",
    ) -> None:
        self.settings = settings
        self.cache = cache or JudgeCache(settings.cache_path or default_cache_path())
        self.usage = JudgeUsage()
        self.progress = progress  # a bar with requests, cache hits and retries while judging
        self.description = description
        self._jitter = random.Random()

    def judge(self, template: JudgeTemplate, requests: Sequence[JudgeRequest]) -> list[CachedJudgement]:
        """Judgements for `requests`, in order (cached ones are not asked again)."""
        return run_sync(self.judge_async(template, requests))

    async def judge_async(
        self, template: JudgeTemplate, requests: Sequence[JudgeRequest]
    ) -> list[CachedJudgement]:
        keys = [
            judgement_key(self.settings.identity, template.sha256, r.prompt, r.first, r.second)
            for r in requests
        ]
        unique: dict[str, JudgeRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            unique.setdefault(key, request)
        results: dict[str, CachedJudgement] = {}
        missing = []
        for key, request in unique.items():
            cached = self.cache.get(key)
            if cached is None:
                missing.append((key, request))
            else:
                self.usage.cache_hits += 1
                self.usage.invalid += not cached.valid
                results[key] = cached
        with StepProgress(self.description, len(unique), unit="judgements", enabled=self.progress) as bar:
            bar.advance(len(unique) - len(missing), self._status())
            if missing:
                answers = await self._judge_missing(template, missing, bar)
                results.update(zip((key for key, _ in missing), answers, strict=True))
        return [results[key] for key in keys]

    async def _judge_missing(
        self, template: JudgeTemplate, missing: list[tuple[str, JudgeRequest]], bar: StepProgress
    ) -> list[CachedJudgement]:
        """Ask the endpoint for every judgement not in the cache, `max_concurrency` at a time."""
        openai = require_module("openai", "pip install openai")
        semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        async with openai.AsyncOpenAI(
            api_key=judge_api_key(self.settings),
            base_url=self.settings.base_url,
            max_retries=0,
            timeout=self.settings.timeout_s,
        ) as api:

            async def judge_and_count(key: str, request: JudgeRequest) -> CachedJudgement:
                judgement = await self._judge_one(api, semaphore, template, key, request)
                bar.advance(1, self._status())
                return judgement

            return list(await asyncio.gather(*(judge_and_count(key, request) for key, request in missing)))

    def _status(self) -> str:
        usage = self.usage
        return f"{usage.requests} requests, {usage.cache_hits} cached, {usage.retries} retries"

    async def _judge_one(
        self, api, semaphore: asyncio.Semaphore, template: JudgeTemplate, key: str, request: JudgeRequest
    ) -> CachedJudgement:
        messages = template.messages(request.prompt, request.first, request.second)
        prompt_tokens = completion_tokens = 0
        answer: str | None = None
        verdict = None
        for _ in range(self.settings.parse_attempts):
            answer, used_prompt, used_completion = await self._ask(api, semaphore, messages, template)
            prompt_tokens += used_prompt
            completion_tokens += used_completion
            verdict = template.parse(answer)
            if verdict is not None:
                break
            self.usage.unparseable_answers += 1
        judgement = CachedJudgement(answer, verdict, verdict is not None, prompt_tokens, completion_tokens)
        self.usage.invalid += not judgement.valid
        self.cache.put(key, self.settings.identity, template.sha256, judgement)
        return judgement

    async def _ask(
        self, api, semaphore: asyncio.Semaphore, messages, template: JudgeTemplate
    ) -> tuple[str | None, int, int]:
        """One answer from the endpoint, retrying transient failures with backoff."""
        import openai

        for attempt in range(self.settings.max_attempts):
            retry_after = None
            try:
                async with semaphore:
                    response = await api.chat.completions.create(
                        model=self.settings.model,
                        messages=messages,
                        temperature=self.settings.temperature,
                        max_tokens=self.settings.answer_limit or template.max_tokens,
                    )
            except openai.APIStatusError as error:
                if error.status_code not in RETRY_STATUS and error.status_code < 500:
                    raise JudgeError(
                        f"judge endpoint refused the request with HTTP {error.status_code}: {_short(error)}",
                        hint=_status_hint(error.status_code, self.settings.api_key_env),
                    ) from None
                retry_after = _retry_after(error)
                failure = f"HTTP {error.status_code}"
            except (
                openai.APIConnectionError,
                openai.APIResponseValidationError,
                json.JSONDecodeError,
            ) as error:
                # a body that is not JSON (a proxy's error page) is as transient as a dropped connection
                failure = error.__class__.__name__
            else:
                text = response.choices[0].message.content if response.choices else None
                prompt_tokens = getattr(response.usage, "prompt_tokens", 0) or 0
                completion_tokens = getattr(response.usage, "completion_tokens", 0) or 0
                self.usage.requests += 1
                self.usage.prompt_tokens += prompt_tokens
                self.usage.completion_tokens += completion_tokens
                return text, prompt_tokens, completion_tokens
            if attempt + 1 == self.settings.max_attempts:
                raise JudgeError(
                    f"judge request failed {self.settings.max_attempts} times (last: {failure})",
                    hint="answers so far are cached; rerun to resume",
                )
            self.usage.retries += 1
            await asyncio.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2**attempt)
        delay = ceiling / 2 + self._jitter.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max_s))
        return delay

    def close(self) -> None:
        self.cache.close()


def judge_api_key(settings: JudgeSettings) -> str:
    """The API key from the environment variable `settings.api_key_env` (a local endpoint needs none)."""
    key = os.environ.get(settings.api_key_env)
    if key:
        return key
    host = urlparse(settings.base_url or "").hostname
    if host in LOCAL_HOSTS:
        return "unused-local-endpoint"  # local OpenAI-compatible servers (vLLM) need no key
    raise JudgeError(
        f"the environment variable {settings.api_key_env} holding the judge API key is not set",
        hint="export it, or name another variable with api_key_env",
    )


def run_sync(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion, also from code that already runs an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed back to the caller's thread below
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _retry_after(error) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(error) -> str:
    text = str(getattr(error, "message", error)).strip().splitlines()
    return text[0][:200] if text else error.__class__.__name__


def _status_hint(status: int, api_key_env: str) -> str | None:
    if status in (401, 403):
        return f"check the key in {api_key_env} and the endpoint"
    if status == 404:
        return "check base_url (it usually ends in /v1) and the judge model name"
    return None


def default_cache_path() -> Path:
    """The shared judge cache file used when no cache_path is given."""
    return cache_home() / "judge" / "cache.sqlite"
