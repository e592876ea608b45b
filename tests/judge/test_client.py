"""The judge client against a local fake server: faults, retries, cache, invalid answers, both orders."""

from __future__ import annotations

import pytest

from prefkit.judge import (
    JudgeClient,
    JudgeError,
    JudgeRequest,
    JudgeSettings,
    load_template,
    round_robin_scores,
)
from prefkit.judge.templates import builtin_template_dir
from prefkit.judge.verdicts import compare_both_orders, pointwise_scores
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import always_a, helpfulness_judge, pointwise_judge

PROMPTS = ["Describe the park.", "Describe the meal."]
COMPLETIONS = [
    ["It was wonderful, I love it.", "It was terrible and awful.", "It was there."],
    ["A great, happy dinner.", "A sad, horrible dinner.", "Dinner.", "Food."],
]


def client_for(server: FakeJudgeServer, settings: dict, **overrides) -> JudgeClient:
    return JudgeClient(JudgeSettings(**{**settings, "base_url": server.base_url, **overrides}))


def patient_client(server: FakeJudgeServer, settings: dict) -> JudgeClient:
    """A client that does not time out on a busy machine: tests that count the server's requests need
    no retries (the 0.4 s test timeout is for the fault tests)."""
    return client_for(server, settings, timeout_s=30.0)


def test_round_robin_scores_by_hand(fast_settings):
    with FakeJudgeServer(helpfulness_judge) as server:
        scores = round_robin_scores(
            patient_client(server, fast_settings), load_template(None, "pairwise"), PROMPTS, COMPLETIONS
        )
    # prompt 1: positive beats both (1.0), neutral beats negative (0.5), negative loses both (0.0)
    assert scores[0] == [1.0, 0.0, 0.5]
    # prompt 2: "Dinner." and "Food." are equally neutral: the A-biased judge disagrees with itself -> tie
    # positive 3/3, negative 0/3, each neutral beats negative (1) + ties the other (0.5) = 1.5/3
    assert scores[1] == [1.0, 0.0, 0.5, 0.5]
    assert server.requests == 2 * (3 + 6)  # k(k-1)/2 pairs, both orders


def test_faults_lose_nothing_and_match_fault_free_run(fast_settings, tmp_path):
    template = load_template(None, "pairwise")
    with FakeJudgeServer(helpfulness_judge) as server:
        clean = round_robin_scores(client_for(server, fast_settings), template, PROMPTS, COMPLETIONS)
    faults = ["429", "500", "slow", "drop", "garbage", "badjson", "503"]
    with FakeJudgeServer(helpfulness_judge, faults=faults, slow_s=0.8) as server:
        client = client_for(server, fast_settings, cache_path=str(tmp_path / "other.sqlite"))
        faulty = round_robin_scores(client, template, PROMPTS, COMPLETIONS)
    assert faulty == clean
    bodies = 2 * (3 + 6)
    assert server.faults_served == {fault: bodies for fault in faults}
    assert server.answered == bodies
    assert client.usage.unparseable_answers == bodies  # the garbage answer was asked again, not guessed
    assert client.usage.invalid == 0
    assert client.usage.retries == bodies * 6  # every transport fault was retried
    assert client.usage.requests == bodies * 2  # garbage + real answer were both paid for


def test_rerun_is_served_from_cache(fast_settings):
    template = load_template(None, "pairwise")
    with FakeJudgeServer(helpfulness_judge) as server:
        first = round_robin_scores(patient_client(server, fast_settings), template, PROMPTS, COMPLETIONS)
        paid = server.requests
        again_client = patient_client(server, fast_settings)
        again = round_robin_scores(again_client, template, PROMPTS, COMPLETIONS)
        assert server.requests == paid
    assert again == first
    assert again_client.usage.cache_hits == paid and again_client.usage.requests == 0


