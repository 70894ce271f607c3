"""One compiled kernel per dtype and input format serves every network.

Activations, losses, solvers, sample weights and layer sizes are run-time
values (integer codes and arrays), so none of them may add a compiled
specialisation; only the dtype does, and sparse input, whose CSR arrays are
None for dense input so that dense kernels compile no sparse code.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numba import types

from fastmlp import MLPClassifier, MLPRegressor
from fastmlp._kernels._epoch import _epoch, _loss_and_gradient, _predict

# Position of the flat dense input, and of the CSR values, in each entry
# point's signature.
INPUT_ARGUMENT, CSR_ARGUMENT = 3, 4


def _specialisations(kernel, dtype, sparse):
    wanted = types.float32 if dtype == np.float32 else types.float64
    return [
        s
        for s in kernel.signatures
        if s[INPUT_ARGUMENT].dtype == wanted
        and isinstance(s[CSR_ARGUMENT], types.NoneType) != sparse
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_specialisation_per_dtype(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)).astype(dtype)
    y_class = rng.integers(0, 3, 60)
    y_count = rng.poisson(1.0, 60)
    read_only = X.copy()
    read_only.flags.writeable = False
    models = [
        (MLPClassifier((4,), activation="relu", solver="adam"), X, y_class),
        (MLPClassifier((4, 3), activation="tanh", solver="sgd"), X, y_class > 0),
        (MLPClassifier((6,), activation="logistic", solver="lbfgs"), X, y_class),
        (MLPRegressor(hidden_layer_sizes=(5,), activation="identity"), X, X[:, 0]),
        (MLPRegressor("poisson", (3,), solver="sgd"), X, y_count),
        (MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs"), read_only, X[:, :2]),
        (MLPClassifier((4,), n_jobs=1), sp.csr_matrix(X), y_class),
        (
            MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs"),
            sp.csc_matrix(X),
            X[:, 1],
        ),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model, data, target in models:
            model.set_params(max_iter=3, random_state=0)
            model.fit(data, target, sample_weight=np.linspace(0.5, 1.5, 60))
            model.predict(data)
    for kernel in (_epoch, _loss_and_gradient, _predict):
        for sparse in (False, True):
            assert len(_specialisations(kernel, dtype, sparse)) == 1, (kernel, sparse)
