"""Reliability: bad input, divergence, threads, processes and persistence.

Whatever the input, fastmlp either trains and predicts with finite numbers or
raises a ValueError that names the problem, before any compiled code runs. A
fitted model is never replaced by one full of NaN, and pickles round-trip
exactly. Tests that could abort or hang the interpreter (threads, a read-only
installation) run in a child process with a timeout.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import (
    ConvergenceWarning,
    InconsistentVersionWarning,
    NotFittedError,
)
from threadpoolctl import threadpool_info

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor
from fastmlp import _multilayer_perceptron as mlp_module
from fastmlp._config import FASTMATH
from fastmlp._kernels import _network, _team
from fastmlp._kernels._epoch import _epoch, _loss_and_gradient, _predict
from fastmlp._threads import single_threaded_blas

PACKAGE_DIR = Path(fastmlp.__file__).parent
CHILD_TIMEOUT = 240

X_REG, Y_REG = make_regression(60, 4, noise=1.0, random_state=0)
X_CLF, Y_CLF = make_classification(
    60, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
)


def small(estimator_class, **params):
    """A small, quick estimator with a fixed seed."""
    defaults = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    return estimator_class(**{**defaults, **params})


def data_for(estimator_class):
    if estimator_class is MLPClassifier:
        return X_CLF.copy(), Y_CLF.copy()
    return X_REG.copy(), Y_REG.copy()


def _refuse_kernels(*args, **kwargs):
    raise AssertionError("compiled code ran on invalid input")


@pytest.fixture
def no_compiled_code(monkeypatch):
    """Make any call into the compiled kernels fail the test."""
    monkeypatch.setattr(_network, "run_team", _refuse_kernels)


@pytest.fixture(autouse=True)
def quiet_convergence():
    # The estimators are stopped after a few epochs on purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def run_child(code, timeout=CHILD_TIMEOUT, prefix=(), **kwargs):
    """Run ``code`` in a fresh interpreter; fail (not crash) on abort or hang.

    ``prefix`` is a command line the interpreter is run under. Returns the
    JSON value printed on the child's last line of stdout.
    """
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"child process hung for more than {timeout} s")
    assert result.returncode == 0, (
        f"child process failed with code {result.returncode}:\n{result.stderr}"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------
# 1. Bad input: a clear ValueError before any compiled code runs


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_non_finite_X_at_fit(estimator_class, method, value, no_compiled_code):
    X, y = data_for(estimator_class)
    X[3, 1] = value
    kwargs = {}
    if method == "partial_fit" and estimator_class is MLPClassifier:
        kwargs["classes"] = np.unique(y)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        getattr(small(estimator_class), method)(X, y, **kwargs)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize(
    "estimator_class, method",
    [
        (MLPClassifier, "predict"),
        (MLPClassifier, "predict_proba"),
        (MLPClassifier, "predict_log_proba"),
        (MLPRegressor, "predict"),
    ],
)
def test_non_finite_X_at_predict(estimator_class, method, value, monkeypatch):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class).fit(X, y)
    X[0, 0] = value
    monkeypatch.setattr(_network, "run_team", _refuse_kernels)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        getattr(estimator, method)(X)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_regression_target(value, no_compiled_code):
    y = Y_REG.copy()
    y[5] = value
    with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
        small(MLPRegressor).fit(X_REG, y)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda X, y: (X[:0], y[:0]), "0 sample"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
        (lambda X, y: (X[:, :0], y), "0 feature"),
    ],
    ids=["empty", "length-mismatch", "no-features"],
)
def test_malformed_data(estimator_class, make_input, match, no_compiled_code):
    X, y = make_input(*data_for(estimator_class))
    with pytest.raises(ValueError, match=match):
        small(estimator_class).fit(X, y)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (np.ones(7), r"sample_weight.shape == \(7,\), expected \(60,\)"),
        (-np.ones(60), "Negative values in data passed to `sample_weight`"),
        (np.full(60, np.nan), "sample_weight contains NaN"),
        (np.zeros(60), "at least one non-zero"),
    ],
    ids=["wrong-length", "negative", "nan", "all-zero"],
)
def test_bad_sample_weight(estimator_class, sample_weight, match, no_compiled_code):
    X, y = data_for(estimator_class)
    with pytest.raises(ValueError, match=match):
        small(estimator_class).fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_mini_batch_of_zero_weight_is_named(estimator_class, solver, monkeypatch):
    # Its loss would divide by a zero weight sum; the check runs before the
    # epoch's compiled call.
    X, y = data_for(estimator_class)
    sample_weight = np.ones(len(X))
    sample_weight[20:30] = 0.0
    estimator = small(estimator_class, solver=solver, batch_size=10, shuffle=False)
    calls = []
    epoch = _network.Network.epoch
    monkeypatch.setattr(
        _network.Network, "epoch", lambda *a, **k: calls.append(1) or epoch(*a, **k)
    )
    with pytest.raises(ValueError, match="mini-batch 3 \\(samples 20 to 29"):
        estimator.fit(X, y, sample_weight=sample_weight)
    assert calls == []
    # One zero-weight sample per batch is fine.
    sample_weight = np.ones(len(X))
    sample_weight[::10] = 0.0
    estimator.fit(X, y, sample_weight=sample_weight)
    assert len(calls) == estimator.n_iter_


@pytest.mark.parametrize("method", ["predict", "score"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_wrong_number_of_features_at_predict(estimator_class, method, monkeypatch):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class).fit(X, y)
    monkeypatch.setattr(_network, "run_team", _refuse_kernels)
    args = (X[:, :3],) if method == "predict" else (X[:, :3], y)
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 4"):
        getattr(estimator, method)(*args)


PREDICTION_INPUTS = {
    "float64": lambda X: X,
    "float32": lambda X: X.astype(np.float32),
    "fortran": np.asfortranarray,
    "strided": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "one-row": lambda X: X[:1],
    "int": lambda X: X.astype(np.int64),
    "big-endian": lambda X: X.astype(">f8"),
    "list": lambda X: X.tolist(),
    "1-d": lambda X: X[0],
    "3-d": lambda X: X[None],
    "no-rows": lambda X: X[:0],
    "nan": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
    "sum-overflows": lambda X: np.full_like(X, np.finfo(np.float64).max),
    "csr": sp.csr_matrix,
}


@pytest.mark.parametrize(
    "make_input", PREDICTION_INPUTS.values(), ids=PREDICTION_INPUTS
)
def test_prediction_validation_shortcut_agrees_with_validate_data(make_input):
    """Prediction skips scikit-learn's validate_data only for input that it
    would return unchanged, without error or warning."""
    X, y = data_for(MLPRegressor)
    estimator = small(MLPRegressor).fit(X, y)
    X_new = make_input(X)
    if not estimator._passes_validation_unchanged(X_new):
        return
    assert X_new.dtype == np.float64 or X_new.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validated = mlp_module.validate_data(
            estimator, X_new, dtype=(np.float64, np.float32), reset=False
        )
    assert validated is X_new


def test_prediction_validation_shortcut_is_taken_for_plain_arrays():
    X, y = data_for(MLPRegressor)
    estimator = small(MLPRegressor).fit(X, y)
    assert estimator._passes_validation_unchanged(X)
    assert estimator._passes_validation_unchanged(X[:1].astype(np.float32))
    # A finite array whose sum overflows goes the slow way and is still
    # checked: outputs that overflow raise instead of coming back as inf.
    huge = np.full_like(X[:2], np.finfo(np.float64).max)
    assert not estimator._passes_validation_unchanged(huge)
    with pytest.raises(ValueError, match="outputs overflowed .* inputs .* 1.8e"):
        estimator.predict(huge)
    assert estimator.predict(huge * 1e-300).shape == (2,)


def test_feature_name_warning_survives_the_validation_shortcut():
    pd = pytest.importorskip("pandas")
    X, y = data_for(MLPRegressor)
    estimator = small(MLPRegressor).fit(pd.DataFrame(X, columns=list("abcd")), y)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        estimator.predict(X)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_poisson_rejects_negative_targets(method, no_compiled_code):
    y = np.abs(Y_REG)
    y[7] = -0.5
    with pytest.raises(ValueError, match="loss='poisson' requires .* >= 0"):
        getattr(small(MLPRegressor, loss="poisson"), method)(X_REG, y)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    "param, value, match",
    [
        ("hidden_layer_sizes", (0,), "hidden_layer_sizes must contain positive"),
        ("hidden_layer_sizes", (4, -1), "hidden_layer_sizes must contain positive"),
        ("alpha", -1.0, r"'alpha' parameter .* range \[0.0, inf\)"),
        ("learning_rate_init", 0.0, r"'learning_rate_init' .* range \(0.0, inf\)"),
        ("momentum", 1.5, r"'momentum' parameter .* range \[0.0, 1.0\]"),
        ("momentum", -0.1, r"'momentum' parameter .* range \[0.0, 1.0\]"),
        ("beta_1", 1.0, r"'beta_1' parameter .* range \[0.0, 1.0\)"),
        ("beta_2", 1.0, r"'beta_2' parameter .* range \[0.0, 1.0\)"),
        ("epsilon", 0.0, r"'epsilon' parameter .* range \(0.0, inf\)"),
        ("validation_fraction", 1.0, r"'validation_fraction' .* \[0.0, 1.0\)"),
        ("n_iter_no_change", 0, r"'n_iter_no_change' .* range \[1, inf\)"),
        ("max_iter", 0, r"'max_iter' parameter .* range \[1, inf\)"),
        ("max_fun", 0, r"'max_fun' parameter .* range \[1, inf\)"),
        ("batch_size", 0, r"'batch_size' parameter .* range \[1, inf\)"),
        ("tol", -1e-3, r"'tol' parameter .* range \[0.0, inf\)"),
        ("power_t", -0.5, r"'power_t' parameter .* range \[0.0, inf\)"),
        ("activation", "softplus", r"'activation' parameter .* among"),
        ("solver", "rmsprop", r"'solver' parameter .* among"),
        ("learning_rate", "cosine", r"'learning_rate' parameter .* among"),
        ("n_jobs", 0, r"'n_jobs' parameter .* range \(-inf, -1\], an int in"),
        ("n_jobs", 1.5, r"'n_jobs' parameter .* range \[1, inf\) or None"),
        ("shuffle", "yes", r"'shuffle' parameter .* 'bool'"),
    ],
)
def test_parameter_out_of_range(estimator_class, param, value, match, no_compiled_code):
    X, y = data_for(estimator_class)
    with pytest.raises(ValueError, match=match):
        small(estimator_class, **{param: value}).fit(X, y)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("sizes", [(2.5,), (4.0,), (True,), [[5]], ("8",)])
def test_hidden_layer_sizes_of_another_type(estimator_class, sizes, no_compiled_code):
    # scikit-learn raises TypeError here too (from NumPy, with NumPy's text).
    X, y = data_for(estimator_class)
    with pytest.raises(TypeError, match="hidden_layer_sizes must contain integers"):
        small(estimator_class, hidden_layer_sizes=sizes).fit(X, y)


def test_unknown_regression_loss(no_compiled_code):
    with pytest.raises(ValueError, match=r"'loss' parameter .* among"):
        small(MLPRegressor, loss="huber").fit(X_REG, Y_REG)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("call", ["predict", "partial_fit", "warm_start"])
def test_float64_input_beyond_a_float32_model(call, monkeypatch):
    """Values a float32 network cannot hold are refused, not cast to inf."""
    X32 = X_REG.astype(np.float32)
    estimator = small(MLPRegressor).fit(X32, Y_REG)
    monkeypatch.setattr(_network, "run_team", _refuse_kernels)
    huge = X_REG * 1e300
    with pytest.raises(ValueError, match="X has values beyond the range of float32"):
        if call == "predict":
            estimator.predict(huge)
        elif call == "partial_fit":
            estimator.partial_fit(huge, Y_REG)
        else:
            estimator.set_params(warm_start=True).fit(huge, Y_REG)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_targets_beyond_float32_range(no_compiled_code):
    with pytest.raises(ValueError, match="y has values beyond the range of float32"):
        small(MLPRegressor).fit(X_REG.astype(np.float32), Y_REG * 1e39)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_early_stopping_without_validation_data(estimator_class, no_compiled_code):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class, early_stopping=True, validation_fraction=0.0)
    with pytest.raises(ValueError, match="validation_fraction=0 leaves no valid"):
        estimator.fit(X, y)


@pytest.mark.parametrize("method", ["predict", "score"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_unfitted_estimator(estimator_class, method, no_compiled_code):
    X, y = data_for(estimator_class)
    with pytest.raises(NotFittedError):
        getattr(small(estimator_class), method)(
            *((X,) if method == "predict" else (X, y))
        )


def test_first_partial_fit_of_classifier_needs_classes(no_compiled_code):
    with pytest.raises(ValueError, match="classes must be passed"):
        small(MLPClassifier).partial_fit(X_CLF, Y_CLF)


# Extreme but valid input: finite numbers and not a single RuntimeWarning.


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_predict_on_huge_values(estimator_class, activation):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class, activation=activation).fit(X, y)
    huge = X * 1e150
    if estimator_class is MLPClassifier:
        proba = estimator.predict_proba(huge)
        assert np.isfinite(proba).all()
        assert_allclose(proba.sum(axis=1), 1.0)
    else:
        assert np.isfinite(estimator.predict(huge)).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_fit_on_huge_values(estimator_class, solver):
    """Either a finite model or the divergence error, never NaN weights."""
    X, y = data_for(estimator_class)
    estimator = small(estimator_class, solver=solver)
    try:
        estimator.fit(X * 1e150, y)
    except ValueError as error:
        assert "scale" in str(error)
    assert all(np.isfinite(coef).all() for coef in estimator.coefs_)
    assert all(np.isfinite(bias).all() for bias in estimator.intercepts_)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize(
    "case", ["constant-features", "single-sample", "large-batch", "zero-features"]
)
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_degenerate_but_valid_input_trains(estimator_class, case, solver):
    X, y = data_for(estimator_class)
    params = {"solver": solver}
    if case == "constant-features":
        X = np.full_like(X, 3.0)
    elif case == "single-sample":
        # A classifier needs two classes, hence two samples.
        first = [0, int(np.flatnonzero(y != y[0])[0])]
        X, y = (
            (X[first], y[first])
            if estimator_class is MLPClassifier
            else (
                X[:1],
                y[:1],
            )
        )
    elif case == "large-batch":
        params["batch_size"] = 1000
    else:
        X = np.zeros_like(X)
    estimator = small(estimator_class, **params)
    with warnings.catch_warnings():
        # The clipped batch size is announced as in scikit-learn.
        warnings.filterwarnings("ignore", message="Got `batch_size`")
        estimator.fit(X, y)
    assert all(np.isfinite(coef).all() for coef in estimator.coefs_)
    prediction = (
        estimator.predict_proba(X)
        if estimator_class is MLPClassifier
        else estimator.predict(X)
    )
    assert np.isfinite(prediction).all()


# Any array scikit-learn accepts; inputs are never modified.


def _read_only(X):
    X = X.copy()
    X.flags.writeable = False
    return X


def _read_only_memmap(X, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def _sparse(kind, index_dtype):
    def convert(X, tmp_path):
        matrix = sp.csr_matrix(X) if kind == "csr" else sp.csc_matrix(X)
        matrix.indices = matrix.indices.astype(index_dtype)
        matrix.indptr = matrix.indptr.astype(index_dtype)
        return matrix

    return convert


EXACT_CONVERSIONS = {
    "list": lambda X, tmp_path: X.tolist(),
    "fortran": lambda X, tmp_path: np.asfortranarray(X),
    "strided": lambda X, tmp_path: np.repeat(X, 2, axis=1)[:, ::2],
    "int": lambda X, tmp_path: np.round(X * 8).astype(np.int64),
    "float16": lambda X, tmp_path: X.astype(np.float16),
    "read-only": lambda X, tmp_path: _read_only(X),
    "read-only-memmap": _read_only_memmap,
}
SPARSE_CONVERSIONS = {
    f"{kind}-{np.dtype(index).name}": _sparse(kind, index)
    for kind in ("csr", "csc")
    for index in (np.int32, np.int64)
}


def _canonical(X):
    """The float64 C array scikit-learn's validation makes of a converted X."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return np.ascontiguousarray(X, dtype=np.float64)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("convert", {**EXACT_CONVERSIONS, **SPARSE_CONVERSIONS})
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_accepted_input_types(estimator_class, convert, solver, tmp_path):
    X, y = data_for(estimator_class)
    conversion = {**EXACT_CONVERSIONS, **SPARSE_CONVERSIONS}[convert]
    X_in = conversion(X, tmp_path)
    y_in = _read_only(y) if convert.startswith("read-only") else y
    X_before = _canonical(X_in).copy()
    y_before = np.array(y_in, copy=True)

    estimator = small(estimator_class, solver=solver).fit(X_in, y_in)
    reference = small(estimator_class, solver=solver).fit(_canonical(X_in), y)
    if solver == "adam":
        estimator.partial_fit(X_in, y_in)
        reference.partial_fit(_canonical(X_in), y)
    prediction = estimator.predict(X_in)

    # Same model as from the plain float64 array: bit-identical when the
    # conversion is exact and dense, to rounding for the sparse kernels.
    if convert in EXACT_CONVERSIONS:
        assert_array_equal(prediction, reference.predict(_canonical(X_in)))
    else:
        assert_allclose(
            estimator.coefs_[0].ravel(), reference.coefs_[0].ravel(), rtol=1e-10
        )
    assert_array_equal(_canonical(X_in), X_before)
    assert_array_equal(y_in, y_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_input_compiles_no_new_kernel(dtype, tmp_path):
    """Read-only arrays reuse the writeable specialisations of every kernel."""
    X, y = X_REG.astype(dtype), Y_REG.astype(dtype)
    for solver in ("adam", "lbfgs"):
        estimator = small(MLPRegressor, solver=solver, max_iter=2).fit(X, y)
        estimator.predict(X)
    kernels = (_epoch, _loss_and_gradient, _predict)
    compiled = [len(kernel.signatures) for kernel in kernels]

    frozen_X = _read_only(X)
    frozen_y = _read_only(y)
    memmap_X = _read_only_memmap(X, tmp_path)
    for X_in in (frozen_X, memmap_X):
        weights = _read_only(np.ones(len(y)))
        small(MLPRegressor, max_iter=2).fit(X_in, frozen_y, weights).predict(X_in)
        small(MLPRegressor, max_iter=2).partial_fit(X_in, frozen_y)
        small(MLPRegressor, solver="lbfgs", max_iter=2).fit(X_in, frozen_y, weights)
    assert [len(kernel.signatures) for kernel in kernels] == compiled


def test_read_only_input_is_converted_once_per_fit(monkeypatch):
    """The writeable copy of a read-only X is made once, not once per epoch."""
    X = _read_only(X_REG)
    copies = []
    original = _network._writeable

    def counting(array, dtype=None):
        result = original(array, dtype)
        if array is X and result is not X:
            copies.append(result)
        return result

    monkeypatch.setattr(_network, "_writeable", counting)
    small(MLPRegressor, max_iter=7).fit(X, Y_REG)
    assert len(copies) == 1


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.coefs_.__setitem__(0, np.ones((5, 6))), r"coefs_\[0\] has shape"),
        (lambda m: m.coefs_.__setitem__(0, np.ones((3_000_000, 6))), "coefs_.0. has"),
        (lambda m: m.intercepts_.__setitem__(0, np.ones(7)), r"intercepts_\[0\]"),
        (
            lambda m: (
                m.coefs_.__setitem__(1, np.ones((6, 4))),
                m.intercepts_.__setitem__(1, np.ones(4)),
            ),
            "the last layer has 4",
        ),
        (lambda m: m.coefs_.pop(), "1 coefs_ and 2 intercepts_"),
        (
            lambda m: m.coefs_.__setitem__(0, m.coefs_[0].astype(np.float16)),
            "layer 0 is not a float32 or float64",
        ),
        (
            lambda m: m.coefs_.__setitem__(0, m.coefs_[0].tolist()),
            "layer 0 is not a float32 or float64 ndarray",
        ),
    ],
)
def test_assigned_weights_that_do_not_fit_the_network_are_named(
    change, match, no_compiled_code_after_fit
):
    # Training goes on from assigned weights too (partial_fit, warm start),
    # and copying them into the kernels' buffer would broadcast or skip
    # arrays that do not fit: the same check comes first.
    X, y = data_for(MLPClassifier)
    model = no_compiled_code_after_fit(small(MLPClassifier).fit(X, y))
    change(model)
    for method in ("predict", "predict_proba"):
        with pytest.raises(ValueError, match=match):
            getattr(model, method)(X)
    with pytest.raises(ValueError, match=match):
        model.partial_fit(X, y)
    model.set_params(warm_start=True)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)


