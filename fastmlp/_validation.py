"""Checks of parameters and input data, built on scikit-learn's validation tools.

Everything here runs before any compiled code, so that bad input ends in a
ValueError that names the problem rather than in a crash or in NaN weights.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, Options, StrOptions

# Allowed values of every constructor parameter, checked by scikit-learn's
# parameter validation at the start of fit and partial_fit. A value outside
# raises InvalidParameterError (a ValueError) naming the parameter and range.
PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [
        Interval(Integral, 1, None, closed="left"),
        Options(Real, {np.inf}),
    ],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    # 0 threads cannot train; negative values count back from the cores.
    "n_jobs": [
        Interval(Integral, None, -1, closed="right"),
        Interval(Integral, 1, None, closed="left"),
        None,
    ],
}

# MLPRegressor's extra parameter (MLPClassifier's loss is fixed).
REGRESSOR_CONSTRAINTS = {"loss": [StrOptions({"squared_error", "poisson"})]}


def hidden_layer_sizes_list(hidden_layer_sizes):
    """The hidden layer widths as a list of positive Python ints.

    Raises TypeError for a width that is not an integer (as scikit-learn's
    MLPs do, from NumPy) and ValueError for one below 1, so that a zero-width
    layer never reaches the kernels.
    """
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    for size in sizes:
        if isinstance(size, (bool, np.bool_)) or not isinstance(
            size, (Integral, np.integer)
        ):
            raise TypeError(
                "hidden_layer_sizes must contain integers (the width of each "
                f"hidden layer), got {hidden_layer_sizes!r}."
            )
        if size < 1:
            raise ValueError(
                "hidden_layer_sizes must contain positive integers (the width of "
                f"each hidden layer), got {hidden_layer_sizes!r}."
            )
    return [int(size) for size in sizes]


def check_poisson_targets(y):
    """Poisson deviance needs y >= 0; a negative target would give NaN losses."""
    if np.any(y < 0):
        raise ValueError(
            "loss='poisson' requires every target to be >= 0; y has negative "
            "values. Use loss='squared_error' for targets of any sign."
        )


def check_fits_dtype(values, dtype, name, remedy):
    """Refuse values that would overflow to infinity when cast to ``dtype``.

    A float32 network reads float64 input (and targets) cast to float32; a
    value beyond float32's range would become inf there, with only a NumPy
    RuntimeWarning, and reach the compiled code.
    """
    dtype = np.dtype(dtype)
    data = values.data if sp.issparse(values) else np.asarray(values)
    if data.size == 0 or np.dtype(data.dtype).itemsize <= dtype.itemsize:
        return
    limit = np.finfo(dtype).max
    if np.max(np.abs(data)) > limit:
        raise ValueError(
            f"{name} has values beyond the range of {dtype.name} (magnitude up "
            f"to {limit:.4g}), which the network computes in; {remedy}"
        )


def check_validation_fraction(early_stopping, validation_fraction):
    """early_stopping needs a validation set, so a fraction of 0 cannot work."""
    if early_stopping and validation_fraction == 0:
        raise ValueError(
            "validation_fraction=0 leaves no validation data for "
            "early_stopping=True; use a fraction in (0, 1), e.g. 0.1, or set "
            "early_stopping=False."
        )
