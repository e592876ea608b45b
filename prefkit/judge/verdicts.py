"""From judge answers to outcomes: pairwise in both orders, single randomised order, round robins, scores.

Position bias: a pairwise question is asked as (a, b) and as (b, a). If the two answers name the same
response it wins; if they disagree (or either says tie) the outcome is a tie. If either answer stayed
unparseable the outcome is `invalid`, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

from prefkit.conversation import Prompt
from prefkit.judge.client import JudgeClient, JudgeRequest
from prefkit.judge.templates import FIRST, SECOND, TIE, JudgeTemplate

A, B = "a", "b"
INVALID = "invalid"


def outcome_from_orders(forward: str | None, backward: str | None) -> str:
    """Combine the (a, b) verdict and the (b, a) verdict into a, b, tie or invalid."""
    if forward is None or backward is None:
        return INVALID
    first = {FIRST: A, SECOND: B, TIE: TIE}[forward]
    second = {FIRST: B, SECOND: A, TIE: TIE}[backward]
    return first if first == second else TIE


def compare_both_orders(
    client: JudgeClient, template: JudgeTemplate, comparisons: Sequence[tuple[Prompt, str, str]]
) -> list[str]:
    """Outcome (a, b, tie, invalid) of each (prompt, a, b), asked in both orders."""
    requests = []
    for prompt, a, b in comparisons:
        requests += [JudgeRequest(prompt, a, b), JudgeRequest(prompt, b, a)]
    answers = client.judge(template, requests)
    return [
        outcome_from_orders(answers[2 * i].verdict, answers[2 * i + 1].verdict)
        for i in range(len(comparisons))
    ]


def compare_one_order(
    client: JudgeClient,
    template: JudgeTemplate,
    comparisons: Sequence[tuple[Prompt, str, str]],
    swapped: Sequence[bool],
) -> list[str]:
    """Outcome of each (prompt, a, b) asked once, with b shown first where `swapped` (randomised order)."""
    requests = [
        JudgeRequest(prompt, b, a) if swap else JudgeRequest(prompt, a, b)
        for (prompt, a, b), swap in zip(comparisons, swapped, strict=True)
    ]
    outcomes = []
    for answer, swap in zip(client.judge(template, requests), swapped, strict=True):
        if answer.verdict is None:
            outcomes.append(INVALID)
        elif answer.verdict == TIE:
            outcomes.append(TIE)
        else:
            shown_first_won = answer.verdict == FIRST
            outcomes.append(B if shown_first_won == swap else A)
    return outcomes


def win_rate_scores(outcomes: dict[tuple[int, int], str], count: int) -> list[float]:
    """Each candidate's share of its valid comparisons won (a tie counts half); NaN if it has none."""
    points = [0.0] * count
    played = [0] * count
    for (i, j), outcome in outcomes.items():
        if outcome == INVALID:
            continue
        played[i] += 1
        played[j] += 1
        if outcome == A:
            points[i] += 1
        elif outcome == B:
            points[j] += 1
        else:
            points[i] += 0.5
            points[j] += 0.5
    return [points[k] / played[k] if played[k] else math.nan for k in range(count)]


def round_robin_scores(
    client: JudgeClient,
    template: JudgeTemplate,
    prompts: Sequence[Prompt],
    completions: Sequence[Sequence[str]],
) -> list[list[float]]:
    """Win-rate scores from every pair of candidates per prompt (k(k-1)/2 comparisons, both orders)."""
    comparisons: list[tuple[Prompt, str, str]] = []
    owners: list[tuple[int, int, int]] = []
    known: list[dict[tuple[int, int], str]] = [{} for _ in prompts]
    for row, (prompt, texts) in enumerate(zip(prompts, completions, strict=True)):
        for i, j in combinations(range(len(texts)), 2):
            if texts[i] == texts[j]:
                known[row][(i, j)] = TIE  # identical texts: nothing to ask
            elif texts[i].strip() and texts[j].strip():
                comparisons.append((prompt, texts[i], texts[j]))
                owners.append((row, i, j))
    for (row, i, j), outcome in zip(owners, compare_both_orders(client, template, comparisons), strict=True):
        known[row][(i, j)] = outcome
    return [win_rate_scores(known[row], len(texts)) for row, texts in enumerate(completions)]


def pointwise_scores(
    client: JudgeClient,
    template: JudgeTemplate,
    prompts: Sequence[Prompt],
    completions: Sequence[Sequence[str]],
) -> list[list[float]]:
    """The judge's score of each completion; NaN where the answer stayed unparseable."""
    requests = [
        JudgeRequest(prompt, text)
        for prompt, texts in zip(prompts, completions, strict=True)
        for text in texts
    ]
    flat = iter(client.judge(template, requests))
    return [
        [
            float(answer.verdict) if answer.verdict is not None else math.nan
            for answer in (next(flat) for _ in texts)
        ]
        for texts in completions
    ]