def test_partial_fit_after_assigning_another_networks_weights():
    # The optimizer state of the old network, read without bounds checks by
    # the kernels, crashed the process; the new weights need a state of their
    # own. Run in a child, which a crash would kill.
    code = """
        import json, warnings
        import numpy as np
        from sklearn.datasets import load_digits
        from fastmlp import MLPClassifier
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        rng = np.random.default_rng(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3,
                                  random_state=0).fit(X, y)
        model.coefs_ = [rng.standard_normal((64, 300)) * 0.05,
                        rng.standard_normal((300, 10)) * 0.05]
        model.intercepts_ = [np.zeros(300), np.zeros(10)]
        model.set_params(hidden_layer_sizes=(300,))
        for _ in range(3):
            model.partial_fit(X, y)
        print(json.dumps([model._optimizer.state.shape[1], model.score(X, y) > 0.5]))
        """
    assert run_child(code, timeout=120) == [64 * 300 + 300 * 10 + 300 + 10, True]


@pytest.fixture
def no_compiled_code_after_fit(monkeypatch):
    """Returns its argument, and from then on any compiled call fails."""

    def refuse_from_now_on(value):
        monkeypatch.setattr(_network, "run_team", _refuse_kernels)
        return value

    return refuse_from_now_on


# ----------------------------------------------------------------------------
# 2. Divergence: an error naming the cause, and the weights stay finite


