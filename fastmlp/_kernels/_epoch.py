"""Compiled entry points: a training epoch, the full-batch loss and gradient, and
prediction. Each runs as a team of threads (see ``_team``).

Schedule of one mini-batch, identical for any number of threads:

1. Chunks. The batch's rows are cut into chunks of about ``CHUNK_ROWS`` rows
   (twice that in float32), a number that depends on the batch size and dtype
   only. A thread takes a whole chunk and runs the forward pass, the loss and
   the backward pass (all deltas) of its rows.
2. Tiles. The weight gradients are cut into tiles, each a band of rows of one
   layer's weight matrix, a contiguous span of the parameter buffer
   (``plan_tiles``). A thread takes a whole tile: the tile's gradient sums
   over all rows of the batch in one BLAS call, and the optimizer step for
   the tile's weights (and, for a layer's first band, its biases) follows at
   once, in one pass, while the gradient is in cache.

A barrier ends each phase. No floating-point sum is ever split by thread:
per-chunk losses and per-tile squared norms go to arrays that every thread then
adds up in the same fixed order. BLAS must run single-threaded inside these
kernels (the callers see to it), or its threads and the team compete for the
same cores.
"""

import numpy as np
from numba import njit

from .._config import (
    CHUNK_ROWS,
    HELPER_JIT_OPTIONS,
    JIT_OPTIONS,
    MIN_BAND_ROWS,
    MIN_CHUNK_ROWS,
    MIN_TILE_WEIGHTS,
    TARGET_TILES,
)
from ._backprop import (
    _forward_backward_rows,
    _forward_rows,
    _gradient_tile,
    _transpose_band,
)
from ._functions import OUT_IDENTITY, _activate_output_row, larger, smaller
from ._optim import (
    ADAM,
    ALPHA,
    BETA_1,
    BETA_2,
    LEARNING_RATE,
    _adam_learning_rate,
    _finish_gradient_span,
    _step_span,
)
from ._team import _announce, _barrier, _claim, _reset
from ._views import _block, _prefetch, _span, _untracked

# Work-item counters of the phases: chunks and tiles alternate within every
# batch; the transposed copies of the weights are built once per call.
_CHUNKS, _TILES, _TRANSPOSE = 0, 1, 2

# Rows per block when predicting; blocks are spread over the threads.
PREDICT_ROWS = 256

# Slots of the float64 array ``running`` that carries an epoch's sums between
# the calls of ``_epoch`` that train it.
RUNNING_LOSS, RUNNING_SQUARES = 0, 1
N_RUNNING = 2


