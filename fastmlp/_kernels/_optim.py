"""Stochastic optimizer steps on the flat parameter buffer.

A step finishes the gradient (adds the L2 penalty, divides by the batch's
weight sum), updates the optimizer state and the parameters, and sums the
squared new weights, all in one pass over a contiguous span of the buffer (a
tile's weights, or a layer's biases), while the tile's gradient is still in
cache.
"""

import math

from numba import njit

from .._config import HELPER_JIT_OPTIONS, INNER_JIT_OPTIONS
from ._views import _span

SGD, ADAM = 0, 1
SOLVERS = {"sgd": SGD, "adam": ADAM}

# Positions in the float64 vector of optimizer settings handed to the kernels.
# 1 - beta is passed in, not computed here: with fast-math reassociation, LLVM
# rewrites beta * v + (1 - beta) * g^2 as g^2 + beta * (v - g^2), which turns
# an overflowing g^2 into inf - inf = NaN, where scikit-learn's moment is inf
# and its step is 0.
LEARNING_RATE, MOMENTUM, BETA_1, BETA_2, EPSILON, ALPHA = range(6)
ONE_MINUS_BETA_1, ONE_MINUS_BETA_2 = 6, 7
N_SETTINGS = 8


@njit(**INNER_JIT_OPTIONS)
def _step_span(
    params,
    grad,
    state,
    start,
    length,
    penalty,
    weight_sum,
    solver,
    nesterov,
    learning_rate,
    settings,
):
    """Update ``params[start:start + length]`` in place, in one pass.

    ``state[0]`` is the velocity (sgd) or the first moment (adam), ``state[1]``
    the second moment (adam only); the same span of each is updated. With
    g = (grad + penalty * param) / weight_sum:
    sgd:  v = momentum v - lr g;  param += momentum v - lr g (Nesterov) or v;
    adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          param -= lr m / (sqrt(v) + eps), with lr already bias-corrected.
    Returns the squared norm (float64) of the updated span, which the next
    mini-batch needs for its L2 term.
    """
    dtype = params.dtype.type
    weights = _span(params, start, length)
    gradient = _span(grad, start, length)
    first = _span(state[0], start, length)
    alpha = dtype(penalty)
    scale = dtype(weight_sum)
    lr = dtype(learning_rate)
    squares = 0.0
    if solver == SGD:
        momentum = dtype(settings[MOMENTUM])
        for k in range(length):
            g = (gradient[k] + alpha * weights[k]) / scale
            velocity = momentum * first[k] - lr * g
            first[k] = velocity
            # The branch is loop-invariant: LLVM hoists it out of the loop.
            if nesterov:
                updated = weights[k] + (momentum * velocity - lr * g)
            else:
                updated = weights[k] + velocity
            weights[k] = updated
            squares += float(updated) * float(updated)
    else:
        second = _span(state[len(state) - 1], start, length)
        beta_1 = dtype(settings[BETA_1])
        beta_2 = dtype(settings[BETA_2])
        # As scikit-learn: 1 - beta is rounded once, in float64, then cast.
        one_minus_beta_1 = dtype(settings[ONE_MINUS_BETA_1])
        one_minus_beta_2 = dtype(settings[ONE_MINUS_BETA_2])
        epsilon = dtype(settings[EPSILON])
        for k in range(length):
            g = (gradient[k] + alpha * weights[k]) / scale
            m = beta_1 * first[k] + one_minus_beta_1 * g
            v = beta_2 * second[k] + one_minus_beta_2 * (g * g)
            first[k] = m
            second[k] = v
            updated = weights[k] - lr * m / (math.sqrt(v) + epsilon)
            weights[k] = updated
            squares += float(updated) * float(updated)
    return squares


@njit(**INNER_JIT_OPTIONS)
def _finish_gradient_span(params, grad, start, length, penalty, weight_sum):
    """grad = (grad + penalty * param) / weight_sum on one span of the buffer."""
    dtype = params.dtype.type
    weights = _span(params, start, length)
    gradient = _span(grad, start, length)
    alpha = dtype(penalty)
    scale = dtype(weight_sum)
    for k in range(length):
        gradient[k] = (gradient[k] + alpha * weights[k]) / scale


@njit(**HELPER_JIT_OPTIONS)
def _adam_learning_rate(learning_rate_init, beta_1, beta_2, step):
    """Bias-corrected Adam step size at (1-based) step ``step``, in float64."""
    return learning_rate_init * math.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
