"""A team of threads running one compiled kernel together.

Numba's ``prange`` adds several seconds of compilation per kernel and a fork
and join of its thread pool per parallel loop, and some of its threading layers
abort when two Python threads enter them at once. The kernels here instead run
as ``n_threads`` copies of one ``nogil`` compiled function: the calling thread
runs one, helper threads kept between calls run the others. Inside, the copies
claim work items through an atomic counter and meet at spin barriers, all on a
small shared int64 array ``sync``.

Which thread runs a work item never changes the arithmetic of that item, so
results do not depend on the number of threads.

A kernel must not raise once it may be waiting at a barrier: the other copies
would wait for it forever. Kernels therefore allocate nothing and run no
bounds-checked code; every buffer comes from Python.
"""

import os
import queue
import threading

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .._config import HELPER_JIT_OPTIONS, JIT_OPTIONS

# Slots of the sync array, one cache line (8 int64) apart to avoid false sharing:
# the barrier's arrival count and generation, the state of the call (see
# run_team), then one work-item counter per phase.
_ARRIVED, _GENERATION, _STATE, _COUNTERS = 0, 8, 16, 24
N_COUNTERS = 3
SYNC_SIZE = _COUNTERS + 8 * N_COUNTERS

# Values of the _STATE slot: 0 until copy 0 has started (_RUNNING), or until
# the call is abandoned: copy 0 never started, or a helper's copy failed to.
_RUNNING, _ABANDONED = 1, -1

# Spins on the generation counter before yielding the core to the OS; waits are
# short (one layer's work), but on a loaded machine spinning would steal the
# core from the thread being waited for.
_SPINS_BEFORE_YIELD = 2000

_sched_yield = types.ExternalFunction("sched_yield", types.intc())


def _int64_slot(context, builder, array_type, array, index, index_type):
    array_struct = context.make_array(array_type)(context, builder, array)
    position = context.cast(builder, index, index_type, types.intp)
    return builder.gep(array_struct.data, [position])


@intrinsic
def _atomic_add(typingctx, array, index, value):
    """array[index] += value atomically; returns the previous value."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(
            context, builder, signature.args[0], args[0], args[1], signature.args[1]
        )
        amount = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", slot, amount, "seq_cst")

    return types.int64(array, index, value), codegen


@intrinsic
def _atomic_load(typingctx, array, index):
    """array[index], read atomically."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(
            context, builder, signature.args[0], args[0], args[1], signature.args[1]
        )
        return builder.load_atomic(slot, "seq_cst", 8)

    return types.int64(array, index), codegen