def plan_tiles(units, target_tiles=TARGET_TILES, min_weights=MIN_TILE_WEIGHTS):
    """Cut every weight matrix into bands of rows (input units) of similar size.

    Returns an int64 array of (layer, first row, end row) rows. A band of rows
    is a contiguous span of the parameter buffer, so its optimizer step is one
    vectorised pass. A band holds about ``max(total weights / target_tiles,
    min_weights)`` weights, so that tiles balance across threads without
    making BLAS calls too small to be efficient.
    """
    units = [int(u) for u in units]
    sizes = [fan_in * fan_out for fan_in, fan_out in zip(units[:-1], units[1:])]
    per_tile = max(1, sum(sizes) // target_tiles, min_weights)
    tiles = []
    for layer, size in enumerate(sizes):
        fan_in = units[layer]
        n_bands = max(1, min(round(size / per_tile), fan_in // MIN_BAND_ROWS))
        edges = np.linspace(0, fan_in, n_bands + 1).round().astype(np.int64)
        tiles.extend((layer, start, stop) for start, stop in zip(edges, edges[1:]))
    return np.array(tiles, dtype=np.int64).reshape(-1, 3)


@njit(**HELPER_JIT_OPTIONS)
def n_chunks(n_rows, itemsize):
    """Number of row chunks a batch of ``n_rows`` rows is cut into, for
    parameters of ``itemsize`` bytes (float32 chunks get twice the rows)."""
    if n_rows < 2 * MIN_CHUNK_ROWS:
        return 1
    chunk_rows = CHUNK_ROWS * 8 // itemsize
    return 2 * larger(1, (n_rows + chunk_rows) // (2 * chunk_rows))


@njit(**HELPER_JIT_OPTIONS)
def _squared_weights(params, n_weights):
    """Sum of the squared weights (biases excluded), in float64."""
    weights = _span(params, 0, n_weights)
    total = 0.0
    for k in range(n_weights):
        total += float(weights[k]) * float(weights[k])
    return total


@njit(**HELPER_JIT_OPTIONS)
def _copy(source, destination):
    for j in range(len(source)):
        destination[j] = source[j]


@njit(**HELPER_JIT_OPTIONS)
def _build_transposes(
    sync, n_threads, params, transposed, tiles, units, coef_offsets, offsets
):
    """Every thread's share of building W.T for all layers above the first,
    tile by tile; returns once all of them are built."""
    tile = _claim(sync, _TRANSPOSE)
    while tile < len(tiles):
        layer = tiles[tile, 0]
        if layer > 0:
            _transpose_band(
                params,
                transposed,
                layer,
                tiles[tile, 1],
                tiles[tile, 2],
                units,
                coef_offsets,
                offsets,
            )
        tile = _claim(sync, _TRANSPOSE)
    _barrier(sync, n_threads)


@njit(**HELPER_JIT_OPTIONS)
def _prefetch_rows(x, n_features, target, weights, rows):
    """Start loading the input rows (when dense), targets and sample weights of
    data-set rows ``rows`` into cache, one prefetch per cache line."""
    line = 64 // x.itemsize
    n_outputs = target.shape[1]
    for row in rows:
        if len(x) > 0:
            start = row * n_features
            for offset in range(start, start + n_features, line):
                _prefetch(x, offset)
            _prefetch(x, start + n_features - 1)
        _prefetch(target, row * n_outputs)
        _prefetch(weights, row)


@njit(**JIT_OPTIONS)
def _epoch(
    thread,
    n_threads,
    sync,
    x,
    data,
    indices,
    indptr,
    target,
    weights,
    order,
    batch_size,
    params,
    transposed,
    units,
    coef_offsets,
    transposed_offsets,
    intercept_offsets,
    act_offsets,
    acts,
    deltas,
    x_rows,
    grad,
    chunk_losses,
    tile_squares,
    tiles,
    hidden_code,
    out_code,
    state,
    solver,
    nesterov,
    settings,
    adam_step,
    running,
):
    """Mini-batch training over ``order``, a whole epoch or a run of its
    batches; updates params in place.

    ``x`` is the flat row-major dense input (empty when the CSR arrays hold it;
    they are None for dense input), ``target`` (n_samples, n_outputs) in the
    parameters' dtype, ``order`` the sample indices in batch order.
    ``settings`` holds the float64 optimizer settings indexed by the constants
    of ``_optim``; for Adam the learning rate there is the initial one, and
    ``adam_step[0]`` (steps taken so far) advances by one per batch.
    ``transposed`` holds W.T of every layer above the first (laid out by
    ``transposed_offsets``), which the backward pass multiplies by: built by
    an epoch's first call, then kept in step with each tile's update, so
    that later calls of the same epoch find it ready.
    ``running`` (float64) carries the epoch's sums from one call to the next,
    so that an epoch trained in several calls adds up exactly as in one:
    ``running[RUNNING_LOSS]`` is the sum so far of batch loss times batch size
    (which scikit-learn averages into ``loss_curve_``), and
    ``running[RUNNING_SQUARES]`` the squared norm of the weights as the last
    batch left them, or negative in an epoch's first call. Thread 0 updates
    both before returning.
    """
    _announce(sync, thread)
    # Arrays and views below hold no reference counts (see _views): the
    # threads would otherwise update the same counts from both cores.
    x, data, indices, indptr = (
        _untracked(x),
        _untracked(data),
        _untracked(indices),
        _untracked(indptr),
    )
    target, weights, order = _untracked(target), _untracked(weights), _untracked(order)
    params, acts, deltas = _untracked(params), _untracked(acts), _untracked(deltas)
    x_rows, grad, state = _untracked(x_rows), _untracked(grad), _untracked(state)
    units, coef_offsets = _untracked(units), _untracked(coef_offsets)
    intercept_offsets, act_offsets = (
        _untracked(intercept_offsets),
        _untracked(act_offsets),
    )
    chunk_losses, tile_squares = _untracked(chunk_losses), _untracked(tile_squares)
    tiles, settings, sync = _untracked(tiles), _untracked(settings), _untracked(sync)
    transposed, running = _untracked(transposed), _untracked(running)
    n_samples = len(order)
    n_features = units[0]
    n_outputs = units[len(units) - 1]
    dense = indptr is None
    alpha = settings[ALPHA]
    squares = running[RUNNING_SQUARES]
    if squares < 0.0:
        squares = _squared_weights(params, intercept_offsets[0])
        _build_transposes(
            sync,
            n_threads,
            params,
            transposed,
            tiles,
            units,
            coef_offsets,
            transposed_offsets,
        )
    step = adam_step[0]
    accumulated_loss = running[RUNNING_LOSS]

    for batch_start in range(0, n_samples, batch_size):
        batch_stop = smaller(batch_start + batch_size, n_samples)
        n_rows = batch_stop - batch_start
        batch = _span(order, batch_start, n_rows)
        n_batch_chunks = n_chunks(n_rows, params.itemsize)

        # Phase 1: forward and backward pass, chunk by chunk.
        if thread == 0:
            _reset(sync, _TILES)
        chunk = _claim(sync, _CHUNKS)
        while chunk < n_batch_chunks:
            row_start = chunk * n_rows // n_batch_chunks
            row_stop = (chunk + 1) * n_rows // n_batch_chunks
            if dense:
                # Copy the chunk's input rows into batch order.
                for row in range(row_start, row_stop):
                    source = batch[row] * n_features
                    _copy(
                        _span(x, source, n_features),
                        _span(x_rows, row * n_features, n_features),
                    )
            chunk_losses[chunk] = _forward_backward_rows(
                x_rows,
                row_start * n_features,
                data,
                indices,
                indptr,
                batch,
                row_start,
                row_stop,
                target,
                weights,
                params,
                transposed,
                units,
                coef_offsets,
                transposed_offsets,
                intercept_offsets,
                acts,
                deltas,
                act_offsets,
                hidden_code,
                out_code,
                1.0,
            )
            chunk = _claim(sync, _CHUNKS)
        _barrier(sync, n_threads)

        # Every thread derives the same batch scalars, in the same order.
        weight_sum = 0.0
        for row in range(n_rows):
            weight_sum += weights[batch[row]]
        data_loss = 0.0
        for chunk in range(n_batch_chunks):
            data_loss += chunk_losses[chunk]
        if out_code == OUT_IDENTITY:
            data_loss /= n_outputs
        accumulated_loss += (data_loss + 0.5 * alpha * squares) / weight_sum * n_rows
        learning_rate = settings[LEARNING_RATE]
        if solver == ADAM:
            step += 1
            learning_rate = _adam_learning_rate(
                learning_rate, settings[BETA_1], settings[BETA_2], step
            )

        # Phase 2: weight gradients and optimizer step, tile by tile.
        if thread == 0:
            _reset(sync, _CHUNKS)
        # Meanwhile, have the next batch's scattered rows loaded into cache.
        _prefetch_rows(
            x,
            n_features,
            target,
            weights,
            _span(order, batch_stop, smaller(batch_size, n_samples - batch_stop)),
        )
        tile = _claim(sync, _TILES)
        while tile < len(tiles):
            layer, row_start, row_stop = tiles[tile, 0], tiles[tile, 1], tiles[tile, 2]
            _gradient_tile(
                layer,
                row_start,
                row_stop,
                n_rows,
                x_rows,
                0,
                data,
                indices,
                indptr,
                batch,
                units,
                coef_offsets,
                intercept_offsets,
                acts,
                deltas,
                act_offsets,
                grad,
            )
            fan_out = units[layer + 1]
            tile_squares[tile] = _step_span(
                params,
                grad,
                state,
                coef_offsets[layer] + row_start * fan_out,
                (row_stop - row_start) * fan_out,
                alpha,
                weight_sum,
                solver,
                nesterov,
                learning_rate,
                settings,
            )
            if row_start == 0:
                # Biases get no L2 penalty, and are not in the squared norm.
                _step_span(
                    params,
                    grad,
                    state,
                    intercept_offsets[layer],
                    fan_out,
                    0.0,
                    weight_sum,
                    solver,
                    nesterov,
                    learning_rate,
                    settings,
                )
            if layer > 0:
                _transpose_band(
                    params,
                    transposed,
                    layer,
                    row_start,
                    row_stop,
                    units,
                    coef_offsets,
                    transposed_offsets,
                )
            tile = _claim(sync, _TILES)
        _barrier(sync, n_threads)

        squares = 0.0
        for tile in range(len(tiles)):
            squares += tile_squares[tile]

    if thread == 0:
        adam_step[0] = step
        running[RUNNING_LOSS] = accumulated_loss
        running[RUNNING_SQUARES] = squares


@njit(**JIT_OPTIONS)
def _loss_and_gradient(
    thread,
    n_threads,
    sync,
    x,
    data,
    indices,
    indptr,
    target,
    weights,
    rows,
    params,
    transposed,
    units,
    coef_offsets,
    transposed_offsets,
    intercept_offsets,
    act_offsets,
    acts,
    deltas,
    chunk_losses,
    tiles,
    hidden_code,
    out_code,
    alpha,
    grad,
):
    """Full-batch loss (returned on every thread) and its gradient (in ``grad``).

    The loss is scikit-learn's: the weighted mean loss plus alpha / 2 * ||W||^2,
    both divided by the weight sum; for squared error the mean also runs over
    the outputs. Unlike scikit-learn, the gradient does the same, so it is the
    exact gradient of the returned loss. ``rows`` is 0..n_samples - 1;
    ``transposed`` is scratch for W.T, as in ``_epoch``.
    """
    _announce(sync, thread)
    # Untracked, as in _epoch.
    x, data, indices, indptr = (
        _untracked(x),
        _untracked(data),
        _untracked(indices),
        _untracked(indptr),
    )
    target, weights, rows = _untracked(target), _untracked(weights), _untracked(rows)
    params, acts, deltas = _untracked(params), _untracked(acts), _untracked(deltas)
    grad, transposed = _untracked(grad), _untracked(transposed)
    n_samples = len(rows)
    n_features = units[0]
    n_outputs = units[len(units) - 1]
    delta_scale = 1.0 / n_outputs if out_code == OUT_IDENTITY else 1.0
    weight_sum = 0.0
    for row in range(n_samples):
        weight_sum += weights[row]

    _build_transposes(
        sync,
        n_threads,
        params,
        transposed,
        tiles,
        units,
        coef_offsets,
        transposed_offsets,
    )
    n_data_chunks = n_chunks(n_samples, params.itemsize)
    chunk = _claim(sync, _CHUNKS)
    while chunk < n_data_chunks:
        row_start = chunk * n_samples // n_data_chunks
        row_stop = (chunk + 1) * n_samples // n_data_chunks
        chunk_losses[chunk] = _forward_backward_rows(
            x,
            row_start * n_features,
            data,
            indices,
            indptr,
            rows,
            row_start,
            row_stop,
            target,
            weights,
            params,
            transposed,
            units,
            coef_offsets,
            transposed_offsets,
            intercept_offsets,
            acts,
            deltas,
            act_offsets,
            hidden_code,
            out_code,
            delta_scale,
        )
        chunk = _claim(sync, _CHUNKS)
    _barrier(sync, n_threads)

    tile = _claim(sync, _TILES)
    while tile < len(tiles):
        layer, row_start, row_stop = tiles[tile, 0], tiles[tile, 1], tiles[tile, 2]
        _gradient_tile(
            layer,
            row_start,
            row_stop,
            n_samples,
            x,
            0,
            data,
            indices,
            indptr,
            rows,
            units,
            coef_offsets,
            intercept_offsets,
            acts,
            deltas,
            act_offsets,
            grad,
        )
        fan_out = units[layer + 1]
        _finish_gradient_span(
            params,
            grad,
            coef_offsets[layer] + row_start * fan_out,
            (row_stop - row_start) * fan_out,
            alpha,
            weight_sum,
        )
        if row_start == 0:
            _finish_gradient_span(
                params, grad, intercept_offsets[layer], fan_out, 0.0, weight_sum
            )
        tile = _claim(sync, _TILES)
    _barrier(sync, n_threads)

    data_loss = 0.0
    for chunk in range(n_data_chunks):
        data_loss += chunk_losses[chunk]
    if out_code == OUT_IDENTITY:
        data_loss /= n_outputs
    squares = _squared_weights(params, intercept_offsets[0])
    return (data_loss + 0.5 * alpha * squares) / weight_sum


@njit(**JIT_OPTIONS)
def _predict(
    thread,
    n_threads,
    sync,
    x,
    data,
    indices,
    indptr,
    rows,
    params,
    units,
    coef_offsets,
    intercept_offsets,
    act_offsets,
    acts,
    out,
    hidden_code,
    out_code,
):
    """Output activations of every input row, written to ``out``.

    Blocks of ``PREDICT_ROWS`` rows are claimed by the threads; thread ``t``
    works in ``acts[t]``, laid out by ``act_offsets`` for one block.
    """
    _announce(sync, thread)
    # Untracked, as in _epoch.
    x, data, indices, indptr = (
        _untracked(x),
        _untracked(data),
        _untracked(indices),
        _untracked(indptr),
    )
    rows, params, acts, out = (
        _untracked(rows),
        _untracked(params),
        _untracked(acts),
        _untracked(out),
    )
    n_samples, n_outputs = out.shape
    n_features = units[0]
    top = len(units) - 1
    work = acts[thread]
    n_blocks = (n_samples + PREDICT_ROWS - 1) // PREDICT_ROWS
    block = _claim(sync, _CHUNKS)
    while block < n_blocks:
        row_start = block * PREDICT_ROWS
        n_rows = smaller(PREDICT_ROWS, n_samples - row_start)
        _forward_rows(
            x,
            row_start * n_features,
            data,
            indices,
            indptr,
            _span(rows, row_start, n_rows),
            0,
            n_rows,
            params,
            units,
            coef_offsets,
            intercept_offsets,
            work,
            act_offsets,
            hidden_code,
        )
        z = _block(work, act_offsets[top], n_rows, n_outputs)
        bias = _span(params, intercept_offsets[top - 1], n_outputs)
        for row in range(n_rows):
            _activate_output_row(z[row], bias, out_code)
            _copy(z[row], out[row_start + row])
        block = _claim(sync, _CHUNKS)
