"""Forward pass, backward pass and weight gradients of a multilayer perceptron.

Storage, shared by every kernel:

- ``params`` is one flat buffer: each layer's weight matrix (fan_in x fan_out,
  row-major) in layer order, then each layer's bias vector. ``coef_offsets[l]``
  and ``intercept_offsets[l]`` locate layer ``l``. The estimators expose
  ``coefs_`` and ``intercepts_`` as views into it. ``_network.Network`` computes
  the offsets and allocates every buffer; the kernels allocate nothing.
- ``units[l]`` is the width of layer ``l``; layer 0 is the input.
- ``acts`` and ``deltas`` hold, for every layer ``l >= 1``, a row-major block
  with ``units[l]`` values per row starting at ``act_offsets[l]``: the
  activations and the gradients of the loss with respect to the pre-activations
  (the "deltas").
- Dense input rows are read from the flat row-major buffer ``x_rows``, the
  block's first row at ``x_start``. Sparse input is read from the CSR arrays
  ``data, indices, indptr``, which are None for dense input. Being a type, not
  a value, None lets dense input compile a kernel with no sparse code in it
  (see ``csr_only``); that code cost a dense fit about 0.4 s of compilation.
- ``sample_rows[row]`` is the data-set row that buffer row ``row`` holds: it
  picks targets, sample weights and sparse input rows.

The functions work on one block of rows (a chunk of a mini-batch) or one band
of rows of one layer's weight matrix (a tile), the units of work that the
schedule in ``_epoch`` hands to threads. Matrix products go to BLAS on the flat
buffers; element loops run on 0-based views (see ``_functions``).
"""

from numba import njit, types
from numba.extending import overload

from .._config import CSR_JIT_OPTIONS, HELPER_JIT_OPTIONS, INNER_JIT_OPTIONS
from ._blas import _gemm, _row_times_matrix
from ._functions import _add_bias_and_activate, _multiply_by_derivative, _output_layer
from ._views import _block, _span


def csr_only(function):
    """Kernel-only version of ``function``, which takes the CSR arrays
    ``data, indices, indptr`` of sparse input among its arguments: it runs
    ``function`` when they are arrays, and compiles to nothing when they are
    None (dense input), so that dense kernels hold no sparse code."""
    position = function.__code__.co_varnames.index("indptr")

    def kernel_only(*args):
        raise TypeError(f"{function.__name__} runs inside compiled kernels only")

    kernel_only.__name__ = function.__name__
    kernel_only.__doc__ = function.__doc__

    @overload(kernel_only, jit_options=CSR_JIT_OPTIONS, strict=False)
    def _choose(*args):
        if isinstance(args[position], types.NoneType):
            return lambda *args: None
        return function

    return kernel_only


# Up to this many rows, the forward products are computed row by row
# (BLAS gemv) rather than by one gemm, which packs the whole weight matrix.
FEW_ROWS = 4


@njit(**INNER_JIT_OPTIONS)
def _transpose_band(
    params, transposed, layer, row_start, row_stop, units, coef_offsets, offsets
):
    """Copy rows ``row_start:row_stop`` of layer ``layer``'s weight matrix into
    the matching columns of its transpose in ``transposed``.

    The backward pass multiplies by W.T for every layer above the first; with
    W.T stored (fan_out x fan_in, row-major, from ``offsets[layer]``), that
    is a plain product. The copy is refreshed band by band right after each
    optimizer step, while the band is in cache.
    """
    fan_in, fan_out = units[layer], units[layer + 1]
    height = row_stop - row_start
    band = _block(params, coef_offsets[layer] + row_start * fan_out, height, fan_out)
    target = _block(transposed, offsets[layer], fan_out, fan_in)
    for j in range(fan_out):
        column = target[j]
        for i in range(height):
            column[row_start + i] = band[i, j]


@csr_only
def _sparse_first_layer(z, data, indices, indptr, sample_rows, weights):
    """z[row] = X[sample_rows[row]] @ W for CSR X, without densifying X."""
    zero = z.dtype.type(0)
    for row in range(z.shape[0]):
        out = z[row]
        for j in range(len(out)):
            out[j] = zero
        sample = sample_rows[row]
        for position in range(indptr[sample], indptr[sample + 1]):
            value = data[position]
            weight_row = weights[indices[position]]
            for j in range(len(out)):
                out[j] += value * weight_row[j]


@njit(**HELPER_JIT_OPTIONS)
def _forward_rows(
    x_rows,
    x_start,
    data,
    indices,
    indptr,
    sample_rows,
    row_start,
    row_stop,
    params,
    units,
    coef_offsets,
    intercept_offsets,
    acts,
    act_offsets,
    hidden_code,
):
    """Forward pass of buffer rows ``row_start:row_stop``.

    Hidden layers end activated; the output layer is left as A @ W only, for
    ``_output_layer`` to add its bias and activation together with the loss.
    """
    n_rows = row_stop - row_start
    last = len(units) - 2
    for layer in range(last + 1):
        fan_in, fan_out = units[layer], units[layer + 1]
        out_start = act_offsets[layer + 1] + row_start * fan_out
        z = _block(acts, out_start, n_rows, fan_out)
        weights = _block(params, coef_offsets[layer], fan_in, fan_out)
        sparse_input = layer == 0 and indptr is not None
        if layer == 0:
            in_buffer, in_start = x_rows, x_start
        else:
            in_buffer, in_start = acts, act_offsets[layer] + row_start * fan_in
        if sparse_input:
            _sparse_first_layer(
                z, data, indices, indptr, _span(sample_rows, row_start, n_rows), weights
            )
        elif n_rows <= FEW_ROWS:
            for row in range(n_rows):
                _row_times_matrix(
                    fan_out,
                    fan_in,
                    in_buffer,
                    in_start + row * fan_in,
                    params,
                    coef_offsets[layer],
                    acts,
                    out_start + row * fan_out,
                )
        else:
            _gemm(
                False,
                False,
                n_rows,
                fan_out,
                fan_in,
                1.0,
                in_buffer,
                in_start,
                fan_in,
                params,
                coef_offsets[layer],
                fan_out,
                0.0,
                acts,
                out_start,
                fan_out,
            )
        if layer < last:
            bias = intercept_offsets[layer]
            _add_bias_and_activate(z, _span(params, bias, fan_out), hidden_code)


