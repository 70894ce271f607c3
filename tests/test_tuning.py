"""The policy that picks the team size for each segment of training.

The tuner sees only the timings it is told, so these tests play a machine
with made-up costs per batch for each team size.
"""

import pytest

from fastmlp._kernels import ThreadCountTuner


def _train(tuner, cost, n_batches, epochs=1):
    """Run ``epochs`` epochs of ``n_batches`` through ``tuner``, on a machine
    whose seconds per batch on t threads are ``cost(t, batches_done)``;
    returns the (threads, batches) of every segment."""
    segments, done = [], 0
    for _ in range(epochs):
        left = n_batches
        while left:
            threads, batches = tuner.plan(left)
            assert 1 <= batches <= left and threads in tuner.sizes
            tuner.record(threads, batches, batches * cost(threads, done))
            segments.append((threads, batches))
            left -= batches
            done += batches
    return segments


def _share(segments, threads):
    total = sum(batches for _, batches in segments)
    return sum(b for t, b in segments if t == threads) / total


@pytest.mark.parametrize(
    "max_threads, sizes",
    [
        (1, [1]),
        (2, [2, 1]),
        (3, [3, 2, 1]),
        (4, [4, 2, 1]),
        (6, [6, 3, 2, 1]),
        (64, [64, 32, 16, 8, 4, 2, 1]),
    ],
)
def test_sizes_halve_down_to_one(max_threads, sizes):
    assert ThreadCountTuner(max_threads).sizes == sizes


def test_one_thread_trains_each_epoch_in_one_segment():
    tuner = ThreadCountTuner(1)
    assert _train(tuner, lambda t, done: 1e-3, 5000, epochs=3) == [(1, 5000)] * 3


def test_segments_last_about_the_target_time():
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 1e-4 if t == 2 else 1e-3, 10_000)
    # A short warm-up on all threads, then segments of about 20 ms.
    assert segments[0] == (2, ThreadCountTuner.FIRST_SEGMENT_BATCHES)
    full = [b for t, b in segments[1:-1] if t == 2]
    target = round(ThreadCountTuner.SEGMENT_SECONDS / 1e-4)
    assert full and all(b == target for b in full)
    # Tries of the other size are shorter.
    assert all(b < target for t, b in segments if t == 1)


def test_no_short_tail_segment():
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 1e-3 if t == 2 else 5e-3, 47)
    # 8 warm-up batches, then segments of 20; 19 left over join the last one.
    assert [b for t, b in segments if t == 2][-1] >= 10


def test_quiet_machine_keeps_all_threads():
    # Two threads 1.4x faster, as for a small network on a quiet machine:
    # tries of one thread take few batches, and fewer as they keep losing.
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 50e-6 if t == 2 else 70e-6, 30_000)
    assert _share(segments, 2) > 0.97
    tries = [i for i, (t, _) in enumerate(segments) if t == 1]
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]


def test_a_slow_first_segment_is_not_held_against_the_full_team():
    # The first segment pays one-time costs (thread start, fresh buffers).
    def cost(threads, done):
        if done == 0:
            return 1e-3
        return 50e-6 if threads == 2 else 70e-6

    tuner = ThreadCountTuner(2)
    segments = _train(tuner, cost, 10_000)
    assert [threads for threads, _ in segments[:7]] == [2, 2, 1, 2, 2, 2, 2]


def test_busy_machine_moves_to_one_thread():
    # Next to a busy process, two threads ran 4x slower than one.
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 200e-6 if t == 2 else 50e-6, 20_000)
    assert segments[2][0] == 1  # right after the first try
    assert _share(segments, 1) > 0.97


def test_a_slightly_faster_smaller_team_does_not_take_over():
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 100e-6 if t == 2 else 95e-6, 10_000)
    assert _share(segments, 2) > 0.9


@pytest.mark.parametrize("load_arrives", [True, False])
def test_follows_a_change_of_load(load_arrives):
    # The machine changes after 5000 batches. A slowdown of the current size
    # is seen at once; a speed-up of the other is found by its next try,
    # at most MAX_PROBE_INTERVAL segments later.
    def cost(threads, done):
        busy = (done >= 5000) == load_arrives
        if busy:
            return 200e-6 if threads == 2 else 60e-6
        return 40e-6 if threads == 2 else 60e-6

    tuner = ThreadCountTuner(2)
    segments = _train(tuner, cost, 40_000)
    done, change = 0, None
    for index, (_, batches) in enumerate(segments):
        if done >= 5000 and change is None:
            change = index
        done += batches
    if load_arrives:
        assert segments[change][0] == 2 and segments[change + 1][0] == 1
    delay = 2 if load_arrives else ThreadCountTuner.MAX_PROBE_INTERVAL + 2
    after = segments[change + delay :]
    assert after and _share(after, 1 if load_arrives else 2) > 0.95


def test_many_cores_climb_to_the_best_size():
    # On 16 cores a small network is fastest on 4 threads.
    costs = {16: 90e-6, 8: 60e-6, 4: 30e-6, 2: 45e-6, 1: 80e-6}
    tuner = ThreadCountTuner(16)
    segments = _train(tuner, lambda t, done: costs[t], 50_000)
    assert tuner.current == 4
    assert _share(segments, 4) > 0.8


@pytest.mark.parametrize("seconds", [float("nan"), -1.0, float("inf")])
def test_unusable_timings_are_ignored(seconds):
    tuner = ThreadCountTuner(2)
    _train(tuner, lambda t, done: 1e-4 if t == 2 else 2e-4, 100)
    before = dict(tuner.seconds_per_batch), tuner.current
    tuner.record(1, 10, seconds)
    assert (tuner.seconds_per_batch, tuner.current) == before
    threads, batches = tuner.plan(1000)
    assert threads in tuner.sizes and 1 <= batches <= 1000


def test_a_single_call_per_step_is_one_segment():
    # L-BFGS asks for one "batch" (one full-batch evaluation) at a time.
    tuner = ThreadCountTuner(2)
    segments = _train(tuner, lambda t, done: 0.01 if t == 2 else 0.03, 1, epochs=50)
    assert all(batches == 1 for _, batches in segments)
    assert _share(segments, 2) > 0.9
