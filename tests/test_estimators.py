"""The estimators as a scikit-learn user meets them."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmlp import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize(
    "ours, theirs", [(MLPClassifier, sk.MLPClassifier), (MLPRegressor, sk.MLPRegressor)]
)
def test_same_parameters_defaults_and_order(ours, theirs):
    our_params = list(inspect.signature(ours).parameters.values())
    their_params = list(inspect.signature(theirs).parameters.values())
    # Every scikit-learn parameter, in the same position, with the same default
    # and kind; extra parameters may only follow.
    assert [(p.name, p.default, p.kind) for p in our_params[: len(their_params)]] == [
        (p.name, p.default, p.kind) for p in their_params
    ]
    assert [p.name for p in our_params[len(their_params) :]] == ["n_jobs"]


def test_digits_accuracy_and_fitted_attributes(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(50,), max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.88
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 10
    assert clf.out_activation_ == "softmax"
    assert [c.shape for c in clf.coefs_] == [(64, 50), (50, 10)]
    assert [b.shape for b in clf.intercepts_] == [(50,), (10,)]
    assert clf.n_features_in_ == 64
    assert clf.t_ == clf.n_iter_ * 1200
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    proba = clf.predict_proba(X[1200:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(
        clf.classes_[proba.argmax(axis=1)], clf.predict(X[1200:])
    )
    np.testing.assert_allclose(clf.predict_log_proba(X[1200:1205]), np.log(proba[:5]))


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_float32_is_kept(Estimator):
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    if Estimator is MLPClassifier:
        y = y > 0
    model = Estimator(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in model.coefs_ + model.intercepts_)
    out = model.predict_proba(X) if Estimator is MLPClassifier else model.predict(X)
    assert out.dtype == np.float32


def test_integer_input_becomes_float64():
    X = np.arange(40).reshape(20, 2)
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, np.arange(20))
    assert model.coefs_[0].dtype == np.float64


def test_verbose_lines_and_convergence_warning(capsys):
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    model = MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=3, verbose=True, random_state=0
    )
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\) reached"):
        model.fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for number, (line, loss) in enumerate(zip(lines, model.loss_curve_), start=1):
        assert line == f"Iteration {number}, loss = {loss:.8f}"


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_same_result_for_any_number_of_threads(solver, digits):
    X, y = digits
    fits = []
    for n_jobs in (1, 2):
        clf = MLPClassifier(
            hidden_layer_sizes=(40, 20),
            solver=solver,
            max_iter=5,
            random_state=0,
            n_jobs=n_jobs,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        fits.append(clf)
    for a, b in zip(
        fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_pickle_round_trip_keeps_predictions(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=-1.0), "alpha"),
        (dict(learning_rate_init=0.0), "learning_rate_init"),
        (dict(momentum=1.5), "momentum"),
        (dict(beta_1=1.0), "beta_1"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(n_iter_no_change=0), "n_iter_no_change"),
        (dict(activation="softplus"), "activation"),
        (dict(solver="newton"), "solver"),
        (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes"),
        (dict(n_jobs=0), "n_jobs"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match):
    model = MLPClassifier(**params)  # nothing is checked at construction
    with pytest.raises(ValueError, match=match):
        model.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_single_class_raises():
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier().fit(np.zeros((4, 2)), [1, 1, 1, 1])


CHECKED_ESTIMATORS = [
    MLPClassifier(max_iter=50, random_state=0),
    MLPRegressor(max_iter=50, random_state=0),
    MLPClassifier(solver="lbfgs", max_iter=50, random_state=0),
    MLPRegressor(solver="lbfgs", hidden_layer_sizes=(20,), random_state=0),
    MLPClassifier(
        solver="sgd",
        momentum=0.5,
        nesterovs_momentum=False,
        learning_rate="adaptive",
        learning_rate_init=0.05,
        max_iter=100,
        random_state=0,
    ),
    MLPRegressor(solver="sgd", hidden_layer_sizes=(20,), max_iter=200, random_state=0),
    MLPClassifier(early_stopping=True, max_iter=100, random_state=0),
    MLPRegressor(
        early_stopping=True, learning_rate_init=0.01, max_iter=200, random_state=0
    ),
    MLPClassifier(
        hidden_layer_sizes=(3, 2),
        activation="tanh",
        learning_rate_init=0.02,
        max_iter=300,
        random_state=0,
    ),
    MLPRegressor(
        hidden_layer_sizes=(2,),
        activation="logistic",
        solver="lbfgs",
        max_iter=200,
        random_state=0,
    ),
]


# scikit-learn's own MLPs fail the same checks with early_stopping=True.
SMALL_DATA = (
    "the check fits on so few rows that the early-stopping validation split "
    "would hold fewer than two rows (or fewer than one per class)"
)
EARLY_STOPPING_FAILURES = {
    "check_fit_score_takes_y": SMALL_DATA,
    "check_n_features_in_after_fitting": SMALL_DATA,
    "check_estimators_nan_inf": SMALL_DATA + ", which is raised before NaN is seen",
    "check_fit2d_1feature": SMALL_DATA,
    "check_regressors_no_decision_function": SMALL_DATA,
    "check_estimators_partial_fit_n_features": (
        "partial_fit refuses early_stopping=True, as in scikit-learn"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "repeating rows instead of weighting them changes which rows the "
        "early-stopping split holds out"
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "repeating rows instead of weighting them changes which rows the "
        "early-stopping split holds out"
    ),
}


def expected_failed_checks(estimator):
    return EARLY_STOPPING_FAILURES if estimator.early_stopping else {}


@parametrize_with_checks(
    CHECKED_ESTIMATORS, expected_failed_checks=expected_failed_checks
)
def test_scikit_learn_compatible(estimator, check):
    check(estimator)