def _all_finite(estimator):
    return all(np.isfinite(a).all() for a in estimator.coefs_ + estimator.intercepts_)


DIVERGING = {
    "sgd": dict(solver="sgd", learning_rate_init=10.0),
    "adam": dict(solver="adam", learning_rate_init=1e200),
}


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_divergence_raises_naming_the_cause(solver):
    estimator = small(MLPRegressor, max_iter=50, **DIVERGING[solver])
    with pytest.raises(ValueError, match="diverged") as error:
        estimator.fit(X_REG * 100, Y_REG)
    assert "learning_rate_init" in str(error.value)
    assert "StandardScaler" in str(error.value)
    assert _all_finite(estimator)
    assert np.isfinite(estimator.loss_curve_).all()
    assert len(estimator.loss_curve_) == estimator.n_iter_


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("where", ["X", "sparse X", "y"])
def test_non_finite_data_let_through_by_assume_finite_are_named(solver, where):
    # With assume_finite=True, scikit-learn skips the check for NaN input;
    # the divergence that follows must name the data, not the learning rate.
    X, y = X_REG.copy(), Y_REG.copy()
    (y if where == "y" else X)[3, ...] = np.nan
    if where == "sparse X":
        X = sp.csr_matrix(X)
    estimator = small(MLPRegressor, solver=solver, max_iter=5)
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match="hold NaN or infinite values") as error:
            estimator.fit(X, y)
    assert "learning_rate_init" not in str(error.value)
    assert _all_finite(estimator)


