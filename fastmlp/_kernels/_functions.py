"""Activation functions, their derivatives, and the output layer's loss.

Every function works in place on views of a block of rows, in one float dtype
(float32 or float64). Functions are chosen by small integer codes rather than
passed as callables, so that one compiled kernel per dtype serves every network;
the branch on the code sits outside the element loop.

Loops run over 0-based views (``z[row, j]``, never ``buffer[start + i]``): Numba
must guard a possibly negative index for wraparound, and only an index that
LLVM can prove non-negative lets it drop the guard and vectorise the loop.

The kernels use ``larger`` and ``smaller`` below rather than the builtin
``max`` and ``min``, and constants rather than ``np.finfo``: each of those
builtins compiles a function of its own for every argument type, 10-60 ms
apiece on a cold cache.
"""

import math
import operator

import numpy as np
from numba import njit, types
from numba.core.typing import signature
from numba.extending import intrinsic

from .._config import HELPER_JIT_OPTIONS, INNER_JIT_OPTIONS

# Hidden-layer activations.
IDENTITY, LOGISTIC, TANH, RELU = 0, 1, 2, 3
HIDDEN_ACTIVATIONS = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
}

# Output activations, each paired with the loss whose gradient with respect to
# the pre-activation is (prediction - target): identity with half squared
# error, logistic with binary log-loss, softmax with multinomial log-loss, and
# exp with half Poisson deviance.
OUT_IDENTITY, OUT_LOGISTIC, OUT_SOFTMAX, OUT_EXP = 0, 1, 2, 3
OUTPUT_ACTIVATIONS = {
    "identity": OUT_IDENTITY,
    "logistic": OUT_LOGISTIC,
    "softmax": OUT_SOFTMAX,
    "exp": OUT_EXP,
}


# Machine epsilon of each dtype, which clips probabilities in the log-losses.
_EPSILON_32 = float(np.finfo(np.float32).eps)
_EPSILON_64 = float(np.finfo(np.float64).eps)


def _select(typingctx, a, b, comparison):
    """Typing and code of ``b if comparison(b, a) else a`` for two numbers."""
    if not (isinstance(a, types.Number) and isinstance(b, types.Number)):
        return None
    common = typingctx.unify_types(a, b)
    if common is None:
        return None

    def codegen(context, builder, sig, args):
        first, second = (
            context.cast(builder, value, value_type, common)
            for value, value_type in zip(args, sig.args)
        )
        compare = context.get_function(
            comparison, signature(types.boolean, common, common)
        )
        chosen = compare(builder, (second, first))
        return builder.select(chosen, second, first)

    return common(a, b), codegen


@intrinsic
def larger(typingctx, a, b):
    """max(a, b) as Python computes it: b if b > a, else a (so NaN in a stays)."""
    return _select(typingctx, a, b, operator.gt)


@intrinsic
def smaller(typingctx, a, b):
    """min(a, b) as Python computes it: b if b < a, else a (so NaN in a stays)."""
    return _select(typingctx, a, b, operator.lt)


@njit(**INNER_JIT_OPTIONS)
def _add_bias_and_activate(z, bias, code):
    """z[row, j] = f(z[row, j] + bias[j]) in place, f chosen by ``code``."""
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    n_rows, width = z.shape
    for row in range(n_rows):
        if code == IDENTITY:
            for j in range(width):
                z[row, j] += bias[j]
        elif code == LOGISTIC:
            for j in range(width):
                z[row, j] = one / (one + math.exp(-(z[row, j] + bias[j])))
        elif code == TANH:
            for j in range(width):
                z[row, j] = math.tanh(z[row, j] + bias[j])
        else:
            for j in range(width):
                z[row, j] = larger(z[row, j] + bias[j], zero)


