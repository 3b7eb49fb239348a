"""Throughput maths: warm-up steps excluded, gaps between epochs not charged."""

from __future__ import annotations

import pytest

from workloads.timing import EpochSteps, Recorder, step_samples, steps_per_epoch, throughput


def test_warmup_steps_are_excluded() -> None:
    # 5 steps of 10 samples: the first two take 1 s each (compilation), then 0.1 s each.
    epoch = EpochSteps(start=0.0, ends=[1.0, 2.0, 2.1, 2.2, 2.3], samples=[10] * 5)
    result = throughput([epoch], warmup=2)
    assert result.samples == 30
    assert result.seconds == pytest.approx(0.3)
    assert result.img_per_s == pytest.approx(100.0)
    assert result.step_seconds_median == pytest.approx(0.1)


def test_zero_warmup_counts_from_epoch_start() -> None:
    epoch = EpochSteps(start=10.0, ends=[10.5, 11.0], samples=[4, 4])
    result = throughput([epoch], warmup=0)
    assert (result.samples, result.seconds, result.img_per_s) == (8, 1.0, 8.0)


def test_later_epochs_count_from_their_own_start() -> None:
    first = EpochSteps(start=0.0, ends=[5.0, 6.0, 7.0], samples=[32, 32, 16], end=7.1)
    # 100 s of evaluation between the epochs must not count.
    second = EpochSteps(start=107.0, ends=[108.0, 109.0, 110.0], samples=[32, 32, 16], end=110.2)
    result = throughput([first, second], warmup=1)
    assert result.samples == 32 + 16 + 80
    assert result.seconds == pytest.approx(2.0 + 3.0)
    assert result.img_per_s == pytest.approx(128 / 5.0)


def test_partial_last_batch_counts_its_real_samples() -> None:
    epoch = EpochSteps(start=0.0, ends=[1.0, 2.0, 3.0], samples=[32, 32, 8])
    assert throughput([epoch], warmup=1).img_per_s == pytest.approx(40 / 2.0)


@pytest.mark.parametrize("steps", [0, 3, 10])
def test_too_few_steps_for_the_warmup(steps: int) -> None:
    epoch = EpochSteps(start=0.0, ends=[float(i) for i in range(1, steps + 1)], samples=[1] * steps)
    with pytest.raises(ValueError, match=f"{steps} steps in epoch 1 leave none after 10 warm-up steps"):
        throughput([epoch], warmup=10)


def test_no_epochs() -> None:
    with pytest.raises(ValueError, match="0 steps"):
        throughput([], warmup=0)


def test_clock_that_does_not_advance() -> None:
    with pytest.raises(ValueError, match="clock did not advance"):
        throughput([EpochSteps(start=1.0, ends=[1.0, 1.0], samples=[2, 2])], warmup=1)


def test_step_counts_keep_the_partial_batch() -> None:
    assert steps_per_epoch(2000, 32) == 63
    assert steps_per_epoch(1024, 32) == 32
    assert [step_samples(70, 32, i) for i in range(3)] == [32, 32, 6]


def test_recorder_collects_steps_epochs_and_logs() -> None:
    ticks = iter([0.0, 1.0, 1.5, 2.0, 3.0, 3.5, 4.0, 4.25])
    lines: list[str] = []
    recorder = Recorder(epochs=2, log=lines.append, clock=lambda: next(ticks))
    for loss in (0.9, 0.5):
        recorder.start_epoch()
        recorder.step(10)
        recorder.step(5)
        recorder.end_epoch(loss, 1 - loss)
    assert recorder.epoch_seconds == [2.0, 1.25]
    assert recorder.losses == [0.9, 0.5]
    assert lines[0] == "epoch 1/2: 2.000 s, 2 steps, loss 0.9000, accuracy 0.1000"
    # Warm-up of 1 step: 0.5 s for 5 samples, then epoch 2 from its start: 1.0 s for 15.
    assert throughput(recorder.epochs, warmup=1).img_per_s == pytest.approx(20 / 1.5)