@pytest.mark.parametrize("scale, named", [(1e200, True), (1.0, False)])
def test_divergence_names_huge_regression_targets(scale, named):
    estimator = small(MLPRegressor, max_iter=50, **DIVERGING["adam"])
    with pytest.raises(ValueError, match="diverged") as error:
        estimator.fit(X_REG, Y_REG * scale)
    assert ("scale y too" in str(error.value)) == named
    assert "learning_rate_init" in str(error.value)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_overflowing_l2_penalty_names_alpha(estimator_class, solver):
    # alpha / 2 * ||W||^2 beyond float64 makes the loss infinite whatever the
    # learning rate and the data: the error must say so, not blame those.
    X, y = data_for(estimator_class)
    estimator = small(estimator_class, solver=solver, alpha=1e308)
    with pytest.raises(ValueError, match="L2 penalty overflows: alpha=1e\\+308"):
        estimator.fit(X, y)
    assert _all_finite(estimator)
    # A large alpha whose penalty fits in float64 trains.
    assert _all_finite(small(estimator_class, solver=solver, alpha=10.0).fit(X, y))


@pytest.mark.parametrize("scale, alpha", [(1e160, 1e-4), (1.0, 1e300)])
def test_adam_with_overflowing_squared_gradients_trains_as_scikit_learn(scale, alpha):
    # Gradients past about 1e154 overflow Adam's second moment to inf, which
    # makes scikit-learn's step 0. A fast-math rewrite of the moment update
    # once made it inf - inf = NaN here, and the fit raised.
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = data_for(MLPClassifier)
    params = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X * scale, y)
        theirs = SkMLPClassifier(**params).fit(X * scale, y)
    assert _all_finite(ours)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    for mine, reference in zip(ours.coefs_, theirs.coefs_):
        assert_allclose(mine, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_X_let_through_at_predict_is_named(estimator_class, value):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class).fit(X, y)
    X = X.copy()
    X[0, 0] = value
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match="X holds NaN or infinite values"):
            estimator.predict(X)


def test_unknown_solver_with_parameter_validation_skipped_raises(no_compiled_code):
    with sklearn.config_context(skip_parameter_validation=True):
        with pytest.raises(ValueError, match="Unknown solver 'foo'"):
            small(MLPRegressor, solver="foo").fit(X_REG, Y_REG)


def test_weights_that_overflow_after_the_last_epoch_fail_prediction():
    # Found by the property tests: two epochs of a far too large step leave
    # finite weights (about 1e12) whose products overflow float32 on the
    # training row itself. Each epoch's loss is measured before its update,
    # so the fit cannot see it; predicting must not return -inf.
    X = np.array([[0.0, 0.0, 0.0, 26.0, 0.0, 0.0]], dtype=np.float32)
    estimator = MLPRegressor(
        hidden_layer_sizes=(4, 3),
        activation="identity",
        solver="sgd",
        learning_rate_init=0.0625,
        max_iter=2,
        shuffle=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, [0.0])
    assert _all_finite(estimator)
    with pytest.raises(ValueError, match="outputs overflowed float32") as error:
        estimator.predict(X)
    assert "learning_rate_init" in str(error.value)


