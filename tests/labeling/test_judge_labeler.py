"""The judge as a labeler inside the labeling stage: faults change nothing, the key never leaks."""

from __future__ import annotations

import pytest

from prefkit.labeling.registry import load_labeler
from prefkit.labeling.stage import LabelConfig, label
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import fast_judge_options, helpfulness_judge, pointwise_judge

SECRET = "sk-test-do-not-leak-1234567890"


@pytest.fixture()
def fast_settings(tmp_path) -> dict:
    return fast_judge_options(tmp_path)


def judge_config(server: FakeJudgeServer, settings: dict, **options) -> LabelConfig:
    return LabelConfig(
        labeler="judge",
        labeler_options={
            **settings,
            "base_url": server.base_url,
            "api_key_env": "PREFKIT_TEST_JUDGE_KEY",
            **options,
        },
        shard_size=3,
    )


def test_pairwise_judge_stage_under_faults_equals_fault_free(
    sentiment_candidates, tmp_path, fast_settings, monkeypatch
):
    monkeypatch.setenv("PREFKIT_TEST_JUDGE_KEY", SECRET)
    with FakeJudgeServer(helpfulness_judge) as server:
        clean = label(
            sentiment_candidates, tmp_path / "clean", judge_config(server, fast_settings), progress=False
        )
    faulty_settings = {**fast_settings, "cache_path": str(tmp_path / "faulty.sqlite"), "max_concurrency": 16}
    with FakeJudgeServer(
        helpfulness_judge, faults=["429", "drop", "garbage", "500", "slow"], slow_s=0.8
    ) as server:
        faulty = label(
            sentiment_candidates, tmp_path / "faulty", judge_config(server, faulty_settings), progress=False
        )
        paid = server.requests
        # a forced rerun is served from the cache: the server sees no new request
        label(
            sentiment_candidates,
            tmp_path / "faulty",
            judge_config(server, faulty_settings),
            force=True,
            progress=False,
        )
        assert server.requests == paid
    assert faulty.table().drop("margin").equals(clean.table().drop("margin"))
    table = clean.table()
    assert table.height == 8 and all("wonderful" in text for text in table["chosen"])
    assert table["score_chosen"].to_list() == [1.0] * 8  # won both of its comparisons
    usage = faulty.manifest.counts["labeler_usage"]
    assert usage["requests"] == 8 * 6 * 2  # 3 pairs x 2 orders per prompt; garbage answers paid twice
    assert usage["unparseable_answers"] == 8 * 6 and usage["invalid"] == 0 and usage["retries"] > 0
    assert clean.manifest.counts["labeler_usage"]["prompt_tokens"] > 0
    for artifact in (clean, faulty):
        for path in artifact.path.iterdir():
            if path.suffix in (".json", ".md"):
                assert SECRET not in path.read_text()


def test_pointwise_judge_stage(sentiment_candidates, tmp_path, fast_settings):
    with FakeJudgeServer(pointwise_judge) as server:
        artifact = label(
            sentiment_candidates,
            tmp_path / "p",
            judge_config(server, fast_settings, mode="pointwise"),
            progress=False,
        )
        assert server.requests == 8 * 3
    table = artifact.table()
    assert table.height == 8 and all("terrible" in text for text in table["rejected"])
    assert (table["score_chosen"] > 5).all()


def test_unparseable_judge_rows_are_counted_drops(sentiment_candidates, tmp_path, fast_settings):
    with FakeJudgeServer(lambda messages: "no idea") as server:
        config = judge_config(server, fast_settings, mode="pointwise", parse_attempts=1)
        artifact = label(sentiment_candidates, tmp_path / "p", config, progress=False)
    assert artifact.table().height == 0
    assert artifact.manifest.counts["dropped"] == {"nan_score": 24, "too_few_candidates": 8}
    assert artifact.manifest.counts["labeler_usage"]["invalid"] == 24


def test_judge_is_a_registered_labeler(fast_settings):
    labeler = load_labeler(
        "judge", {**fast_settings, "base_url": "http://127.0.0.1:9/v1", "mode": "pointwise"}
    )
    assert labeler.name == "judge" and labeler.usage()["requests"] == 0
    labeler.close()
