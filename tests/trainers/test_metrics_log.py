"""MetricsLog on resume: metrics.jsonl and TensorBoard hold each step once (issue 12, item 9)."""

from __future__ import annotations

from prefkit_trainers.dpo.telemetry import MetricsLog, read_metrics


def logged_steps(folder) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = []
    for events in sorted(folder.glob("events.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        steps += [event.step for event in accumulator.Scalars("loss")]
    return steps


def test_a_resumed_log_rewrites_tensorboard_without_the_steps_after_the_saved_state(tmp_path):
    first = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tensorboard")
    for step in range(1, 6):  # killed after step 5 was logged; the saved state is at step 3
        first.write({"step": step, "loss": 1.0 / step})
    first.close()
    resumed = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tensorboard")
    resumed.truncate_after(3)
    for step in range(4, 7):
        resumed.write({"step": step, "loss": 1.0 / step})
    resumed.close()
    assert [record["step"] for record in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert logged_steps(tmp_path / "tensorboard") == [1, 2, 3, 4, 5, 6]