@pytest.mark.parametrize("estimator_class", [MLPRegressor, MLPClassifier])
def test_predictions_that_overflow_raise_and_score_nan(estimator_class):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class).fit(X.astype(np.float32), y)
    for coef in estimator.coefs_:
        coef[...] = np.float32(1e30)
    methods = ["predict"]
    if estimator_class is MLPClassifier:
        methods += ["predict_proba", "predict_log_proba"]
    for method in methods + ["score"]:
        with pytest.raises(ValueError, match="outputs overflowed float32"):
            getattr(estimator, method)(*((X, y) if method == "score" else (X,)))
    if estimator_class is MLPRegressor:
        # Early stopping's validation score (R^2) is NaN, never the best.
        assert np.isnan(estimator._score(X, y))


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_non_finite_weights_set_from_outside_are_named(estimator_class):
    X, y = data_for(estimator_class)
    estimator = small(estimator_class).fit(X, y)
    estimator.coefs_[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="contain NaN or infinity"):
        estimator.predict(X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_divergence_in_partial_fit_keeps_the_previous_model(solver):
    estimator = small(MLPRegressor, **DIVERGING[solver])
    for _ in range(30):
        coefs = [coef.copy() for coef in estimator.coefs_] if _ else None
        t_before = estimator.t_ if _ else 0
        try:
            estimator.partial_fit(X_REG * 100, Y_REG)
        except ValueError as error:
            assert "diverged" in str(error)
            break
    else:
        pytest.fail("training never diverged")
    # The model from before the failing call is intact and still usable.
    for coef, before in zip(estimator.coefs_, coefs):
        assert_array_equal(coef, before)
    assert estimator.t_ == t_before
    assert _all_finite(estimator)
    with pytest.raises(ValueError, match="diverged"):
        estimator.partial_fit(X_REG * 100, Y_REG)


def test_divergence_with_early_stopping_keeps_best_weights(monkeypatch):
    validation = []
    score = MLPRegressor._score

    def recording_score(self, X, y, sample_weight=None):
        validation.append((X, y))
        return score(self, X, y, sample_weight)

    monkeypatch.setattr(MLPRegressor, "_score", recording_score)
    estimator = small(
        MLPRegressor,
        solver="sgd",
        learning_rate_init=0.05,
        max_iter=100,
        early_stopping=True,
        n_iter_no_change=100,
    )
    with pytest.warns(ConvergenceWarning, match="diverged .* best validation"):
        estimator.fit(X_REG * 3, Y_REG)
    monkeypatch.undo()
    assert _all_finite(estimator)
    # The kept weights are those that scored best on the validation set.
    X_val, y_val = validation[0]
    assert estimator.score(X_val, y_val) == estimator.best_validation_score_
    assert estimator.best_validation_score_ == max(estimator.validation_scores_)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_non_finite_inside_kernel_is_seen(estimator_class, activation, bad):
    """A NaN made inside the compiled epoch (fast-math on) stops training.

    One weight of the first layer is set non-finite: inside the kernel it meets
    finite inputs of both signs (inf - inf = NaN) and zeros (0 * inf = NaN).
    """
    X, y = data_for(estimator_class)
    estimator = small(estimator_class, activation=activation, warm_start=True)
    estimator.fit(X, y)
    estimator.coefs_[0][0, 0] = bad
    with pytest.raises(ValueError, match="diverged"):
        estimator.partial_fit(X, y)


def test_fast_math_keeps_nan_and_inf():
    """The kernels' fast-math flags must not let LLVM assume finite values.

    Divergence is detected in Python on the kernels' outputs (the loss and the
    weights), which fast-math cannot fold away; the tests above pass even with
    'nnan' and 'ninf' added (checked by hand). Those flags would still make
    the comparisons inside the kernels (relu's max, the log-loss clipping,
    xlogy's zero test) undefined for NaN, so they stay excluded.
    """
    assert not {"nnan", "ninf", "fast"} & set(FASTMATH)


@pytest.mark.parametrize("out_activation", ["identity", "logistic", "softmax", "exp"])
def test_kernel_loss_propagates_nan(out_activation):
    """The compiled loss of a network with one NaN bias comes back NaN: the
    clipping of probabilities in the log-losses does not turn it into a finite
    number."""
    n_outputs = 1 if out_activation == "logistic" else 3
    network = _network.Network([4, 5, n_outputs], "relu", out_activation, np.float64)
    params = np.full(network.n_params, 0.1)
    params[-1] = np.nan
    target = np.zeros((len(X_REG), n_outputs))
    target[:, 0] = 1.0
    grad = np.empty_like(params)
    loss = network.loss_and_gradient(
        params, X_REG, target, np.ones(len(X_REG)), 1e-4, grad, 1
    )
    assert np.isnan(loss)


# ----------------------------------------------------------------------------
# 3. Threads and processes


CHILD_PRELUDE = """
import json, warnings
import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from fastmlp import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore", ConvergenceWarning)
X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
"""


def test_threads_fitting_and_predicting_at_once():
    """Six Python threads training and predicting at once (each with a team of
    two) give bit-identical results to the same work done one after another."""
    result = run_child(
        CHILD_PRELUDE
        + textwrap.dedent(
            """
        import threading

        def work(seed):
            estimator = MLPClassifier(
                hidden_layer_sizes=(16, 8), max_iter=8, random_state=seed,
                n_jobs=2, solver=("adam", "sgd", "lbfgs")[seed % 3],
            ).fit(X, y)
            return np.concatenate(
                [c.ravel() for c in estimator.coefs_]
                + [estimator.predict_proba(X).ravel()]
            )

        sequential = [work(seed) for seed in range(6)]
        concurrent = [None] * 6

        def target(seed):
            for _ in range(3):
                concurrent[seed] = work(seed)

        threads = [threading.Thread(target=target, args=(s,)) for s in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps([bool(np.array_equal(a, b))
                          for a, b in zip(sequential, concurrent)]))
        """
        )
    )
    assert result == [True] * 6


def test_grid_search_with_threading_backend():
    result = run_child(
        CHILD_PRELUDE
        + textwrap.dedent(
            """
        from joblib import parallel_backend
        from sklearn.model_selection import GridSearchCV

        grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}
        def search(n_jobs):
            search = GridSearchCV(
                MLPClassifier(max_iter=10, random_state=0), grid, cv=3,
                n_jobs=n_jobs,
            )
            return search.fit(X, y).cv_results_["mean_test_score"].tolist()

        sequential = search(None)
        with parallel_backend("threading", n_jobs=4):
            threaded = search(4)
        print(json.dumps([sequential, threaded]))
        """
        )
    )
    sequential, threaded = result
    assert threaded == sequential


def test_thread_team_survives_a_helper_that_cannot_start():
    """If a helper thread of the team fails to start, the helpers already
    running are released from their barriers and the error is raised, instead
    of the process hanging; the next call works normally."""
    result = run_child(
        CHILD_PRELUDE
        + textwrap.dedent(
            """
        import threading
        from fastmlp._kernels import _network

        model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2,
                              random_state=0, n_jobs=1).fit(X, y)
        network = model._network(np.float64)
        params = network.pack(model.coefs_, model.intercepts_)
        target, weights = np.eye(3)[y], np.ones(len(y))
        grad = np.empty_like(params)

        def loss(n_threads):
            # Full-batch loss and gradient: a kernel with barriers.
            value = network.loss_and_gradient(
                params, X, target, weights, 1e-4, grad, n_threads
            )
            return value, grad.copy()

        expected_loss, expected_grad = loss(1)
        start = threading.Thread.start
        started = []

        def failing_start(self):
            if len(started) == 2:
                raise RuntimeError("can't start new thread")
            started.append(self)
            start(self)

        threading.Thread.start = failing_start
        try:
            loss(4)
            outcome = "no error"
        except RuntimeError as error:
            outcome = str(error)
        threading.Thread.start = start
        again_loss, again_grad = loss(4)
        print(json.dumps([outcome, len(started), again_loss == expected_loss,
                          bool(np.array_equal(again_grad, expected_grad))]))
        """
        ),
        timeout=120,
    )
    assert result == ["can't start new thread", 2, True, True]


def test_fault_during_an_epoch_keeps_the_previous_model(monkeypatch):
    """A helper thread that cannot start mid-team: the running helpers are
    released early and may have stepped the weights with part of a gradient;
    the estimator puts back the weights from before the epoch."""
    X, y = np.tile(X_CLF, (10, 1)), np.tile(Y_CLF, 10)
    estimator = small(MLPClassifier, hidden_layer_sizes=(64, 64), n_jobs=1)
    estimator.fit(X, y)
    before = [a.copy() for a in estimator.coefs_ + estimator.intercepts_]
    t_before = estimator.t_
    start = threading.Thread.start
    started = []

    def failing_start(self):
        if len(started) == 2:
            raise RuntimeError("can't start new thread")
        started.append(self)
        start(self)

    monkeypatch.setattr(mlp_module, "effective_n_threads", lambda n_jobs: 4)
    # No idle helper threads left from earlier tests: the team must start some.
    monkeypatch.setattr(_team, "_idle_helpers", [])
    monkeypatch.setattr(threading.Thread, "start", failing_start)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        estimator.partial_fit(X, y)
    monkeypatch.undo()
    for array, saved in zip(estimator.coefs_ + estimator.intercepts_, before):
        assert_array_equal(array, saved)
    assert estimator.t_ == t_before
    estimator.partial_fit(X, y)
    assert _all_finite(estimator)


def _blas_threads():
    return [
        info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"
    ]


def test_single_threaded_blas_entered_by_many_threads():
    """BLAS stays at one thread while any thread is inside, and the user's
    setting is restored when the last one leaves.

    A first thread enters and leaves, then stays alive while eight others
    enter and leave at random: threadpoolctl lets only one live Python thread
    control OpenBLAS's limit unless fastmlp takes control on each change.
    """
    original = _blas_threads()
    if not original:
        pytest.skip("no BLAS library found by threadpoolctl")
    seen_inside, errors = [], []
    first_done, others_done = threading.Event(), threading.Event()
    start = threading.Barrier(8)

    def first():
        with single_threaded_blas():
            pass
        first_done.set()
        others_done.wait(timeout=60)

    def enter_and_leave(index):
        try:
            start.wait()
            for round_ in range(20):
                with single_threaded_blas():
                    if round_ % 3 == index % 3:
                        with single_threaded_blas():  # nested entry
                            time.sleep(0.0005)
                    seen_inside.append(_blas_threads())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    holder = threading.Thread(target=first)
    holder.start()
    first_done.wait(timeout=60)
    threads = [threading.Thread(target=enter_and_leave, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = _blas_threads()
    others_done.set()
    holder.join()
    assert not errors
    assert [limits for limits in seen_inside if limits != [1] * len(original)] == []
    assert after == original


def test_single_threaded_blas_restores_after_exception():
    original = _blas_threads()
    with pytest.raises(RuntimeError):
        with single_threaded_blas():
            raise RuntimeError("inside")
    assert _blas_threads() == original


def _unprivileged_prefix():
    """Command prefix under which file modes apply (empty unless root)."""
    if os.geteuid() != 0:
        return []
    # Root ignores file modes; drop the capabilities that let it.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop privileges")
    return [
        setpriv,
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
        "--inh-caps=-all",
    ]


def _chmod_tree(folder, writable):
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


def test_read_only_installation():
    """A package folder that cannot be written to still trains and predicts;
    Numba then caches the kernels in its user-wide directory instead.

    The child runs as an unprivileged user when the tests run as root (root
    can write to read-only folders).
    """
    # A fixed location, so that Numba's user-wide cache from an earlier run
    # is found again (its index checks the copied files' size and mtime) and
    # only the first run pays for compiling.
    root = Path(tempfile.gettempdir()) / "fastmlp-read-only-install"
    install, cache_home = root / "site", root / "cache-home"
    if install.exists():
        _chmod_tree(install, writable=True)
        shutil.rmtree(install)
    shutil.copytree(
        PACKAGE_DIR, install / "fastmlp", ignore=shutil.ignore_patterns("__pycache__")
    )
    cache_home.mkdir(parents=True, exist_ok=True)
    _chmod_tree(install, writable=False)
    prefix = _unprivileged_prefix()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(
        PYTHONPATH=str(install), XDG_CACHE_HOME=str(cache_home), HOME=str(cache_home)
    )
    try:
        result = run_child(
            """
            import json, os, warnings
            import numpy as np
            import fastmlp
            from fastmlp import MLPRegressor
            warnings.simplefilter("ignore")
            X = np.linspace(-1, 1, 40).reshape(-1, 2)
            package = os.path.dirname(fastmlp.__file__)
            model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0,
                                 n_jobs=1).fit(X, X[:, 0])
            print(json.dumps({
                "package": package,
                "writable": os.access(package, os.W_OK),
                "finite": bool(np.isfinite(model.predict(X)).all()),
            }))
            """,
            timeout=600,
            env=env,
            cwd=root,
            prefix=prefix,
        )
    finally:
        _chmod_tree(install, writable=True)
    assert result["package"] == str(install / "fastmlp")
    assert not result["writable"]
    assert result["finite"]
    # Nothing was written into the package; the kernels went to the user-wide
    # cache (Numba's fallback when the package folder is read-only).
    assert not list(install.rglob("*.nbi"))
    assert list((cache_home / "numba").rglob("*.nbi"))


def test_import_without_any_writable_cache_folder(tmp_path):
    """Neither the package folder nor Numba's user-wide cache is writable:
    Numba would refuse ``cache=True`` at import; fastmlp imports, warns once
    and compiles without a disk cache."""
    install, cache_home = tmp_path / "site", tmp_path / "cache-home"
    shutil.copytree(
        PACKAGE_DIR, install / "fastmlp", ignore=shutil.ignore_patterns("__pycache__")
    )
    cache_home.mkdir()
    prefix = _unprivileged_prefix()
    for folder in (install, cache_home):
        _chmod_tree(folder, writable=False)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(
        PYTHONPATH=str(install), XDG_CACHE_HOME=str(cache_home), HOME=str(cache_home)
    )
    try:
        result = run_child(
            """
            import json, warnings
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                import fastmlp
                from fastmlp._config import JIT_OPTIONS
            print(json.dumps([fastmlp.__file__, JIT_OPTIONS["cache"],
                              [str(w.message) for w in caught]]))
            """,
            env=env,
            cwd=tmp_path,
            prefix=prefix,
        )
    finally:
        for folder in (install, cache_home):
            _chmod_tree(folder, writable=True)
    path, cache, messages = result
    assert path == str(install / "fastmlp" / "__init__.py")
    assert cache is False
    assert any("cannot cache its compiled kernels" in m for m in messages)


# Same random_state: bit-identical results.


def _fingerprint(estimator, X):
    return (
        [coef.copy() for coef in estimator.coefs_],
        list(getattr(estimator, "loss_curve_", [estimator.loss_])),
        estimator.predict(X),
    )


def _assert_identical(first, second):
    for a, b in zip(first[0], second[0]):
        assert_array_equal(a, b)
    assert first[1] == second[1]
    assert_array_equal(first[2], second[2])


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_same_seed_same_model_for_any_n_jobs(estimator_class, solver):
    X, y = data_for(estimator_class)
    X, y = np.tile(X, (5, 1)), np.tile(y, 5)  # several chunks per batch
    fits = [
        _fingerprint(
            small(estimator_class, solver=solver, n_jobs=n_jobs, batch_size=150).fit(
                X, y
            ),
            X,
        )
        for n_jobs in (1, 1, 2, 2)
    ]
    for other in fits[1:]:
        _assert_identical(fits[0], other)


class _AlternatingTuner(_team.ThreadCountTuner):
    """Switches the team size every segment of one or two batches."""

    def __init__(self, max_threads):
        super().__init__(2)
        self.segments = []

    def plan(self, batches_left):
        threads = 2 if len(self.segments) % 2 else 1
        self.segments.append(threads)
        return threads, min(1 + len(self.segments) % 2, batches_left)

    def record(self, threads, batches, seconds):
        pass


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_same_model_when_the_team_size_changes_during_training(
    estimator_class, solver, monkeypatch
):
    # The estimators let a tuner change the number of threads between
    # segments of an epoch (or L-BFGS evaluations): nothing may change.
    X, y = data_for(estimator_class)
    X, y = np.tile(X, (5, 1)), np.tile(y, 5)
    params = dict(solver=solver, batch_size=40, early_stopping=solver != "lbfgs")
    reference = _fingerprint(small(estimator_class, n_jobs=1, **params).fit(X, y), X)
    tuners = []

    def tuner(max_threads):
        tuners.append(_AlternatingTuner(max_threads))
        return tuners[-1]

    monkeypatch.setattr(mlp_module, "ThreadCountTuner", tuner)
    switched = small(estimator_class, n_jobs=2, **params).fit(X, y)
    assert len(tuners) == 1 and len(set(tuners[0].segments)) == 2
    _assert_identical(reference, _fingerprint(switched, X))


def test_the_tuner_serves_every_fit_but_is_not_pickled():
    X, y = data_for(MLPClassifier)
    estimator = small(MLPClassifier, n_jobs=2)
    estimator.partial_fit(X, y, classes=np.unique(y))
    tuner = estimator._thread_tuner
    estimator.partial_fit(X, y)
    estimator.fit(X, y)
    assert estimator._thread_tuner is tuner and tuner.n_segments >= 3
    # Timings are no part of the model: equal models pickle alike.
    first, second = (small(MLPClassifier, n_jobs=2).fit(X, y) for _ in range(2))
    assert first._thread_tuner.seconds_per_batch
    assert pickle.dumps(first) == pickle.dumps(second)
    restored = pickle.loads(pickle.dumps(estimator))
    assert not hasattr(restored, "_thread_tuner")
    restored.partial_fit(X, y)
    assert restored._thread_tuner is not tuner


def test_team_survives_copies_that_fail_to_start():
    # A copy's dispatch can fail, or copy 0's be interrupted (Ctrl-C while the
    # kernel loads or compiles): the other copies must not wait for it at a
    # barrier, the error must reach the caller, and the helpers stay usable.
    code = """
        import json
        import numpy as np
        from numba import njit
        from fastmlp._kernels import _team

        @njit(nogil=True)
        def meet(thread, n_threads, sync, out):
            _team._announce(sync, thread)
            _team._barrier(sync, n_threads)
            out[thread] = 1.0

        def fails_in(copies, error):
            def kernel(thread, *args):
                if thread in copies:
                    raise error
                return meet(thread, *args)
            return kernel

        out = np.zeros(2)
        meet(0, 1, np.zeros(_team.SYNC_SIZE, np.int64), out)
        results = {}
        # Ctrl-C in copy 0; an error in every copy's dispatch (as for
        # arguments the kernel cannot take); an error in the helper's only.
        cases = {"0": fails_in({0}, KeyboardInterrupt()),
                 "all": fails_in({0, 1}, ValueError("no such kernel")),
                 "helper": fails_in({1}, ValueError("in copy 1"))}
        for name, kernel in cases.items():
            out[:] = 0.0
            try:
                _team.run_team(kernel, 2, out)
                results[name] = "returned"
            except BaseException as raised:
                results[name] = [type(raised).__name__, out.tolist()]
        helpers = list(_team._idle_helpers)
        out[:] = 0.0
        _team.run_team(meet, 2, out)
        results["after"] = [out.tolist(), all(h.is_alive() for h in helpers)]
        print(json.dumps(results))
        """
    results = run_child(code, timeout=120)
    assert results["0"] == ["KeyboardInterrupt", [0.0, 0.0]]
    assert results["all"] == ["ValueError", [0.0, 0.0]]
    # Copy 0 ran on past the barrier the helper never reached.
    assert results["helper"] == ["ValueError", [1.0, 0.0]]
    assert results["after"] == [[1.0, 1.0], True]


def test_only_the_calling_thread_compiles_a_team_kernel():
    code = """
        import json, threading
        import numpy as np
        from numba import njit
        from numba.core import event
        from fastmlp._kernels import _team

        @njit(nogil=True)
        def meet(thread, n_threads, sync, out):
            _team._announce(sync, thread)
            _team._barrier(sync, n_threads)
            out[thread] = 1.0

        compiling = []

        class Listener(event.Listener):
            def on_start(self, ev):
                compiling.append(threading.current_thread().name)

            def on_end(self, ev):
                pass

        out = np.zeros(2)
        _team.run_team(lambda *args: None, 2)  # start the helper
        with event.install_listener("numba:compile", Listener()):
            _team.run_team(meet, 2, out)
        print(json.dumps([sorted(set(compiling)), out.tolist()]))
        """
    assert run_child(code, timeout=120) == [["MainThread"], [1.0, 1.0]]


def test_first_call_of_a_kernel_in_a_process_runs_on_one_thread():
    # It compiles or loads the kernel; later calls use the whole team.
    code = """
        import json, warnings
        import numpy as np
        from fastmlp import MLPRegressor
        from fastmlp._kernels import _network
        calls = []
        run_team = _network.run_team
        def recording(kernel, n_threads, *args):
            calls.append([kernel.py_func.__name__, n_threads])
            return run_team(kernel, n_threads, *args)
        _network.run_team = recording
        X = np.random.default_rng(0).normal(size=(1000, 5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, n_jobs=2)
            model.fit(X, X[:, 0])
            model.predict(X)
            model.predict(X)
            model.fit(X.astype(np.float32), X[:, 0])
        print(json.dumps(calls))
        """
    assert run_child(code, timeout=120) == [
        ["_epoch", 1],
        ["_epoch", 2],
        ["_predict", 1],
        ["_predict", 2],
        ["_epoch", 1],
        ["_epoch", 2],
    ]


def test_ctrl_c_while_waiting_for_helpers_gives_them_back():
    # Copy 0 returns at once and the helper works on: the Ctrl-C lands while
    # the caller waits for the helper. The helper must rejoin the idle pool,
    # not be replaced by a new thread on every interrupted call.
    code = """
        import _thread, json, threading
        import numpy as np
        from numba import njit
        from fastmlp._kernels import _team

        @njit(nogil=True)
        def slow_helper(thread, n_threads, sync, out, n):
            _team._announce(sync, thread)
            if thread > 0:
                total = 0.0
                for i in range(n):
                    total += np.sqrt(i + 1.0)
                out[thread] = total

        out = np.zeros(2)
        slow_helper(0, 1, np.zeros(_team.SYNC_SIZE, np.int64), out, 1)
        outcomes = []
        for _ in range(4):
            timer = threading.Timer(0.05, _thread.interrupt_main)
            try:
                timer.start()
                _team.run_team(slow_helper, 2, out, 400_000_000)
                outcomes.append("returned")
            except KeyboardInterrupt:
                outcomes.append("KeyboardInterrupt")
            timer.join()
        teams = [t for t in threading.enumerate() if t.name == "fastmlp-team"]
        print(json.dumps([outcomes, len(teams), len(_team._idle_helpers)]))
        """
    outcomes, n_helper_threads, n_idle = run_child(code, timeout=300)
    assert "KeyboardInterrupt" in outcomes
    assert n_helper_threads == 1 and n_idle == 1


def test_idle_helpers_keep_no_arrays_alive():
    code = """
        import gc, json, weakref
        import numpy as np
        from numba import njit
        from fastmlp._kernels import _team

        @njit(nogil=True)
        def mark(thread, n_threads, sync, out):
            _team._announce(sync, thread)
            out[thread] = 1.0

        out = np.zeros(2)
        _team.run_team(mark, 2, out)
        alive = weakref.ref(out)
        del out
        gc.collect()
        print(json.dumps(alive() is None))
        """
    assert run_child(code, timeout=120) is True


def test_ctrl_c_while_the_first_fit_compiles_leaves_numba_usable(tmp_path):
    # Ctrl-C while copy 0 waited for a helper that compiled the kernel left
    # Numba's compiler lock taken, and the next compile (here, predict's)
    # waited forever.
    code = """
        import _thread, json, threading
        from sklearn.datasets import load_digits
        from fastmlp import MLPClassifier
        X, y = load_digits(return_X_y=True)
        model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, n_jobs=2)
        timer = threading.Timer(1.0, _thread.interrupt_main)
        try:
            timer.start()
            model.fit(X / 16.0, y)
            timer.join()
        except KeyboardInterrupt:
            pass
        print(json.dumps(model.predict(X / 16.0).shape))
        """
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    assert run_child(code, timeout=300, env=env) == [1797]


def test_ctrl_c_waits_for_a_kernels_first_dispatch():
    # A Ctrl-C inside llvmlite's callback that loads a cached kernel crashed
    # the process. Here one arrives just as the first kernel call of the
    # process starts: it must take effect only once that call has returned.
    code = """
        import json, os, signal, warnings
        from sklearn.datasets import load_digits
        from fastmlp import MLPClassifier
        from fastmlp._kernels import _network
        X, y = load_digits(return_X_y=True)
        real_run_team, log = _network.run_team, []

        def interrupted_run_team(kernel, n_threads, *args):
            if not log:
                log.append("Ctrl-C")
                os.kill(os.getpid(), signal.SIGINT)
            result = real_run_team(kernel, n_threads, *args)
            log.append("ran")
            return result

        _network.run_team = interrupted_run_team
        model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X / 16.0, y)
        restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        print(json.dumps([log[:2], [str(w.message) for w in caught], restored]))
        """
    log, messages, handler_restored = run_child(code, timeout=180)
    assert log == ["Ctrl-C", "ran"]
    assert "Training interrupted by user." in messages
    assert handler_restored


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1])
def test_ctrl_c_as_the_first_fit_starts_never_hangs(delay):
    # Ctrl-C while the first multi-threaded call of a process still loads (or
    # compiles) the kernel used to leave a helper waiting for copy 0 forever.
    code = f"""
        import _thread, json, threading, time, warnings
        from sklearn.datasets import load_digits
        from fastmlp import MLPClassifier
        X, y = load_digits(return_X_y=True)
        model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, n_jobs=2,
                              random_state=0)
        timer = threading.Timer({delay}, _thread.interrupt_main)
        try:
            # Started inside the try, and waited for, so the interrupt lands
            # here whether it comes before, during or after the fit.
            timer.start()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(X / 16.0, y)
            outcome = [str(w.message) for w in caught]
            timer.join()
            time.sleep(0.5)
        except KeyboardInterrupt:
            outcome = "KeyboardInterrupt"
        # Whatever happened, the team still trains.
        model.set_params(max_iter=1).fit(X / 16.0, y)
        print(json.dumps(outcome))
        """
    outcome = run_child(code, timeout=180)
    assert outcome == "KeyboardInterrupt" or any(
        "Training interrupted by user" in message or "Maximum iterations" in message
        for message in outcome
    )


class _InterruptedTuner(_team.ThreadCountTuner):
    """One-batch segments; Ctrl-C arrives after the 25th."""

    def __init__(self, max_threads):
        super().__init__(2)

    def plan(self, batches_left):
        return 2, 1

    def record(self, threads, batches, seconds):
        super().record(threads, batches, seconds)
        if self.n_segments == 25:
            raise KeyboardInterrupt


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_ctrl_c_between_segments_keeps_the_model_of_whole_epochs(solver, monkeypatch):
    X, y = data_for(MLPClassifier)
    X, y = np.tile(X, (5, 1)), np.tile(y, 5)
    params = dict(solver=solver, batch_size=20, max_iter=10)
    n_batches = -(-len(X) // 20)
    assert 25 % n_batches, "the interrupt must fall inside an epoch"
    monkeypatch.setattr(mlp_module, "ThreadCountTuner", _InterruptedTuner)
    model = small(MLPClassifier, **params)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        model.fit(X, y)
    monkeypatch.undo()
    assert model.n_iter_ == 25 // n_batches
    reference = small(MLPClassifier, **dict(params, max_iter=model.n_iter_))
    reference.fit(X, y)
    _assert_identical(_fingerprint(model, X), _fingerprint(reference, X))
    assert model.t_ == reference.t_
    # Training goes on from there as if never interrupted.
    model.partial_fit(X, y)
    reference.partial_fit(X, y)
    _assert_identical(_fingerprint(model, X), _fingerprint(reference, X))


def test_same_seed_same_model_across_processes(tmp_path):
    code = """
        import json, sys, warnings
        import numpy as np
        from sklearn.datasets import make_regression
        from fastmlp import MLPRegressor
        warnings.simplefilter("ignore")
        X, y = make_regression(60, 4, noise=1.0, random_state=0)
        model = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0,
                             n_jobs=int(sys.argv[1])).fit(X, y)
        np.savez(sys.argv[2], *model.coefs_, prediction=model.predict(X))
        print(json.dumps(model.loss_curve_))
        """
    curves = []
    for n_jobs in (1, 2):
        path = tmp_path / f"child{n_jobs}.npz"
        try:
            result = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code), str(n_jobs), str(path)],
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("child process hung")
        assert result.returncode == 0, result.stderr
        curves.append(json.loads(result.stdout.strip().splitlines()[-1]))
    here = small(MLPRegressor).fit(X_REG, Y_REG)
    for n_jobs, curve in zip((1, 2), curves):
        saved = np.load(tmp_path / f"child{n_jobs}.npz")
        assert curve == here.loss_curve_
        assert_array_equal(saved["prediction"], here.predict(X_REG))
        for index, coef in enumerate(here.coefs_):
            assert_array_equal(saved[f"arr_{index}"], coef)


