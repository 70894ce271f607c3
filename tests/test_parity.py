"""fastmlp against scikit-learn itself: same settings, same weights.

With the same random_state both draw the same initial weights, the same
shuffles and the same early-stopping split, so every fitted number must agree
up to floating-point rounding.
"""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from conftest import HIDDEN_ACTIVATIONS
from sklearn.datasets import make_classification, make_regression
from sklearn.utils import shuffle as sklearn_shuffle

import fastmlp
from fastmlp._multilayer_perceptron import _shuffled

TASKS = ["multiclass", "binary", "multilabel", "regression", "multioutput", "poisson"]


def make_task(task, n_samples=90, seed=0):
    rng = np.random.default_rng(seed)
    if task in ("multiclass", "binary"):
        X, y = make_classification(
            n_samples=n_samples,
            n_features=6,
            n_informative=4,
            n_classes=3 if task == "multiclass" else 2,
            random_state=seed,
        )
        return X, y, fastmlp.MLPClassifier, sk.MLPClassifier
    if task == "multilabel":
        X = rng.standard_normal((n_samples, 6))
        y = (X[:, :3] + 0.3 * rng.standard_normal((n_samples, 3)) > 0).astype(int)
        return X, y, fastmlp.MLPClassifier, sk.MLPClassifier
    n_targets = 3 if task == "multioutput" else 1
    X, y = make_regression(
        n_samples=n_samples,
        n_features=6,
        n_targets=n_targets,
        noise=0.1,
        random_state=seed,
    )
    if task == "poisson":
        return (
            X,
            rng.poisson(np.exp(X[:, 0] * 0.5)),
            fastmlp.MLPRegressor,
            sk.MLPRegressor,
        )
    return X, y / 100, fastmlp.MLPRegressor, sk.MLPRegressor


def fit_both(ours, theirs, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, **fit_params)
        theirs.fit(X, y, **fit_params)


def assert_same_model(ours, theirs, rtol=1e-10):
    for mine, reference in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_
    ):
        assert mine.dtype == reference.dtype
        np.testing.assert_allclose(mine, reference, rtol=rtol, atol=rtol * 1e-2)
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)


def settings(task, solver, activation, **extra):
    params = dict(
        hidden_layer_sizes=(7, 5),
        activation=activation,
        solver=solver,
        alpha=1e-3,
        batch_size=16,
        learning_rate_init=0.01,
        max_iter=6,
        tol=0.0,
        n_iter_no_change=100,
        random_state=0,
    )
    if task == "poisson":
        params["loss"] = "poisson"
        params["learning_rate_init"] = 0.002
    params.update(extra)
    return params


@pytest.mark.parametrize("n_samples", [1, 2, 7, 200, 1797])
def test_epoch_orders_are_scikit_learns_shuffles(n_samples):
    # fastmlp draws each epoch's order itself rather than through
    # sklearn.utils.shuffle; a stream of epochs must give the same orders.
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    our_order = their_order = np.arange(n_samples, dtype=np.int64)
    for _ in range(4):
        our_order = _shuffled(our_order, ours)
        their_order = sklearn_shuffle(their_order, random_state=theirs)
        np.testing.assert_array_equal(our_order, their_order)
    assert our_order.dtype == np.int64
    # Both generators are left in the same state.
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_weights_as_scikit_learn(solver, activation, task, shuffle):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, solver, activation, shuffle=shuffle)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_weights_from_given_initial_weights(solver, task):
    # Both models start from the same hand-made weights (warm start), then
    # train on the same unshuffled batches.
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, solver, "tanh", shuffle=False, max_iter=1)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    rng = np.random.default_rng(42)
    initial = [
        rng.uniform(-0.5, 0.5, a.shape) for a in theirs.coefs_ + theirs.intercepts_
    ]
    for model in (ours, theirs):
        n = len(model.coefs_)
        model.coefs_ = [a.copy() for a in initial[:n]]
        model.intercepts_ = [a.copy() for a in initial[n:]]
        model.set_params(warm_start=True, max_iter=8)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize(
    "schedule",
    [
        dict(learning_rate="invscaling", power_t=0.3, learning_rate_init=0.2),
        dict(learning_rate="adaptive", tol=1e-3, n_iter_no_change=1),
        dict(nesterovs_momentum=False, momentum=0.5),
    ],
    ids=["invscaling", "adaptive", "plain-momentum"],
)
def test_sgd_schedules_match(schedule):
    X, y, ours_class, theirs_class = make_task("multiclass")
    params = settings("multiclass", "sgd", "relu", max_iter=15)
    params.update(schedule)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("task", TASKS)
def test_sample_weight_matches(task):
    X, y, ours_class, theirs_class = make_task(task)
    weights = np.random.default_rng(1).uniform(0.1, 3.0, len(X))
    params = settings(task, "adam", "relu")
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y, sample_weight=weights)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_early_stopping_matches(task):
    X, y, ours_class, theirs_class = make_task(task, n_samples=200)
    params = settings(
        task,
        "adam",
        "relu",
        early_stopping=True,
        max_iter=30,
        n_iter_no_change=3,
        tol=1e-3,
        validation_fraction=0.2,
    )
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(
        ours.validation_scores_, theirs.validation_scores_, rtol=1e-10
    )
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    assert ours.best_loss_ is None and theirs.best_loss_ is None


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression", "poisson"])
def test_lbfgs_reaches_the_same_loss(task):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, "lbfgs", "tanh", max_iter=60)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_float32_training_stays_close_to_scikit_learn():
    X, y, ours_class, theirs_class = make_task("multiclass")
    X = X.astype(np.float32)
    params = settings("multiclass", "adam", "relu", max_iter=2)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs, rtol=1e-4)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_weights_for_layers_cut_into_tiles_and_chunks(solver):
    # Wide enough layers that the kernels cut them into several tiles, and
    # batches large enough to be cut into several chunks.
    X, y = make_classification(
        n_samples=500, n_features=50, n_informative=25, n_classes=5, random_state=0
    )
    params = settings(
        "multiclass",
        solver,
        "relu",
        hidden_layer_sizes=(100, 70),
        batch_size=128,
        max_iter=4,
    )
    ours, theirs = fastmlp.MLPClassifier(**params), sk.MLPClassifier(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