def test_changed_template_is_not_served_from_cache(fast_settings, tmp_path):
    edited = tmp_path / "mine.md"
    edited.write_text((builtin_template_dir() / "dpo_helpfulness.md").read_text() + "\nBe brief.\n")
    with FakeJudgeServer(helpfulness_judge) as server:
        round_robin_scores(
            client_for(server, fast_settings), load_template(None, "pairwise"), PROMPTS[:1], COMPLETIONS[:1]
        )
        paid = server.requests
        round_robin_scores(
            client_for(server, fast_settings),
            load_template(str(edited), "pairwise"),
            PROMPTS[:1],
            COMPLETIONS[:1],
        )
        assert server.requests == 2 * paid


def test_unparseable_answers_become_invalid_and_are_counted(fast_settings):
    template = load_template(None, "pairwise")
    with FakeJudgeServer(lambda messages: "I cannot decide.") as server:
        client = client_for(server, fast_settings, parse_attempts=2)
        outcomes = compare_both_orders(client, template, [("p", "good", "bad")])
        assert outcomes == ["invalid"]
        assert client.usage.invalid == 2 and client.usage.unparseable_answers == 4 and server.requests == 4
        rerun = client_for(server, fast_settings)
        assert compare_both_orders(rerun, template, [("p", "good", "bad")]) == ["invalid"]
        assert server.requests == 4 and rerun.usage.invalid == 2 and rerun.usage.cache_hits == 2


def test_position_biased_judge_gives_ties(fast_settings):
    with FakeJudgeServer(always_a) as server:
        outcomes = compare_both_orders(
            client_for(server, fast_settings),
            load_template(None, "pairwise"),
            [("p", "good", "bad"), ("q", "x", "y")],
        )
    assert outcomes == ["tie", "tie"]


def test_pointwise_scores(fast_settings):
    with FakeJudgeServer(pointwise_judge) as server:
        scores = pointwise_scores(
            client_for(server, fast_settings), load_template(None, "pointwise"), PROMPTS, COMPLETIONS
        )
    assert scores[0][0] > scores[0][2] > scores[0][1]
    assert all(1 <= value <= 10 for row in scores for value in row)


def test_exhausted_retries_raise_one_line_error(fast_settings):
    with FakeJudgeServer(helpfulness_judge, faults=["500"] * 5) as server:
        client = client_for(server, fast_settings, max_attempts=3)
        with pytest.raises(JudgeError, match="failed 3 times") as caught:
            client.judge(load_template(None, "pairwise"), [JudgeRequest("p", "a", "b")])
    assert "\n" not in str(caught.value)


def test_refused_request_is_not_retried(fast_settings):
    with FakeJudgeServer(helpfulness_judge, faults=["401"]) as server:
        client = client_for(server, fast_settings)
        with pytest.raises(JudgeError, match="HTTP 401"):
            client.judge(load_template(None, "pairwise"), [JudgeRequest("p", "a", "b")])
        assert server.requests == 1


def test_missing_key_for_remote_endpoint(fast_settings, monkeypatch):
    monkeypatch.delenv("PREFKIT_TEST_NO_SUCH_KEY", raising=False)
    settings = JudgeSettings(
        **{
            **fast_settings,
            "base_url": "https://judge.example.com/v1",
            "api_key_env": "PREFKIT_TEST_NO_SUCH_KEY",
        }
    )
    with pytest.raises(JudgeError, match="PREFKIT_TEST_NO_SUCH_KEY"):
        JudgeClient(settings).judge(load_template(None, "pairwise"), [JudgeRequest("p", "a", "b")])


def test_progress_shows_requests_and_cache_hits(fast_settings, capsys):
    template = load_template(None, "pairwise")
    with FakeJudgeServer(helpfulness_judge) as server:
        settings = JudgeSettings(**{**fast_settings, "base_url": server.base_url})
        round_robin_scores(JudgeClient(settings, progress=True), template, PROMPTS, COMPLETIONS)
        paid = server.requests
        capsys.readouterr()
        round_robin_scores(JudgeClient(settings, progress=True), template, PROMPTS, COMPLETIONS)
    assert f"0 requests, {paid} cached, 0 retries" in capsys.readouterr().err