# ----------------------------------------------------------------------------
# 4. Persistence


PERSISTED = {
    "clf-adam-f64": (MLPClassifier, dict(solver="adam"), np.float64),
    "clf-sgd-f32": (MLPClassifier, dict(solver="sgd"), np.float32),
    "reg-adam-f32": (MLPRegressor, dict(solver="adam"), np.float32),
    "reg-lbfgs-f64": (MLPRegressor, dict(solver="lbfgs"), np.float64),
    "reg-poisson-f64": (MLPRegressor, dict(loss="poisson"), np.float64),
}


def _persisted_data(name):
    estimator_class, params, dtype = PERSISTED[name]
    X, y = data_for(estimator_class)
    if params.get("loss") == "poisson":
        y = np.abs(y) / 50
    return X.astype(dtype), y


def _continue(estimator, X, y):
    """Continue training as a user would: partial_fit and a warm-started fit."""
    estimator = pickle.loads(pickle.dumps(estimator))
    if estimator.solver != "lbfgs":
        estimator.partial_fit(X, y)
    estimator.set_params(warm_start=True, max_iter=3).fit(X, y)
    return estimator


@pytest.fixture(scope="module")
def loaded_in_child(tmp_path_factory):
    """Pickle and joblib files of fitted and unfitted models, loaded, used and
    trained further in a fresh interpreter; returns the saved results."""
    folder = tmp_path_factory.mktemp("persistence")
    for name, (estimator_class, params, _) in PERSISTED.items():
        X, y = _persisted_data(name)
        np.save(folder / f"{name}-X.npy", X)
        np.save(folder / f"{name}-y.npy", y)
        fitted = small(estimator_class, **params).fit(X, y)
        unfitted = small(estimator_class, **params)
        for state, estimator in (("fitted", fitted), ("unfitted", unfitted)):
            with open(folder / f"{name}-{state}.pkl", "wb") as file:
                pickle.dump(estimator, file)
            joblib.dump(estimator, folder / f"{name}-{state}.joblib")
    run_child(
        f"""
        import json, pickle, sys, warnings
        from pathlib import Path
        import joblib
        import numpy as np
        warnings.simplefilter("ignore")
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_reliability import _continue

        folder = Path({str(folder)!r})
        for name in {list(PERSISTED)!r}:
            X = np.load(folder / f"{{name}}-X.npy")
            y = np.load(folder / f"{{name}}-y.npy")
            for fmt in ("pkl", "joblib"):
                for state in ("fitted", "unfitted"):
                    path = folder / f"{{name}}-{{state}}.{{fmt}}"
                    if fmt == "pkl":
                        with open(path, "rb") as file:
                            model = pickle.load(file)
                    else:
                        model = joblib.load(path)
                    if state == "unfitted":
                        model.fit(X, y)
                    out = {{"prediction": model.predict(X)}}
                    continued = _continue(model, X, y)
                    for i, coef in enumerate(continued.coefs_):
                        out[f"coef{{i}}"] = coef
                    np.savez(folder / f"out-{{name}}-{{state}}-{{fmt}}.npz", **out)
        print(json.dumps("done"))
        """
    )
    return folder


