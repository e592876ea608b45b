"""The data position of a resumed run, in pairs: the same order whatever the number of processes."""

from __future__ import annotations

from prefkit_trainers.dpo.data import epoch_order
from prefkit_trainers.dpo.loop import LoopConfig, epoch_batches, planned_steps
from prefkit_trainers.dpo.losses import LossOptions, parse_loss_spec
from prefkit_trainers.dpo.train_state import Position


def config(batch_size: int = 2, grad_accum: int = 1, epochs: int = 2) -> LoopConfig:
    values = dict(
        loss=parse_loss_spec("sigmoid"), loss_options=LossOptions(beta=0.1), learning_rate=1e-3, epochs=epochs,
        batch_size=batch_size, grad_accum=grad_accum, warmup_ratio=0.0, scheduler="constant", weight_decay=0.0,
        max_grad_norm=1.0, seed=3, shuffle=True, layout="shared_prefix", save_every_steps=1, eval_every_steps=0,
    )  # fmt: skip
    return LoopConfig(**values)


def trained_order(num_pairs: int, epoch: int, done: int, loop: LoopConfig, world: int) -> list[int]:
    """The pairs all ranks train, step by step, from pair `done` of the epoch on."""
    per_rank = [epoch_batches(num_pairs, epoch, done, loop, rank, world) for rank in range(world)]
    seen = []
    for step in range(len(per_rank[0])):
        chunk = [None] * sum(len(batches[step]) for batches in per_rank)
        for rank, batches in enumerate(per_rank):
            chunk[rank::world] = batches[step]  # rank_batches deals a global batch round-robin
        seen += chunk
    return seen


def test_two_processes_then_one_train_every_pair_once_in_the_epoch_order():
    order = epoch_order(12, 1, 3, True)
    loop = config()
    before = trained_order(12, 1, 0, loop, 2)[:8]  # 2 steps of 4 pairs, then killed
    after = trained_order(12, 1, 8, loop, 1)  # resumed in one process at pair 8
    assert before + after == order


def test_one_process_then_two_train_every_pair_once_in_the_epoch_order():
    order = epoch_order(12, 0, 3, True)
    loop = config()
    assert trained_order(12, 0, 0, loop, 1)[:4] + trained_order(12, 0, 4, loop, 2) == order


def test_planned_steps_counts_the_steps_left_with_the_new_global_batch():
    loop = config(batch_size=2, epochs=2)  # 12 pairs
    assert planned_steps(12, loop, 2, Position()) == 6  # 3 steps of 4 pairs per epoch
    assert planned_steps(12, loop, 1, Position(step=2, epoch=0, pairs_done=8)) == 2 + 2 + 6
    assert planned_steps(12, loop, 2, Position(step=2, epoch=0, pairs_done=4)) == 2 + 2 + 3
    assert planned_steps(12, loop, 2, Position(step=6, epoch=2, pairs_done=0)) == 6  # finished
    # gradient accumulation: 2 micro-batches of 2 pairs per step, 12 - 4 = 8 pairs left = 2 steps
    assert planned_steps(12, config(grad_accum=2, epochs=1), 1, Position(step=1, epoch=0, pairs_done=4)) == 3
