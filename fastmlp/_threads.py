"""How many threads a fit uses, and keeping BLAS to one thread meanwhile.

The compiled kernels run a team of threads that each call BLAS on small
blocks. If BLAS also started its own threads, the two pools would fight over
the same cores (measured at 4-5x slower), so BLAS is held to one thread for the
duration of every kernel call, through threadpoolctl.
"""

import os
import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController


def available_cores():
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def effective_n_threads(n_jobs):
    """Number of kernel threads for the ``n_jobs`` parameter.

    None means all available cores, capped by ``OMP_NUM_THREADS`` when it is set
    (joblib sets it in its worker processes so nested parallelism does not
    oversubscribe); a negative value counts back from the number of cores as in
    joblib (-1 is all cores). More threads than cores are never used: the
    team's threads wait for each other at barriers, which oversubscription
    turns into long stalls.
    """
    cores = available_cores()
    if n_jobs is None:
        cap = os.environ.get("OMP_NUM_THREADS", "")
        return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else cores
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return max(1, min(int(n_jobs), cores))


_controller = None
_lock = threading.Lock()
_active_calls = 0
_saved_limits = None


def _get_controller():
    global _controller
    if _controller is None:
        # Created on first use, after the kernels imported SciPy's BLAS, so
        # that library is among the ones it controls.
        _controller = ThreadpoolController()
    return _controller


def _set_num_threads(lib, num_threads):
    """Set a library's thread limit from whichever Python thread calls.

    threadpoolctl (3.7 and later) lets only one "controlling" Python thread
    change a process-wide pool such as OpenBLAS's pthreads build, and silently
    ignores every other thread. Training threads come and go (joblib's
    threading backend, user threads), so the first of them to enter would
    keep control and the limit of the others would be dropped: BLAS left
    multi-threaded inside the kernels, or the user's setting never restored.
    Callers hold ``_lock``, so taking control here cannot interleave with
    another fastmlp thread; control is handed back at once.
    """
    release = getattr(type(lib), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    lib.set_num_threads(num_threads)
    if release is not None:
        release()


@contextmanager
def single_threaded_blas():
    """Hold every BLAS library to one thread while any kernel call runs.

    Reference counted, so that when several Python threads train at once the
    limit stays until the last of them leaves, and the user's setting is then
    restored.
    """
    global _active_calls, _saved_limits
    with _lock:
        if _active_calls == 0:
            controller = _get_controller()
            _saved_limits = controller.select(user_api="blas")
            _saved_limits = [
                (lib, lib.num_threads) for lib in _saved_limits.lib_controllers
            ]
            for lib, _ in _saved_limits:
                _set_num_threads(lib, 1)
        _active_calls += 1
    try:
        yield
    finally:
        with _lock:
            _active_calls -= 1
            if _active_calls == 0:
                for lib, num_threads in _saved_limits:
                    _set_num_threads(lib, num_threads)
                _saved_limits = None
