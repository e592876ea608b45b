"""The one progress helper: sampling rates, step status, and judge statuses, drawn on stderr."""

from __future__ import annotations

from prefkit.sampling.progress import SamplingProgress, StepProgress


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
