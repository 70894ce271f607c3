"""Stochastic optimizer steps on the flat parameter buffer.

A step finishes the gradient (adds the L2 penalty, divides by the batch's
weight sum), updates the optimizer state and the parameters, all in one pass
over a tile of the buffer, while the tile's gradient is still in cache.
"""

import math

from numba import njit

from .._config import JIT_OPTIONS
from ._views import _span

SGD, ADAM = 0, 1
SOLVERS = {"sgd": SGD, "adam": ADAM}

# Positions in the float64 vector of optimizer settings handed to the kernels.
LEARNING_RATE, MOMENTUM, BETA_1, BETA_2, EPSILON, ALPHA = range(6)
N_SETTINGS = 6


@njit(**JIT_OPTIONS)
def _step_row(
    params,
    grad,
    first,
    second,
    penalty,
    weight_sum,
    solver,
    nesterov,
    learning_rate,
    settings,
):
    """Update one contiguous run of parameters in place.

    All arrays are views of the same run: ``first`` is the velocity (sgd) or the
    first moment (adam), ``second`` the second moment (adam only). With
    g = (grad + penalty * param) / weight_sum:
    sgd:  v = momentum v - lr g;  param += momentum v - lr g (Nesterov) or v;
    adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          param -= lr m / (sqrt(v) + eps), with lr already bias-corrected.
    Returns the squared norm (float64) of the updated run, which the next
    mini-batch needs for its L2 term.
    """
    dtype = params.dtype.type
    alpha = dtype(penalty)
    scale = dtype(weight_sum)
    lr = dtype(learning_rate)
    if solver == SGD:
        momentum = dtype(settings[MOMENTUM])
        for k in range(len(params)):
            g = (grad[k] + alpha * params[k]) / scale
            velocity = momentum * first[k] - lr * g
            first[k] = velocity
            params[k] += momentum * velocity - lr * g if nesterov else velocity
    else:
        beta_1 = dtype(settings[BETA_1])
        beta_2 = dtype(settings[BETA_2])
        # As scikit-learn: 1 - beta is rounded once, in float64, then cast.
        one_minus_beta_1 = dtype(1.0 - settings[BETA_1])
        one_minus_beta_2 = dtype(1.0 - settings[BETA_2])
        epsilon = dtype(settings[EPSILON])
        for k in range(len(params)):
            g = (grad[k] + alpha * params[k]) / scale
            m = beta_1 * first[k] + one_minus_beta_1 * g
            v = beta_2 * second[k] + one_minus_beta_2 * (g * g)
            first[k] = m
            second[k] = v
            params[k] += -lr * m / (math.sqrt(v) + epsilon)
    squares = 0.0
    for k in range(len(params)):
        squares += float(params[k]) * float(params[k])
    return squares


@njit(**JIT_OPTIONS)
def _step_tile(
    params,
    grad,
    state,
    coef_start,
    bias_start,
    n_rows,
    row_stride,
    width,
    weight_sum,
    solver,
    nesterov,
    learning_rate,
    settings,
):
    """Optimizer step on one tile: a band of ``width`` columns of a weight
    matrix (``n_rows`` rows ``row_stride`` apart from ``coef_start``) and the
    matching biases from ``bias_start``. Returns the band's squared weights."""
    first, second = state[0], state[len(state) - 1]
    squares = 0.0
    for row in range(n_rows + 1):
        # The last run is the biases, which get no L2 penalty.
        if row < n_rows:
            start, penalty = coef_start + row * row_stride, settings[ALPHA]
        else:
            start, penalty = bias_start, 0.0
        run_squares = _step_row(
            _span(params, start, width),
            _span(grad, start, width),
            _span(first, start, width),
            _span(second, start, width),
            penalty,
            weight_sum,
            solver,
            nesterov,
            learning_rate,
            settings,
        )
        if row < n_rows:
            squares += run_squares
    return squares


@njit(**JIT_OPTIONS)
def _finish_gradient_tile(
    params, grad, coef_start, bias_start, n_rows, row_stride, width, alpha, weight_sum
):
    """grad = (grad + alpha * W) / weight_sum on one tile; biases get no penalty."""
    dtype = params.dtype.type
    scale = dtype(weight_sum)
    for row in range(n_rows + 1):
        if row < n_rows:
            start, penalty = coef_start + row * row_stride, dtype(alpha)
        else:
            start, penalty = bias_start, dtype(0)
        weights = _span(params, start, width)
        gradient = _span(grad, start, width)
        for k in range(width):
            gradient[k] = (gradient[k] + penalty * weights[k]) / scale


@njit(**JIT_OPTIONS)
def _adam_learning_rate(learning_rate_init, beta_1, beta_2, step):
    """Bias-corrected Adam step size at (1-based) step ``step``, in float64."""
    return learning_rate_init * math.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