@pytest.mark.parametrize("fmt", ["pkl", "joblib"])
@pytest.mark.parametrize("state", ["fitted", "unfitted"])
@pytest.mark.parametrize("name", list(PERSISTED))
def test_round_trip_in_fresh_process(loaded_in_child, name, state, fmt):
    estimator_class, params, dtype = PERSISTED[name]
    X, y = _persisted_data(name)
    never_pickled = small(estimator_class, **params).fit(X, y)
    saved = np.load(loaded_in_child / f"out-{name}-{state}-{fmt}.npz")

    prediction = never_pickled.predict(X)
    assert saved["prediction"].dtype == prediction.dtype
    assert_array_equal(saved["prediction"], prediction)

    # Training continued after loading is the training never interrupted.
    continued = _continue(never_pickled, X, y)
    for index, coef in enumerate(continued.coefs_):
        assert coef.dtype == dtype
        assert saved[f"coef{index}"].dtype == dtype
        assert_array_equal(saved[f"coef{index}"], coef)


@pytest.mark.filterwarnings("error::sklearn.exceptions.InconsistentVersionWarning")
def test_continuing_after_pickle_equals_never_pickled():
    """Within one process too: partial_fit from a pickled copy follows the same
    stream of shuffles and optimizer state as the original."""
    X, y = data_for(MLPClassifier)
    original = small(MLPClassifier, solver="sgd").fit(X, y)
    copy = pickle.loads(pickle.dumps(original))
    for _ in range(3):
        original.partial_fit(X, y)
        copy.partial_fit(X, y)
    for a, b in zip(
        original.coefs_ + original.intercepts_, copy.coefs_ + copy.intercepts_
    ):
        assert_array_equal(a, b)


def test_incompatible_persistence_format_is_refused(monkeypatch):
    estimator = small(MLPRegressor).fit(X_REG, Y_REG)
    monkeypatch.setattr(mlp_module, "PERSISTENCE_FORMAT", 0)
    data = pickle.dumps(estimator)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="persistence format 0.* reads format 1"):
        pickle.loads(data)


def test_pickle_without_persistence_format_is_refused():
    state = small(MLPRegressor).__getstate__()
    del state["_fastmlp_persistence_format"]
    with pytest.raises(ValueError, match="persistence format None"):
        MLPRegressor.__new__(MLPRegressor).__setstate__(state)


def test_scikit_learn_version_warning_still_works():
    estimator = small(MLPClassifier).fit(X_CLF, Y_CLF)
    state = estimator.__getstate__()
    state["_sklearn_version"] = "0.1"
    restored = MLPClassifier.__new__(MLPClassifier)
    with pytest.warns(InconsistentVersionWarning, match="from version 0.1 when"):
        restored.__setstate__(state)
    assert not hasattr(restored, "_sklearn_version")
    assert not hasattr(restored, "_fastmlp_persistence_format")
    assert_array_equal(restored.predict(X_CLF), estimator.predict(X_CLF))
