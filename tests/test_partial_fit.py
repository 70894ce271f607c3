"""warm_start and partial_fit against scikit-learn, call by call.

shuffle=False keeps the sample order of both estimators comparable (scikit-learn
reseeds its shuffles on every partial_fit call, fastmlp does not; see
test_sklearn_fixes.py).
"""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from test_parity import assert_same_model, fit_both, make_task, settings

from fastmlp import MLPClassifier, MLPRegressor

CLASSES = np.array([0, 1, 2])


def batches(n_samples, n_batches=3):
    return np.array_split(np.arange(n_samples), n_batches)


def sorted_multiclass():
    """Multiclass data whose first batch holds no sample of class 2."""
    X, y, *_ = make_task("multiclass", n_samples=90)
    order = np.argsort(y == 2, kind="stable")
    return X[order], y[order]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel", "regression"])
def test_partial_fit_sequence_matches(task, solver):
    X, y, ours_class, theirs_class = make_task(task)
    if task == "multiclass":
        X, y = sorted_multiclass()
    params = settings(task, solver, "relu", shuffle=False)
    ours, theirs = ours_class(**params), theirs_class(**params)
    classes = {}
    if task in ("multiclass", "binary"):
        classes = dict(classes=np.unique(y))
    elif task == "multilabel":
        # Required on the first call although the indicator columns say it all.
        classes = dict(classes=np.arange(y.shape[1]))
    for call, batch in enumerate(batches(len(X)), start=1):
        ours.partial_fit(X[batch], y[batch], **classes)
        theirs.partial_fit(X[batch], y[batch], **classes)
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert len(ours.loss_curve_) == call
        assert ours.t_ == batch[-1] + 1
        assert_same_model(ours, theirs)
    if task == "multiclass":
        # Class 2 was declared up front and has an output unit from the start.
        assert 2 not in y[batches(len(X))[0]]
        assert ours.predict_proba(X).shape == (len(X), 3)
        np.testing.assert_array_equal(ours.classes_, CLASSES)


def test_partial_fit_after_fit_continues_the_same_network():
    X, y, ours_class, theirs_class = make_task("multiclass")
    params = settings("multiclass", "adam", "relu", shuffle=False, max_iter=3)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    assert_same_model(ours, theirs)
    assert len(ours.loss_curve_) == 4 and ours.t_ == 4 * len(X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_warm_start_fit_matches(task):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, "sgd", "tanh", max_iter=4)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    for model in (ours, theirs):
        model.set_params(warm_start=True, max_iter=3)
    fit_both(ours, theirs, X, y)
    assert ours.n_iter_ == 3 and ours.t_ == 7 * len(X)
    assert len(ours.loss_curve_) == 7
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_warm_start_keeps_histories_like_scikit_learn(early_stopping):
    X, y, ours_class, theirs_class = make_task("multiclass", n_samples=150)
    params = settings("multiclass", "adam", "relu", max_iter=5)
    params.update(early_stopping=early_stopping, learning_rate_init=0.05)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    for model in (ours, theirs):
        model.set_params(warm_start=True, max_iter=4)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
    assert len(ours.loss_curve_) == 9
    if early_stopping:
        assert len(ours.validation_scores_) == 9
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_validation_score_ == theirs.best_validation_score_
    else:
        assert ours.best_loss_ == min(ours.loss_curve_)
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-12)


def test_partial_fit_sample_weight_matches():
    X, y = sorted_multiclass()
    weights = np.random.default_rng(3).uniform(0.2, 2.0, len(X))
    params = settings("multiclass", "adam", "relu", shuffle=False)
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    for batch in batches(len(X)):
        ours.partial_fit(X[batch], y[batch], weights[batch], classes=CLASSES)
        theirs.partial_fit(X[batch], y[batch], weights[batch], classes=CLASSES)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("Estimator", [MLPClassifier, sk.MLPClassifier])
def test_classes_required_on_first_call(Estimator):
    X, y = sorted_multiclass()
    with pytest.raises(ValueError, match="classes must be passed on the first"):
        Estimator().partial_fit(X, y)


@pytest.mark.parametrize("Estimator", [MLPClassifier, sk.MLPClassifier])
def test_undeclared_label_raises(Estimator):
    X, y = sorted_multiclass()
    model = Estimator(hidden_layer_sizes=(3,)).partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match="classes not in"):
        model.partial_fit(X[:4], [0, 1, 3, 0])


@pytest.mark.parametrize("Estimator", [MLPClassifier, sk.MLPClassifier])
def test_changed_classes_argument_raises(Estimator):
    X, y = sorted_multiclass()
    model = Estimator(hidden_layer_sizes=(3,)).partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match="classes"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])


@pytest.mark.parametrize(
    "Estimator", [MLPClassifier, MLPRegressor, sk.MLPClassifier, sk.MLPRegressor]
)
def test_partial_fit_with_early_stopping_raises(Estimator):
    X, y = sorted_multiclass()
    model = Estimator(early_stopping=True)
    extra = dict(classes=CLASSES) if "Classifier" in Estimator.__name__ else {}
    with pytest.raises(ValueError, match="partial_fit does not support early"):
        model.partial_fit(X, y, **extra)


@pytest.mark.parametrize("Estimator", [MLPClassifier, sk.MLPClassifier])
def test_warm_start_with_other_classes_raises(Estimator):
    X, y = sorted_multiclass()
    model = Estimator(hidden_layer_sizes=(3,), max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        model.fit(X[y < 2], y[y < 2])


def test_lbfgs_warm_start_matches():
    X, y, ours_class, theirs_class = make_task("multiclass")
    params = settings("multiclass", "lbfgs", "tanh", max_iter=5)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    for model in (ours, theirs):
        model.set_params(warm_start=True)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs, rtol=1e-9)


def test_partial_fit_with_string_labels_matches():
    X, y = sorted_multiclass()
    y = np.array(["b", "a", "c"])[y]
    params = settings("multiclass", "sgd", "relu", shuffle=False)
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    for batch in batches(len(X)):
        ours.partial_fit(X[batch], y[batch], classes=["c", "a", "b"])
        theirs.partial_fit(X[batch], y[batch], classes=["c", "a", "b"])
    assert_same_model(ours, theirs)
    np.testing.assert_array_equal(ours.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
