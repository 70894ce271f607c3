"""Python side of the compiled core: the layout of one network and calls into
its kernels.

``Network`` knows where each layer lives in the flat parameter buffer, plans
the tiles, allocates every buffer the kernels use (the kernels allocate
nothing), and runs the kernels on a team of threads with BLAS kept to one
thread. It takes arrays that are already validated and of the network's dtype;
checking user input is the estimators' job.
"""

import contextlib
import functools
import signal
import threading
import time

import numpy as np
import scipy.sparse as sp

from .._config import MIN_CHUNK_ROWS
from ._epoch import (
    N_RUNNING,
    PREDICT_ROWS,
    RUNNING_LOSS,
    RUNNING_SQUARES,
    _epoch,
    _loss_and_gradient,
    _predict,
    plan_tiles,
)
from ._functions import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ._optim import (
    ADAM,
    ALPHA,
    BETA_1,
    BETA_2,
    EPSILON,
    LEARNING_RATE,
    MOMENTUM,
    N_SETTINGS,
    ONE_MINUS_BETA_1,
    ONE_MINUS_BETA_2,
    SOLVERS,
)
from ._team import ThreadCountTuner, run_team

# Stand-in for the dense input argument when the input is sparse.
_NO_VALUES = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}


def _writeable(array, dtype=None):
    """``array`` as a C-contiguous, writeable array (of ``dtype`` if given).

    Numba types a read-only array differently from a writeable one, so a
    read-only input (a frozen array, a read-only memmap) would compile a second
    specialisation of every kernel, seconds each. The kernels only read their
    inputs; a copy is made only when the array is read-only or not already
    C-contiguous of the right dtype.
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()
    return array


def _input_arrays(X, dtype):
    """(flat dense values, CSR data, CSR indices, CSR indptr) for the kernels.

    Dense X comes out as a flat row-major array (copied only if it is not
    C-contiguous and writeable, of ``dtype``), with None for the CSR arrays,
    so that the kernels compiled for dense input hold no sparse code; sparse
    X as its CSR arrays with int64 indices, with an empty dense part. Every
    array is writeable (see ``_writeable``).
    """
    if sp.issparse(X):
        X = X.tocsr()
        return (
            _NO_VALUES[np.dtype(dtype)],
            _writeable(X.data, dtype),
            _writeable(X.indices, np.int64),
            _writeable(X.indptr, np.int64),
        )
    return _writeable(X, dtype).reshape(-1), None, None, None


def kernel_ready(X, dtype):
    """X in the form the kernels take without copying: a writeable C-contiguous
    array of ``dtype``, or a CSR matrix with writeable data of ``dtype`` and
    int64 indices. Converting once per fit spares a copy per epoch for
    read-only, F-ordered, CSC or int32-indexed input."""
    if sp.issparse(X):
        X = X.tocsr()
        return sp.csr_matrix(
            (
                _writeable(X.data, dtype),
                _writeable(X.indices, np.int64),
                _writeable(X.indptr, np.int64),
            ),
            shape=X.shape,
        )
    return _writeable(X, dtype)


# (kernel, dtype, dense input) of the kernels called so far in this process.
# These decide the types of all the arguments, so a later call goes straight
# to the machine code.
_dispatched = set()


def _run_timed(tuner, n_batches, kernel, n_threads, *args):
    """``run_team(kernel, n_threads, *args)`` for a kernel of ``_epoch``
    (arguments ``x, data, indices, indptr, ...``), reporting to ``tuner``
    (unless None) how long the ``n_batches`` batches took.

    The first call for a dtype and input format compiles the kernel, or loads
    it from the disk cache, with Ctrl-C held back until it returns (see
    ``_ctrl_c_deferred``), and runs on one thread (with the same results):
    the helpers of a team would spin all that time, waiting for copy 0 to
    start (see ``run_team``), which measurably slowed a cold first fit down
    (4.1-4.2 s against 3.7-3.9 s on digits), and the tuner would time the
    compilation, not the training.
    """
    key = (kernel, args[0].dtype, args[3] is None)
    if key not in _dispatched:
        with _ctrl_c_deferred():
            result = run_team(kernel, 1, *args)
        _dispatched.add(key)
        return result
    start = time.perf_counter()
    result = run_team(kernel, n_threads, *args)
    if tuner is not None:
        tuner.record(n_threads, n_batches, time.perf_counter() - start)
    return result


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold a Ctrl-C back until the block ends, then raise KeyboardInterrupt.

    Numba loads a kernel from its disk cache (and stores a compiled one)
    through a ctypes callback of llvmlite. A KeyboardInterrupt raised inside
    that callback is swallowed and leaves LLVM reading a buffer that was never
    set: the process crashed (signal 11) in 3 of 116 processes that a test
    interrupted as their first fit started. Signals reach Python's main thread only, so only there,
    and only while Python's own SIGINT handler is installed, is Ctrl-C held.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


@functools.lru_cache(maxsize=64)
def network(units, activation, out_activation, dtype):
    """The (shared, immutable) ``Network`` for these layer sizes and functions.

    ``units`` is a tuple of ints and ``dtype`` a dtype name, so calls can be
    cached: predicting one row should not pay for building the layout again.
    """
    return Network(units, activation, out_activation, dtype)


class _Workspace:
    """Scratch buffers of one fit (see ``Network.workspace``): ``buffers`` is
    (act_offsets, acts, deltas, x_rows, chunk_losses)."""

    __slots__ = ("network", "n_rows", "gather_rows", "buffers")

    def __init__(self, network, n_rows, gather_rows):
        self.network, self.n_rows, self.gather_rows = network, n_rows, gather_rows
        act_offsets, size = network._act_layout(n_rows)
        dtype = network.dtype
        self.buffers = (
            act_offsets,
            np.empty(size, dtype=dtype),
            np.empty(size, dtype=dtype),
            np.empty(n_rows * network.units[0] * gather_rows, dtype=dtype),
            # At least as many entries as the kernels' chunk count.
            np.empty(n_rows // MIN_CHUNK_ROWS + 2),
        )


class Network:
    """Layout of a multilayer perceptron in one flat parameter buffer.

    A Network holds no training state and may be shared between estimators and
    threads; the scratch buffers of training come in a workspace per fit.

    Parameters
    ----------
    units : sequence of int
        Widths of all layers, input and output included.
    activation : {'identity', 'logistic', 'tanh', 'relu'}
        Hidden-layer activation.
    out_activation : {'identity', 'logistic', 'softmax', 'exp'}
        Output activation; it also fixes the loss (squared error, binary
        log-loss, log-loss, Poisson deviance).
    dtype : {numpy.float32, numpy.float64}
    """

    def __init__(self, units, activation, out_activation, dtype):
        self.units = np.array(units, dtype=np.int64)
        self.dtype = np.dtype(dtype)
        self.hidden_code = HIDDEN_ACTIVATIONS[activation]
        self.out_code = OUTPUT_ACTIVATIONS[out_activation]
        sizes = self.units[:-1] * self.units[1:]
        self.n_weights = int(sizes.sum())
        self.n_params = self.n_weights + int(self.units[1:].sum())
        self.coef_offsets = np.cumsum(sizes) - sizes
        self.intercept_offsets = (
            self.n_weights + np.cumsum(self.units[1:]) - self.units[1:]
        )
        # The backward pass's copies of W.T, for every layer above the first
        # (the input layer has no delta), packed one after another; layer 0's
        # entry is unused.
        upper_sizes = sizes.copy()
        upper_sizes[0] = 0
        self.transposed_offsets = np.cumsum(upper_sizes) - upper_sizes
        self.n_transposed = int(upper_sizes.sum())
        # Where each coefs_ and intercepts_ array starts in the buffer, in bytes.
        self._byte_offsets = [
            int(offset) * self.dtype.itemsize
            for offset in (*self.coef_offsets, *self.intercept_offsets)
        ]

    @functools.cached_property
    def tiles(self):
        """Weight-gradient tiles, planned on first use (training only)."""
        return plan_tiles(self.units)

    def views(self, params):
        """``coefs_`` and ``intercepts_`` lists as views into ``params``."""
        coefs, intercepts = [], []
        for layer, (fan_in, fan_out) in enumerate(zip(self.units[:-1], self.units[1:])):
            start = self.coef_offsets[layer]
            coefs.append(
                params[start : start + fan_in * fan_out].reshape(fan_in, fan_out)
            )
            start = self.intercept_offsets[layer]
            intercepts.append(params[start : start + fan_out])
        return coefs, intercepts

    def pack(self, coefs, intercepts):
        """A new flat buffer holding the given weight matrices and biases."""
        params = np.empty(self.n_params, dtype=self.dtype)
        for view, values in zip(
            sum(self.views(params), []), list(coefs) + list(intercepts)
        ):
            view[...] = values
        return params

    def buffer_of(self, coefs, intercepts):
        """The flat buffer that ``coefs`` and ``intercepts`` are views into, laid
        out as this network's, or None (then ``pack`` makes one)."""
        buffer = coefs[0].base
        if not (
            isinstance(buffer, np.ndarray)
            and buffer.ndim == 1
            and buffer.dtype == self.dtype
            and buffer.size == self.n_params
        ):
            return None
        start = buffer.ctypes.data
        for array, offset in zip((*coefs, *intercepts), self._byte_offsets):
            if (
                array.base is not buffer
                or not array.flags.c_contiguous
                or array.ctypes.data - start != offset
            ):
                return None
        return buffer

    def _act_layout(self, n_rows):
        """Offsets of each layer's block in acts/deltas for ``n_rows`` rows."""
        offsets, position = [0], 0
        for width in self.units[1:].tolist():
            offsets.append(position)
            position += n_rows * width
        return np.array(offsets, dtype=np.int64), position

    def workspace(self, n_rows, gather_rows):
        """Scratch buffers for batches of up to ``n_rows`` rows.

        A fit makes one and passes it to each of its ``epoch`` or
        ``loss_and_gradient`` calls, so that the buffers (for L-BFGS, of the
        size of the data set) are allocated once per fit and freed with it.
        ``gather_rows`` adds room to copy dense input rows into batch order.
        """
        return _Workspace(self, n_rows, gather_rows)

    def _checked_workspace(self, workspace, n_rows, gather_rows):
        """``workspace``, or a new one when None; the kernels write these
        buffers unchecked, so one made for another shape is refused."""
        if workspace is None:
            return self.workspace(n_rows, gather_rows)
        if (
            workspace.network is not self
            or workspace.n_rows < n_rows
            or (gather_rows and not workspace.gather_rows)
        ):
            raise ValueError(
                "this workspace was made for another network or fewer rows"
            )
        return workspace

    def epoch(
        self,
        params,
        state,
        X,
        target,
        weights,
        order,
        batch_size,
        solver,
        settings,
        adam_step,
        nesterov,
        threads,
        workspace=None,
    ):
        """Train one epoch in place; returns sum of batch loss x batch size.

        ``threads`` is a number of threads, which then train the whole epoch
        in one kernel call, or a ``ThreadCountTuner``, which then picks the
        number for each segment of consecutive batches (see there); the
        result is the same either way, to the last bit. ``workspace`` (see
        ``workspace``) is made for this call when None.
        """
        x, data, indices, indptr = _input_arrays(X, self.dtype)
        target, weights = (
            _writeable(target, self.dtype),
            _writeable(weights, self.dtype),
        )
        workspace = self._checked_workspace(
            workspace, min(batch_size, len(order)), gather_rows=indptr is None
        )
        act_offsets, acts, deltas, x_rows, chunk_losses = workspace.buffers
        grad = np.empty(self.n_params, dtype=self.dtype)
        transposed = np.empty(self.n_transposed, dtype=self.dtype)
        tile_squares = np.empty(len(self.tiles))
        running = np.zeros(N_RUNNING)
        running[RUNNING_SQUARES] = -1.0

        def train(n_threads, segment, tuner=None, segment_batches=0):
            _run_timed(
                tuner,
                segment_batches,
                _epoch,
                n_threads,
                x,
                data,
                indices,
                indptr,
                target,
                weights,
                segment,
                batch_size,
                params,
                transposed,
                self.units,
                self.coef_offsets,
                self.transposed_offsets,
                self.intercept_offsets,
                act_offsets,
                acts,
                deltas,
                x_rows,
                grad,
                chunk_losses,
                tile_squares,
                self.tiles,
                self.hidden_code,
                self.out_code,
                state,
                SOLVERS[solver],
                nesterov,
                settings,
                adam_step,
                running,
            )

        if not isinstance(threads, ThreadCountTuner):
            train(threads, order)
            return running[RUNNING_LOSS]
        n_batches = -(-len(order) // batch_size)
        done = 0
        while done < n_batches:
            n_threads, count = threads.plan(n_batches - done)
            count = max(1, min(count, n_batches - done))
            segment = order[done * batch_size : (done + count) * batch_size]
            train(n_threads, segment, threads, count)
            done += count
        return running[RUNNING_LOSS]

    def loss_and_gradient(
        self, params, X, target, weights, alpha, grad, threads, workspace=None
    ):
        """Full-batch loss, with its gradient written into ``grad``.

        ``threads`` is a number of threads or a ``ThreadCountTuner``, which
        then picks the number for this call and is told how long it took.
        ``workspace`` (see ``workspace``, for all rows of X) is made for this
        call when None.
        """
        x, data, indices, indptr = _input_arrays(X, self.dtype)
        target, weights = (
            _writeable(target, self.dtype),
            _writeable(weights, self.dtype),
        )
        n_samples = len(weights)
        workspace = self._checked_workspace(workspace, n_samples, gather_rows=False)
        act_offsets, acts, deltas, _, chunk_losses = workspace.buffers
        tuner = threads if isinstance(threads, ThreadCountTuner) else None
        n_threads = tuner.plan(1)[0] if tuner is not None else threads
        return _run_timed(
            tuner,
            1,
            _loss_and_gradient,
            n_threads,
            x,
            data,
            indices,
            indptr,
            target,
            weights,
            np.arange(n_samples),
            params,
            np.empty(self.n_transposed, dtype=self.dtype),
            self.units,
            self.coef_offsets,
            self.transposed_offsets,
            self.intercept_offsets,
            act_offsets,
            acts,
            deltas,
            chunk_losses,
            self.tiles,
            self.hidden_code,
            self.out_code,
            float(alpha),
            grad,
        )

    def predict(self, params, X, n_threads):
        """Output-layer activations, shape (n_samples, n_outputs)."""
        x, data, indices, indptr = _input_arrays(X, self.dtype)
        n_samples = X.shape[0]
        n_threads = max(1, min(n_threads, -(-n_samples // PREDICT_ROWS)))
        act_offsets, size = self._act_layout(min(PREDICT_ROWS, n_samples))
        acts = np.empty((n_threads, size), dtype=self.dtype)
        out = np.empty((n_samples, self.units[-1]), dtype=self.dtype)
        _run_timed(
            None,
            0,
            _predict,
            n_threads,
            x,
            data,
            indices,
            indptr,
            np.arange(n_samples),
            params,
            self.units,
            self.coef_offsets,
            self.intercept_offsets,
            act_offsets,
            acts,
            out,
            self.hidden_code,
            self.out_code,
        )
        return out


def optimizer_settings(learning_rate, momentum, beta_1, beta_2, epsilon, alpha):
    """The float64 settings vector the epoch kernel reads."""
    settings = np.zeros(N_SETTINGS)
    settings[LEARNING_RATE] = learning_rate
    settings[MOMENTUM] = momentum
    settings[BETA_1] = beta_1
    settings[BETA_2] = beta_2
    settings[ONE_MINUS_BETA_1] = 1.0 - beta_1
    settings[ONE_MINUS_BETA_2] = 1.0 - beta_2
    settings[EPSILON] = epsilon
    settings[ALPHA] = alpha
    return settings


def optimizer_state(solver, n_params, dtype):
    """Zeroed optimizer state: velocities (sgd) or both Adam moments."""
    return np.zeros((2 if SOLVERS[solver] == ADAM else 1, n_params), dtype=dtype)
