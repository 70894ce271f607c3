"""Property-based tests: for any shapes, dtypes, layer sizes and parameters,
fit and predict either succeed with finite output of the right shape and dtype
or raise a ValueError; never another exception, never a RuntimeWarning.

Example counts are kept small: the kernels are compiled once per dtype (and
cached on disk), so each example costs milliseconds, but the machine is shared.
"""

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # The same examples on every run in CI (CI=true), so that a run cannot
    # fail by chance; random new examples on developers' runs.
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

dtypes = st.sampled_from([np.float32, np.float64])
hidden_layers = st.lists(st.integers(1, 8), min_size=0, max_size=2).map(tuple)
parameters = st.fixed_dictionaries(
    {
        "hidden_layer_sizes": hidden_layers,
        "activation": st.sampled_from(["identity", "logistic", "tanh", "relu"]),
        "solver": st.sampled_from(["sgd", "adam", "lbfgs"]),
        "alpha": st.floats(0, 1),
        "batch_size": st.one_of(st.just("auto"), st.integers(1, 40)),
        "learning_rate": st.sampled_from(["constant", "invscaling", "adaptive"]),
        "learning_rate_init": st.floats(1e-4, 0.1),
        "max_iter": st.integers(1, 3),
        "shuffle": st.booleans(),
        "n_jobs": st.sampled_from([None, 1, 2]),
        "random_state": st.integers(0, 2**31 - 1),
    }
)


@st.composite
def data_sets(draw, max_abs=100.0):
    """A data set of any small shape and dtype, dense or sparse."""
    n_samples = draw(st.integers(1, 30))
    n_features = draw(st.integers(1, 6))
    dtype = draw(dtypes)
    X = draw(
        arrays(
            dtype,
            (n_samples, n_features),
            elements=st.floats(-max_abs, max_abs, width=32),
        )
    )
    layout = draw(st.sampled_from(["C", "F", "csr", "csc"]))
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout != "C":
        X = sp.csr_matrix(X) if layout == "csr" else sp.csc_matrix(X)
    return X, n_samples, dtype


def _fit_and_predict(estimator, X, y, method, sample_weight=None):
    """Run fit then a prediction method under strict warnings.

    Returns the prediction, or None if a ValueError was raised (which the
    properties accept); any other exception fails the test.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size`")
        try:
            estimator.fit(X, y, sample_weight=sample_weight)
        except ValueError:
            return None
        try:
            return getattr(estimator, method)(X)
        except ValueError as error:
            # Weights that a diverging step left finite but huge may overflow
            # the forward pass; prediction says so rather than return inf.
            assert "outputs overflowed" in str(error)
            _check_finite_weights(estimator)
            return None


def _check_finite_weights(estimator):
    for array in estimator.coefs_ + estimator.intercepts_:
        assert np.isfinite(array).all()


@SETTINGS
@given(data=data_sets(), params=parameters, n_outputs=st.integers(1, 3), seed=st.data())
def test_regressor_fit_predict(data, params, n_outputs, seed):
    X, n_samples, dtype = data
    y = seed.draw(
        arrays(np.float64, (n_samples, n_outputs), elements=st.floats(-100, 100))
    )
    if n_outputs == 1:
        y = y.ravel()
    sample_weight = seed.draw(
        st.none() | arrays(np.float64, n_samples, elements=st.floats(0, 10))
    )
    estimator = MLPRegressor(**params)
    prediction = _fit_and_predict(estimator, X, y, "predict", sample_weight)
    if prediction is None:
        return
    _check_finite_weights(estimator)
    assert prediction.shape == y.shape
    assert prediction.dtype == dtype
    assert np.isfinite(prediction).all()


@SETTINGS
@given(data=data_sets(), params=parameters, seed=st.data())
def test_poisson_regressor_fit_predict(data, params, seed):
    X, n_samples, dtype = data
    y = seed.draw(arrays(np.float64, n_samples, elements=st.floats(0, 20)))
    estimator = MLPRegressor(loss="poisson", **params)
    prediction = _fit_and_predict(estimator, X, y, "predict")
    if prediction is None:
        return
    _check_finite_weights(estimator)
    assert prediction.shape == y.shape
    assert prediction.dtype == dtype
    assert np.all(prediction >= 0)


@SETTINGS
@given(
    data=data_sets(),
    params=parameters,
    n_classes=st.integers(1, 4),
    multilabel=st.booleans(),
    seed=st.data(),
)
def test_classifier_fit_predict_proba(data, params, n_classes, multilabel, seed):
    X, n_samples, dtype = data
    if multilabel:
        # One indicator column would be a column vector of binary labels.
        assume(n_classes >= 2)
        y = seed.draw(
            arrays(np.int64, (n_samples, n_classes), elements=st.integers(0, 1))
        )
    else:
        y = seed.draw(
            arrays(np.int64, n_samples, elements=st.integers(0, n_classes - 1))
        )
    estimator = MLPClassifier(**params)
    proba = _fit_and_predict(estimator, X, y, "predict_proba")
    if proba is None:
        return
    _check_finite_weights(estimator)
    assert proba.dtype == dtype
    assert proba.shape == (n_samples, len(estimator.classes_))
    assert np.isfinite(proba).all()
    assert np.all((proba >= 0) & (proba <= 1))
    labels = estimator.predict(X)
    assert labels.shape == np.shape(y)
    assert set(np.unique(labels)) <= set(np.unique(y)) | {0, 1}


@SETTINGS
@given(
    data=data_sets(),
    params=parameters,
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.data(),
)
def test_non_finite_input_always_raises_value_error(data, params, bad, where):
    X, n_samples, dtype = data
    X = X.toarray() if sp.issparse(X) else np.array(X)
    row = where.draw(st.integers(0, n_samples - 1))
    column = where.draw(st.integers(0, X.shape[1] - 1))
    X[row, column] = bad
    y = np.arange(n_samples, dtype=np.float64)
    with pytest.raises(ValueError, match="Input X contains"):
        MLPRegressor(**params).fit(X, y)


@SETTINGS
@given(params=parameters, scale=st.sampled_from([1e10, 1e100, 1e150, 1e300]))
def test_huge_values_give_a_finite_model_or_value_error(params, scale):
    """Data too large to train on ends in the divergence ValueError (or trains);
    a model with non-finite weights is never returned."""
    rng = np.random.RandomState(params["random_state"] % 1000)
    X = rng.standard_normal((20, 3)) * scale
    y = rng.standard_normal(20)
    estimator = MLPRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size`")
        try:
            estimator.fit(X, y)
        except ValueError as error:
            assert "scale" in str(error)
    assume(hasattr(estimator, "coefs_"))
    _check_finite_weights(estimator)