@njit(**INNER_JIT_OPTIONS)
def _forward_backward_rows(
    x_rows,
    x_start,
    data,
    indices,
    indptr,
    sample_rows,
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
):
    """Forward pass, loss and backward pass of buffer rows ``row_start:row_stop``.

    Returns the weighted loss of the rows. Each layer's delta is computed once,
    delta[l] = (delta[l + 1] @ W[l].T) * f'(z[l]), and later reused for all of
    that layer's weight gradients; the input layer needs no delta. W[l].T is
    read from ``transposed`` (see ``_transpose_band``).
    """
    _forward_rows(
        x_rows,
        x_start,
        data,
        indices,
        indptr,
        sample_rows,
        row_start,
        row_stop,
        params,
        units,
        coef_offsets,
        intercept_offsets,
        acts,
        act_offsets,
        hidden_code,
    )
    n_rows = row_stop - row_start
    top = len(units) - 1
    start = act_offsets[top] + row_start * units[top]
    bias = intercept_offsets[top - 1]
    loss = _output_layer(
        _block(acts, start, n_rows, units[top]),
        _block(deltas, start, n_rows, units[top]),
        _span(params, bias, units[top]),
        out_code,
        target,
        _span(sample_rows, row_start, n_rows),
        weights,
        delta_scale,
    )

    for layer in range(top - 1, 0, -1):
        fan_in, fan_out = units[layer], units[layer + 1]
        lower = act_offsets[layer] + row_start * fan_in
        # delta[l + 1] @ W[l].T as a plain product with the stored transpose:
        # BLAS runs the transposed-operand form on small blocks up to 2x slower.
        _gemm(
            False,
            False,
            n_rows,
            fan_in,
            fan_out,
            1.0,
            deltas,
            act_offsets[layer + 1] + row_start * fan_out,
            fan_out,
            transposed,
            transposed_offsets[layer],
            fan_in,
            0.0,
            deltas,
            lower,
            fan_in,
        )
        stop = lower + n_rows * fan_in
        _multiply_by_derivative(
            _span(deltas, lower, stop - lower),
            _span(acts, lower, stop - lower),
            hidden_code,
        )
    return loss


@csr_only
def _sparse_gradient_band(
    band, row_start, data, indices, indptr, sample_rows, n_rows, deltas
):
    """band = X[sample_rows[:n_rows], row_start:row_start + len(band)].T @ delta
    for CSR X: each stored value inside the band of input units adds
    value * delta_row to its weight row. ``deltas`` holds the n_rows deltas
    of the layer above, row after row."""
    height, fan_out = band.shape
    zero = band.dtype.type(0)
    for i in range(height):
        for j in range(fan_out):
            band[i, j] = zero
    for row in range(n_rows):
        delta_row = _span(deltas, row * fan_out, fan_out)
        sample = sample_rows[row]
        for position in range(indptr[sample], indptr[sample + 1]):
            feature = indices[position] - row_start
            if 0 <= feature < height:
                value = data[position]
                out = band[feature]
                for j in range(fan_out):
                    out[j] += value * delta_row[j]


@njit(**INNER_JIT_OPTIONS)
def _gradient_tile(
    layer,
    row_start,
    row_stop,
    n_rows,
    x_rows,
    x_start,
    data,
    indices,
    indptr,
    sample_rows,
    units,
    coef_offsets,
    intercept_offsets,
    acts,
    deltas,
    act_offsets,
    grad,
):
    """Unscaled gradient of one tile: rows ``row_start:row_stop`` of the weight
    matrix of layer ``layer`` (the weights leaving those input units, a
    contiguous span of the buffer), summed over buffer rows ``0:n_rows``; the
    first tile of a layer also sums the layer's bias gradient.

    grad[W[rows, :]] = A[layer][:, rows].T @ delta[layer + 1] and
    grad[b] = column sums of delta[layer + 1]; the L2 penalty and the division
    by the weight sum come later.
    """
    fan_in, fan_out = units[layer], units[layer + 1]
    height = row_stop - row_start
    upper = act_offsets[layer + 1]
    coef_start = coef_offsets[layer] + row_start * fan_out
    zero = grad.dtype.type(0)
    if layer > 0 or indptr is None:
        if layer > 0:
            in_buffer, in_start = acts, act_offsets[layer] + row_start
        else:
            in_buffer, in_start = x_rows, x_start + row_start
        _gemm(
            True,
            False,
            height,
            fan_out,
            n_rows,
            1.0,
            in_buffer,
            in_start,
            fan_in,
            deltas,
            upper,
            fan_out,
            0.0,
            grad,
            coef_start,
            fan_out,
        )
    else:
        _sparse_gradient_band(
            _block(grad, coef_start, height, fan_out),
            row_start,
            data,
            indices,
            indptr,
            sample_rows,
            n_rows,
            _span(deltas, upper, n_rows * fan_out),
        )

    if row_start == 0:
        bias_grad = _span(grad, intercept_offsets[layer], fan_out)
        for j in range(fan_out):
            bias_grad[j] = zero
        for row in range(n_rows):
            delta_row = _span(deltas, upper + row * fan_out, fan_out)
            for j in range(fan_out):
                bias_grad[j] += delta_row[j]
