"""Sparse CSR and CSC input: the same model as dense input, without densifying."""

import resource
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from test_parity import assert_same_model, fit_both, make_task, settings

from fastmlp import MLPRegressor

FORMATS = ["csr", "csc"]


def sparse_task(task, fmt):
    """A task's data with about 70% of the entries set to zero."""
    X, y, ours_class, theirs_class = make_task(task)
    mask = np.random.default_rng(5).random(X.shape) < 0.7
    X = np.where(mask, 0.0, X)
    return X, sp.csr_matrix(X).asformat(fmt), y, ours_class, theirs_class


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_fit_equals_dense_fit(fmt, task, solver):
    X, X_sparse, y, ours_class, theirs_class = sparse_task(task, fmt)
    params = settings(task, solver, "relu", max_iter=4)
    dense, sparse = ours_class(**params), ours_class(**params)
    fit_both(dense, sparse, X, y)
    sparse.fit(X_sparse, y)
    assert_same_model(sparse, dense)
    np.testing.assert_allclose(sparse.predict(X_sparse), dense.predict(X), rtol=1e-10)
    if hasattr(dense, "predict_proba"):
        np.testing.assert_allclose(
            sparse.predict_proba(X_sparse), dense.predict_proba(X), rtol=1e-10
        )
    # And scikit-learn agrees on the sparse fit.
    theirs = theirs_class(**params)
    fit_both(theirs, theirs, X_sparse, y)
    assert_same_model(sparse, theirs, rtol=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_partial_fit_equals_dense(fmt):
    X, X_sparse, y, ours_class, _ = sparse_task("multiclass", fmt)
    params = settings("multiclass", "adam", "tanh")
    dense, sparse = ours_class(**params), ours_class(**params)
    for batch in np.array_split(np.arange(len(y)), 3):
        dense.partial_fit(X[batch], y[batch], classes=[0, 1, 2])
        sparse.partial_fit(X_sparse[batch], y[batch], classes=[0, 1, 2])
    assert_same_model(sparse, dense)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dense_model_predicts_sparse_input(fmt):
    X, X_sparse, y, ours_class, _ = sparse_task("regression", fmt)
    model = ours_class(**settings("regression", "adam", "relu"))
    fit_both(model, model, X, y)
    np.testing.assert_allclose(model.predict(X_sparse), model.predict(X), rtol=1e-12)


def peak_rss_bytes():
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_wide_sparse_input_is_never_densified(solver):
    # 400 x 3,000,000 would take 9.6 GB dense; the fit must stay far below.
    n_samples, n_features, per_row = 400, 3_000_000, 30
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(
        (
            rng.standard_normal(n_samples * per_row),
            rng.integers(0, n_features, n_samples * per_row),
            np.arange(0, n_samples * per_row + 1, per_row),
        ),
        shape=(n_samples, n_features),
    )
    y = np.asarray(X.sum(axis=1)).ravel()
    model = MLPRegressor(
        hidden_layer_sizes=(2,), solver=solver, max_iter=2, random_state=0
    )
    before = peak_rss_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    predictions = model.predict(X[:10])
    assert peak_rss_bytes() - before < 1.5e9
    assert model.coefs_[0].shape == (n_features, 2)
    assert np.isfinite(predictions).all()
