"""Shared fixtures and the per-dtype tolerances of the test suite."""

import numpy as np
import pytest

# Agreement expected between two computations of the same quantity in one
# dtype that differ only in the order of floating-point operations.
RTOL = {np.float64: 1e-10, np.float32: 2e-4}
ATOL = {np.float64: 1e-12, np.float32: 1e-5}

HIDDEN_ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
OUTPUT_ACTIVATIONS = ["identity", "logistic", "softmax", "exp"]
DTYPES = [np.float64, np.float32]


def make_problem(
    out_activation, n_samples=37, n_features=5, n_outputs=3, dtype=np.float64, seed=0
):
    """Inputs and targets that suit the output activation's loss."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    if out_activation == "softmax":
        y = np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    elif out_activation == "logistic":
        y = (rng.random((n_samples, n_outputs)) < 0.5).astype(float)
    elif out_activation == "exp":
        y = rng.poisson(2.0, (n_samples, n_outputs)).astype(float)
    else:
        y = rng.standard_normal((n_samples, n_outputs))
    return X, y.astype(dtype)


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return request.param