@intrinsic
def _atomic_store(typingctx, array, index, value):
    """array[index] = value, written atomically."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(
            context, builder, signature.args[0], args[0], args[1], signature.args[1]
        )
        amount = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(amount, slot, "seq_cst", 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@njit(**HELPER_JIT_OPTIONS)
def _barrier(sync, n_threads):
    """Wait until all ``n_threads`` copies of the kernel have arrived here.

    Sense-reversing barrier: the last thread to arrive resets the arrival count
    and bumps the generation, which releases the others. The sequentially
    consistent atomics make every write before the barrier visible after it.
    """
    if n_threads == 1:
        return
    generation = _atomic_load(sync, _GENERATION)
    if _atomic_add(sync, _ARRIVED, 1) == n_threads - 1:
        _atomic_store(sync, _ARRIVED, 0)
        _atomic_add(sync, _GENERATION, 1)
        return
    spins = 0
    while _atomic_load(sync, _GENERATION) == generation:
        # A copy that failed to start never arrives: stop waiting for it. The
        # call's results are then discarded (run_team raises).
        if _atomic_load(sync, _STATE) == _ABANDONED:
            return
        spins += 1
        if spins > _SPINS_BEFORE_YIELD:
            _sched_yield()


@njit(**HELPER_JIT_OPTIONS)
def _announce(sync, thread):
    """Copy 0 tells the waiting helpers that it runs (see ``_await_copy_0``);
    every kernel starts with this."""
    if thread == 0:
        _atomic_store(sync, _STATE, _RUNNING)


@njit(**JIT_OPTIONS)
def _await_copy_0(sync):
    """Wait, without the GIL, until copy 0 of a team call has started or the
    call is abandoned; returns the call's state (``_RUNNING``, ``_ABANDONED``).

    The wait is short (copy 0's dispatch) unless copy 0 compiles the kernel,
    which the callers avoid (a kernel's first call runs on one thread), and it
    never sleeps: measured on the 2-core benchmark machine, helpers that had
    slept between looks while copy 0 compiled (200 us at a time, after 20 ms
    of yielding) were often scheduled on their caller's core afterwards, and
    the whole process then trained as slowly on two threads as on one.
    """
    looks = 0
    while True:
        state = _atomic_load(sync, _STATE)
        if state != 0:
            return state
        looks += 1
        if looks > _SPINS_BEFORE_YIELD:
            _sched_yield()


@njit(**HELPER_JIT_OPTIONS)
def _claim(sync, counter):
    """Index of the next unclaimed work item counted by ``counter``."""
    return _atomic_add(sync, _COUNTERS + 8 * counter, 1)


@njit(**HELPER_JIT_OPTIONS)
def _reset(sync, counter):
    """Rewind ``counter`` to 0. Only safe while no thread can be claiming from
    it: phases alternate between two counters, and each is rewound during the
    other's phase, between the two barriers that enclose that phase."""
    _atomic_store(sync, _COUNTERS + 8 * counter, 0)


class _Copy:
    """One helper's copy of a kernel call: its arguments, and once ``done`` is
    set, the error it raised (None if it ran through)."""

    def __init__(self, kernel, sync, args):
        self.kernel, self.sync, self.args = kernel, sync, args
        self.done = threading.Event()
        self.error = None


# Compiled (or loaded from the disk cache) on import. This is usually the
# first compiled call of the process, which sets up Numba's machinery: a
# Ctrl-C arriving in the middle of that setup leaves Numba unusable in the
# process, so it is not left to the first fit, where a user may well press
# Ctrl-C.
_await_copy_0(np.full(SYNC_SIZE, _RUNNING, dtype=np.int64))


class _Helper(threading.Thread):
    """A worker thread kept between team calls, running one copy at a time.

    Keeping the threads, rather than starting new ones per call, spares the
    thread start and the fresh per-thread buffers that BLAS sets up (and the
    kernel then page-faults into) for every new thread. An error in a copy
    (only its dispatch can raise) is handed to the caller; the helper stays
    usable.
    """

    def __init__(self):
        super().__init__(name="fastmlp-team", daemon=True)
        self.jobs = queue.SimpleQueue()

    def run(self):
        while True:
            copy = self.jobs.get()
            try:
                # A helper dispatches the kernel only once copy 0 runs, so it
                # never compiles it: it would hold Numba's compiler lock while
                # the caller waited for it, a wait that Ctrl-C does not
                # interrupt and that ends with the lock left taken when Ctrl-C
                # is handled just as it is acquired.
                if _await_copy_0(copy.sync) == _RUNNING:
                    copy.kernel(*copy.args)
            except BaseException as error:
                copy.error = error
                copy.sync[_STATE] = _ABANDONED
            finally:
                # An idle helper keeps no buffers of the call alive.
                copy.args = None
                copy.done.set()
                copy = None


# Idle helpers. A team takes its helpers for itself for the whole call and gives
# them back afterwards: two teams sharing a helper could each wait at a barrier
# for a copy that is queued behind the other team's.
_idle_helpers = []
_helpers_lock = threading.Lock()


def _forget_helpers_after_fork():
    # The helper threads do not exist in a forked child.
    global _idle_helpers, _helpers_lock
    _idle_helpers = []
    _helpers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers_after_fork)


def _take_helpers(count):
    """``count`` helpers for one team call, starting new ones as needed."""
    with _helpers_lock:
        helpers = _idle_helpers[len(_idle_helpers) - count :] if count else []
        del _idle_helpers[len(_idle_helpers) - len(helpers) :]
    try:
        while len(helpers) < count:
            helper = _Helper()
            helper.start()
            helpers.append(helper)
    except BaseException:
        _give_back(helpers)
        raise
    return helpers


def _give_back(helpers):
    with _helpers_lock:
        _idle_helpers.extend(helpers)


def run_team(kernel, n_threads, *args):
    """Run ``kernel(thread, n_threads, sync, *args)`` on ``n_threads`` threads.

    The calling thread runs copy 0 and its result is returned; the other copies
    run on helper threads kept between calls (the kernel releases the GIL),
    each started once copy 0 has (so that only the caller ever compiles the
    kernel). If helper threads cannot be started, no copy runs and the error
    is raised. If copy 0 fails to start (Ctrl-C or an error in its dispatch),
    the others do not run and the error is raised once they are done; if a
    helper's copy fails to start, the others stop waiting for it at barriers
    and its error is raised, the call's results being unusable.
    """
    sync = np.zeros(SYNC_SIZE, dtype=np.int64)
    if n_threads == 1:
        return kernel(0, 1, sync, *args)
    helpers = _take_helpers(n_threads - 1)
    copies = []
    try:
        for thread, helper in enumerate(helpers, start=1):
            copy = _Copy(kernel, sync, (thread, n_threads, sync, *args))
            helper.jobs.put(copy)
            copies.append(copy)
        result = kernel(0, n_threads, sync, *args)
    finally:
        # Copy 0 is done; if it never started, the helpers must not wait for it.
        if sync[_STATE] == 0:
            sync[_STATE] = _ABANDONED
        try:
            _wait_all(copies)
        finally:
            # _wait_all re-raises a Ctrl-C only once every copy is done, so the
            # helpers are idle either way; without this they would be lost.
            _give_back(helpers)
    for copy in copies:
        if copy.error is not None:
            raise copy.error
    return result


def _wait_all(copies):
    """Wait for every helper's copy, even through Ctrl-C, then re-raise it.

    Returning early would let helper threads go on writing the caller's
    buffers after the caller believes the kernel is done.
    """
    interrupted = None
    for copy in copies:
        while True:
            try:
                copy.done.wait()
                break
            except BaseException as error:  # KeyboardInterrupt while waiting
                interrupted = error
    if interrupted is not None:
        raise interrupted


class ThreadCountTuner:
    """Chooses the team size for each segment of training by timing segments.

    A team moves at the pace of its slowest thread. When other processes keep
    the cores busy, or the cores of a virtual machine exchange cache lines
    slowly, a team of many threads can train much slower than a small one:
    measured on the 2-core benchmark machine next to one busy process, a
    small network (W4) trained 3-8x slower on 2 threads than on 1. Results do
    not depend on the team size, so it may change between any two
    mini-batches. This class decides it: training runs in segments of about
    ``SEGMENT_SECONDS``, each on one of ``max_threads``, half that (rounded
    up), and so on down to 1 thread. Every segment is timed and the size that
    trains fastest is used, now and then trying a neighbouring size again,
    since the load on the machine changes. Each try that loses makes the
    interval to the next one four times longer, up to ``MAX_PROBE_INTERVAL``
    segments (well under a second), so that on a quiet machine the tries
    cost about 1-5% of the training time.

    The tuner holds no clock: the caller times each segment and reports it to
    ``record``, which keeps the policy testable with made-up timings.
    """

    SEGMENT_SECONDS = 0.02
    # The first segment of a fit is short. It also pays for starting threads
    # and for the first touch of fresh buffers, so the first try of another
    # size waits until the segment after it has timed the full team again.
    FIRST_SEGMENT_BATCHES = 8
    MIN_PROBE_INTERVAL = 4
    MAX_PROBE_INTERVAL = 32
    # A team half the size must train this much faster to be preferred: the
    # timings of single segments vary by 10-20% on a shared machine, and more
    # threads are what the caller asked for.
    HALVING_MARGIN = 1.1
    # How much slower than another size's last measurement the current size
    # must run before it is replaced without a fresh try.
    SWITCH_MARGIN = 1.25

    def __init__(self, max_threads):
        self.sizes = [max(1, max_threads)]
        while self.sizes[-1] > 1:
            self.sizes.append((self.sizes[-1] + 1) // 2)
        self.current = self.sizes[0]
        # Last measured seconds per batch of each size, and the segment at
        # which it was measured.
        self.seconds_per_batch = {}
        self.measured_at = {}
        self.n_segments = 0
        self.probe_interval = self.MIN_PROBE_INTERVAL
        self.next_probe = 2

    def plan(self, batches_left):
        """(threads, batches) for the next segment, of at most ``batches_left``
        batches."""
        if len(self.sizes) == 1:
            return 1, batches_left
        threads = self.current
        if self.n_segments >= self.next_probe:
            threads = self._probe_size()
        rate = self.seconds_per_batch.get(
            threads, self.seconds_per_batch.get(self.current)
        )
        if rate is None:
            batches = self.FIRST_SEGMENT_BATCHES
        else:
            batches = max(1, round(self.SEGMENT_SECONDS / max(rate, 1e-9)))
            if threads != self.current:
                # A try runs a shorter segment: it may well be slower.
                batches = max(1, batches // 4)
        if batches_left - batches < batches // 2:
            # Avoid a short tail segment, timed less reliably.
            batches = batches_left
        return threads, min(batches, batches_left)

    def record(self, threads, batches, seconds):
        """Report that ``batches`` batches took ``seconds`` on ``threads``."""
        rate = seconds / max(batches, 1)
        self.n_segments += 1
        if not 0.0 <= rate < np.inf:
            return  # not a usable timing (a clock that went back)
        self.seconds_per_batch[threads] = rate
        self.measured_at[threads] = self.n_segments
        if threads != self.current:
            if self._score(threads) < self._score(self.current):
                self.current = threads
                self.probe_interval = self.MIN_PROBE_INTERVAL
            else:
                self.probe_interval = min(
                    4 * self.probe_interval, self.MAX_PROBE_INTERVAL
                )
            self.next_probe = self.n_segments + self.probe_interval
            return
        # The current size ran well slower than another size when that was
        # last measured (the machine's load changed): that size takes over,
        # and the one it replaces is tried again soon.
        best = min(self.seconds_per_batch, key=self._score)
        if self._score(threads) > self.SWITCH_MARGIN * self._score(best):
            self.current = best
            self.probe_interval = self.MIN_PROBE_INTERVAL
            self.next_probe = self.n_segments + self.probe_interval

    def _score(self, size):
        """Measured seconds per batch, handicapped for smaller teams."""
        halvings = self.sizes.index(size)
        return self.seconds_per_batch.get(size, np.inf) * self.HALVING_MARGIN**halvings

    def _probe_size(self):
        """The neighbour of the current size measured longest ago (or never)."""
        position = self.sizes.index(self.current)
        neighbours = self.sizes[max(0, position - 1) : position]
        neighbours += self.sizes[position + 1 : position + 2]
        return min(neighbours, key=lambda size: self.measured_at.get(size, -1))