@njit(**HELPER_JIT_OPTIONS)
def _multiply_by_derivative(delta, activation, code):
    """delta *= f'(z) in place, with f'(z) written in terms of a = f(z).

    logistic: a (1 - a); tanh: 1 - a^2; relu: 0 where a == 0, else 1.
    Both arguments are flat views of the same block.
    """
    one = delta.dtype.type(1)
    zero = delta.dtype.type(0)
    if code == LOGISTIC:
        for i in range(len(delta)):
            delta[i] = delta[i] * activation[i] * (one - activation[i])
    elif code == TANH:
        for i in range(len(delta)):
            delta[i] *= one - activation[i] * activation[i]
    elif code == RELU:
        for i in range(len(delta)):
            delta[i] = zero if activation[i] == zero else delta[i]


@njit(**HELPER_JIT_OPTIONS)
def _xlogy(x, y):
    """x * log(y), defined as 0 where x == 0 (as scipy.special.xlogy)."""
    if x == 0.0:
        return 0.0
    return x * math.log(y)


@njit(**HELPER_JIT_OPTIONS)
def _activate_output_row(z, bias, code):
    """Add the bias and apply the output activation to one row, in place."""
    one = z.dtype.type(1)
    for j in range(len(z)):
        z[j] += bias[j]
    if code == OUT_LOGISTIC:
        for j in range(len(z)):
            z[j] = one / (one + math.exp(-z[j]))
    elif code == OUT_EXP:
        for j in range(len(z)):
            z[j] = math.exp(z[j])
    elif code == OUT_SOFTMAX:
        # Shift by the row maximum so that exp cannot overflow.
        largest = z[0]
        for j in range(1, len(z)):
            largest = larger(largest, z[j])
        total = z.dtype.type(0)
        for j in range(len(z)):
            z[j] = math.exp(z[j] - largest)
            total += z[j]
        for j in range(len(z)):
            z[j] /= total


@njit(**HELPER_JIT_OPTIONS)
def _row_loss(prediction, target, code, eps):
    """Unweighted loss of one row, in float64, as scikit-learn defines it.

    Squared error: sum_j (y - p)^2 / 2 (the caller divides by the outputs).
    Log-losses: probabilities clipped to [eps, 1 - eps], eps being the
    machine epsilon of the dtype.
    Poisson: the half deviance y log(y / p) - y + p, summed over outputs.
    Inlined into its caller: a call per row cost more than the loss itself.
    """
    loss = 0.0
    for j in range(len(prediction)):
        p = float(prediction[j])
        y = float(target[j])
        if code == OUT_IDENTITY:
            loss += 0.5 * (y - p) * (y - p)
        elif code == OUT_LOGISTIC:
            p = smaller(larger(p, eps), 1.0 - eps)
            loss -= _xlogy(y, p) + _xlogy(1.0 - y, 1.0 - p)
        elif code == OUT_SOFTMAX:
            loss -= _xlogy(y, smaller(larger(p, eps), 1.0 - eps))
        else:
            loss += _xlogy(y, y / p) - y + p
    return loss


@njit(**HELPER_JIT_OPTIONS)
def _output_layer(z, delta, bias, code, target, sample_rows, weights, delta_scale):
    """Output activation, weighted loss and output delta of a block of rows.

    ``z`` and ``delta`` are (n_rows, n_outputs) views; ``z`` holds X @ W on
    entry and the predictions on exit. Row ``r`` came from data-set row
    ``sample_rows[r]``, which picks its target and weight. Writes
    delta = (prediction - target) * weight * delta_scale, the gradient of the
    loss with respect to the output pre-activation, and returns the sum of
    weight * row loss in float64.
    """
    scale = delta.dtype.type(delta_scale)
    eps = _EPSILON_64 if z.itemsize == 8 else _EPSILON_32
    weighted_loss = 0.0
    for row in range(z.shape[0]):
        source = sample_rows[row]
        prediction = z[row]
        truth = target[source]
        _activate_output_row(prediction, bias, code)
        weight = weights[source]
        weighted_loss += weight * _row_loss(prediction, truth, code, eps)
        factor = weight * scale
        out = delta[row]
        for j in range(len(prediction)):
            out[j] = (prediction[j] - truth[j]) * factor
    return weighted_loss
