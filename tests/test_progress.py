"""The one progress helper: sampling rates, step status, resumed work, status lines, all on stderr."""

from __future__ import annotations

from prefkit.progress import SamplingProgress, StepProgress, say


def test_sampling_progress_reports_rates_on_stderr(capsys):
    with SamplingProgress(4, description="sampling") as bar:
        bar.skip(1)
        bar.advance(3, 120)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for results
    assert "4/4" in captured.err and "prompts/s" in captured.err and "tokens/s" in captured.err
    assert (bar.prompts, bar.tokens) == (3, 120)


def test_step_progress_status_and_disabled_bar(capsys):
    with StepProgress("judging", 2, unit="judgements") as bar:
        bar.advance(2, "2 requests, 0 cached, 1 retries")
    assert "2 requests, 0 cached, 1 retries" in capsys.readouterr().err
    with StepProgress("quiet", 1, enabled=False) as bar:
        bar.advance(1)
    assert capsys.readouterr().err == ""


def test_resumed_work_starts_the_bar_at_done_and_never_past_total(capsys):
    with StepProgress("labeling", 10, unit="rows", done=6) as bar:
        assert bar.progress.tasks[0].completed == 6
        bar.advance(4)
    assert "10/10" in capsys.readouterr().err
    # a resumed labeling run counts whole shards as done; the last shard may be short
    bar = StepProgress("labeling", 5, unit="rows", done=8, enabled=False).start()
    assert bar.progress.tasks[0].completed == 5
    bar.close()


def test_say_prints_one_line_on_stderr_only_when_enabled(capsys):
    say(True, "[eval] winrate on base ...")
    say(False, "[eval] hidden")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "[eval] winrate on base ...\n"


def test_training_bar_shows_loss_accuracy_and_throughput(capsys):
    from prefkit_trainers.dpo.loop import ProgressBar

    bar = ProgressBar(total=3, completed=1, enabled=True)
    bar.advance({"loss": 0.6931, "rewards/accuracies": 0.75, "pairs_per_s": 12.5})
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2/3" in captured.err and "loss 0.6931" in captured.err and "acc 0.75" in captured.err
    assert "12.5 pairs/s" in captured.err
