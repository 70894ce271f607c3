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

from .._config import HELPER_JIT_OPTIONS

# Slots of the sync array, one cache line (8 int64) apart to avoid false sharing:
# the barrier's arrival count and generation, then one work-item counter per
# phase.
_ARRIVED, _GENERATION, _COUNTERS = 0, 8, 16
N_COUNTERS = 3
SYNC_SIZE = _COUNTERS + 8 * N_COUNTERS

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
        spins += 1
        if spins > _SPINS_BEFORE_YIELD:
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


class _Helper(threading.Thread):
    """A worker thread kept between team calls, running one job at a time.

    Keeping the threads, rather than starting new ones per call, spares the
    thread start and the fresh per-thread buffers that BLAS sets up (and the
    kernel then page-faults into) for every new thread.
    """

    def __init__(self):
        super().__init__(name="fastmlp-team", daemon=True)
        self.jobs = queue.SimpleQueue()

    def run(self):
        while True:
            kernel, args, done = self.jobs.get()
            try:
                kernel(*args)
            finally:
                done.set()


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
    run on helper threads kept between calls (the kernel releases the GIL). If
    helper threads cannot be started, no copy runs and the error is raised.
    """
    sync = np.zeros(SYNC_SIZE, dtype=np.int64)
    if n_threads == 1:
        return kernel(0, 1, sync, *args)
    helpers = _take_helpers(n_threads - 1)
    finished = [threading.Event() for _ in helpers]
    for thread, (helper, done) in enumerate(zip(helpers, finished), start=1):
        helper.jobs.put((kernel, (thread, n_threads, sync, *args), done))
    try:
        return kernel(0, n_threads, sync, *args)
    finally:
        _wait_all(finished)
        _give_back(helpers)


def _wait_all(finished):
    """Wait for every helper's copy, even through Ctrl-C, then re-raise it.

    Returning early would let helper threads go on writing the caller's
    buffers after the caller believes the kernel is done.
    """
    interrupted = None
    for done in finished:
        while True:
            try:
                done.wait()
                break
            except BaseException as error:  # KeyboardInterrupt while waiting
                interrupted = error
    if interrupted is not None:
        raise interrupted
