"""Behaviour a scikit-learn user relies on, checked against scikit-learn itself.

Where scikit-learn is the reference, both estimators get the same settings and
random_state and must end with the same weights (float64, to 1e-10), the same
counters and the same messages.
"""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import sklearn
import sklearn.neural_network as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from test_parity import assert_same_model, fit_both, make_task, settings

import fastmlp._multilayer_perceptron as mlp_module
from fastmlp import MLPClassifier, MLPRegressor
from fastmlp._kernels import Network

PAIRS = {
    "classifier": (MLPClassifier, sk.MLPClassifier),
    "regressor": (MLPRegressor, sk.MLPRegressor),
}


def classification(n_samples=60):
    return make_classification(n_samples=n_samples, n_features=5, random_state=0)


def lbfgs_params(**extra):
    return dict(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0, **extra)


def fit_recording_warnings(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


# ----------------------------------------------------------------------
# L-BFGS


@pytest.mark.parametrize(
    "limits, converges",
    [
        (dict(max_iter=5), False),
        (dict(max_fun=7), False),
        (dict(tol=1e-1), True),
    ],
    ids=["max_iter", "max_fun", "large-tol"],
)
def test_lbfgs_limits_match_scikit_learn(limits, converges):
    X, y = classification()
    ours = MLPClassifier(**lbfgs_params(**limits))
    theirs = sk.MLPClassifier(**lbfgs_params(**limits))
    our_warnings = fit_recording_warnings(ours, X, y)
    their_warnings = fit_recording_warnings(theirs, X, y)

    assert_same_model(ours, theirs)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    assert len(our_warnings) == len(their_warnings) == (0 if converges else 1)
    if not converges:
        expected = f"lbfgs failed to converge after {ours.n_iter_} iteration(s)"
        assert str(our_warnings[0].message).startswith(expected)
        assert str(their_warnings[0].message).startswith(expected)
    if "max_iter" in limits and not converges:
        assert ours.n_iter_ == limits["max_iter"]


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_lbfgs_same_weights_as_scikit_learn(task):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, "lbfgs", "tanh", max_iter=15)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs, rtol=1e-9)


@pytest.mark.parametrize("kind", PAIRS)
def test_lbfgs_keeps_float32(kind):
    X, y = classification()
    ours, theirs = (cls(**lbfgs_params(max_iter=20)) for cls in PAIRS[kind])
    fit_both(ours, theirs, X.astype(np.float32), y)
    assert {c.dtype for c in ours.coefs_ + ours.intercepts_} == {np.dtype("float32")}
    # scikit-learn trains L-BFGS in float64 whatever the input dtype.
    assert theirs.coefs_[0].dtype == np.float64


def test_lbfgs_verbose_prints_one_line_per_iteration(capsys):
    X, y = classification()
    model = MLPClassifier(**lbfgs_params(max_iter=400, tol=1e-3, verbose=True))
    model.fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == model.n_iter_ > 1
    assert lines[0].startswith("Iteration 1, loss = ")
    assert lines[-1] == f"Iteration {model.n_iter_}, loss = {model.loss_:.8f}"


# ----------------------------------------------------------------------
# Learning-rate schedules


@pytest.mark.parametrize(
    "schedule",
    [
        dict(learning_rate="adaptive", tol=0.1, n_iter_no_change=1),
        dict(learning_rate="constant", tol=1e-2, n_iter_no_change=2),
        dict(learning_rate="invscaling", power_t=0.25, learning_rate_init=0.1),
        dict(learning_rate="adaptive", early_stopping=True, n_iter_no_change=1),
    ],
    ids=["adaptive", "constant-stops", "invscaling", "early-stopping"],
)
def test_sgd_verbose_output_identical(schedule, capsys):
    X, y, ours_class, theirs_class = make_task("multiclass")
    params = settings("multiclass", "sgd", "relu", max_iter=25, verbose=True)
    params.update(schedule)
    ours, theirs = ours_class(**params), theirs_class(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        our_output = capsys.readouterr().out
        theirs.fit(X, y)
        their_output = capsys.readouterr().out
    assert our_output == their_output
    assert_same_model(ours, theirs)
    if schedule.get("early_stopping"):
        assert our_output.count("Validation score: ") == ours.n_iter_
        assert "Validation score did not improve more than tol" in our_output
    elif schedule["learning_rate"] == "adaptive":
        assert "Setting learning rate to 0.002000" in our_output
        assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate


def test_adaptive_schedule_stops_when_rate_is_too_small(capsys):
    X, y, ours_class, theirs_class = make_task("multiclass")
    params = settings(
        "multiclass",
        "sgd",
        "relu",
        max_iter=200,
        learning_rate="adaptive",
        learning_rate_init=1e-4,
        tol=10.0,
        n_iter_no_change=1,
        verbose=True,
    )
    ours, theirs = ours_class(**params), theirs_class(**params)
    ours.fit(X, y)
    our_output = capsys.readouterr().out
    theirs.fit(X, y)
    assert our_output == capsys.readouterr().out
    assert our_output.strip().endswith("Learning rate too small. Stopping.")
    assert ours.n_iter_ == theirs.n_iter_ < 200


# ----------------------------------------------------------------------
# Early stopping


class SplitRecorder:
    """Wraps train_test_split to keep what the estimator held out."""

    def __init__(self, monkeypatch):
        self.original = mlp_module.train_test_split
        monkeypatch.setattr(mlp_module, "train_test_split", self)

    def __call__(self, *arrays, **options):
        self.stratify = options.get("stratify")
        self.parts = self.original(*arrays, **options)
        return self.parts


def test_early_stopping_split_is_stratified(monkeypatch):
    recorder = SplitRecorder(monkeypatch)
    X, y = make_classification(
        n_samples=100, n_features=5, weights=[0.8], flip_y=0, random_state=0
    )
    params = dict(
        hidden_layer_sizes=(4,),
        early_stopping=True,
        validation_fraction=0.2,
        max_iter=3,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(**params).fit(X, y)
    y_val = recorder.parts[3].ravel()
    assert recorder.stratify is not None
    assert np.bincount(y_val).tolist() == [16, 4]


def test_early_stopping_split_not_stratified_for_multilabel(monkeypatch):
    recorder = SplitRecorder(monkeypatch)
    X, y, *_ = make_task("multilabel")
    params = dict(hidden_layer_sizes=(4,), early_stopping=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(**params, random_state=0).fit(X, y)
    assert recorder.stratify is None


@pytest.mark.parametrize("kind", PAIRS)
def test_early_stopping_restores_best_weights(kind, monkeypatch):
    recorder = SplitRecorder(monkeypatch)
    task = "multiclass" if kind == "classifier" else "regression"
    X, y, ours_class, theirs_class = make_task(task, n_samples=200)
    params = settings(task, "adam", "relu", early_stopping=True, max_iter=40)
    if kind == "classifier":
        params.update(n_iter_no_change=4, tol=1e-2, learning_rate_init=0.05)
    else:
        params.update(n_iter_no_change=2, tol=1e-2, learning_rate_init=0.3)
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)

    # The last epoch is not the best one, so restoring is observable.
    assert ours.validation_scores_[-1] < ours.best_validation_score_
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    X_val, y_val = recorder.parts[1], recorder.parts[3]
    if kind == "classifier":
        y_val = ours._label_binarizer.inverse_transform(y_val)
    assert ours.score(X_val, y_val) == pytest.approx(ours.best_validation_score_)
    # The large learning rate amplifies rounding differences a little.
    assert_same_model(ours, theirs, rtol=1e-8)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)


@pytest.mark.parametrize("kind", PAIRS)
def test_early_stopping_needs_two_validation_rows(kind):
    # 10 rows x 0.1 leaves one validation row. For a classifier the stratified
    # split itself refuses a test set smaller than the number of classes.
    X, y = classification(n_samples=10)
    params = dict(early_stopping=True, validation_fraction=0.1, max_iter=2)
    match = "validation set is too small" if kind == "regressor" else "test_size"
    for cls in PAIRS[kind]:
        with pytest.raises(ValueError, match=match):
            cls(**params).fit(X, y)


# ----------------------------------------------------------------------
# sample_weight and metadata routing


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def weighted_regression():
    X, y = make_regression(n_samples=60, n_features=4, noise=0.1, random_state=0)
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(X))
    return X, y / 100, weights


def small_regressor(**extra):
    params = dict(hidden_layer_sizes=(5,), max_iter=4, batch_size=16)
    params.update(learning_rate_init=0.01, random_state=0, **extra)
    return MLPRegressor(**params)


def fit_quietly(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def assert_same_weights(a, b):
    for mine, other in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, other, rtol=1e-12, atol=1e-14)


def assert_different_weights(a, b):
    assert not all(
        np.allclose(mine, other)
        for mine, other in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


def test_sample_weight_in_partial_fit_matches():
    X, y, weights = weighted_regression()
    params = settings("regression", "sgd", "relu", shuffle=False)
    ours, theirs = MLPRegressor(**params), sk.MLPRegressor(**params)
    for batch in np.array_split(np.arange(len(X)), 3):
        ours.partial_fit(X[batch], y[batch], sample_weight=weights[batch])
        theirs.partial_fit(X[batch], y[batch], sample_weight=weights[batch])
    assert_same_model(ours, theirs)


def test_sample_weight_routed_through_pipeline(routing):
    X, y, weights = weighted_regression()
    pipeline = make_pipeline(
        StandardScaler().set_fit_request(sample_weight=False),
        small_regressor().set_fit_request(sample_weight=True),
    )
    fit_quietly(pipeline, X, y, sample_weight=weights)
    X_scaled = StandardScaler().fit_transform(X)
    direct = fit_quietly(small_regressor(), X_scaled, y, sample_weight=weights)
    assert_same_weights(pipeline[-1], direct)
    assert_different_weights(pipeline[-1], fit_quietly(small_regressor(), X_scaled, y))


def test_sample_weight_routed_through_grid_search(routing):
    X, y, weights = weighted_regression()
    estimator = small_regressor().set_fit_request(sample_weight=True)
    estimator.set_score_request(sample_weight=False)
    search = GridSearchCV(estimator, {"alpha": [1e-4, 1e-2]}, cv=2)
    fit_quietly(search, X, y, sample_weight=weights)
    best_alpha = search.best_params_["alpha"]
    direct = small_regressor(alpha=best_alpha)
    assert_same_weights(
        search.best_estimator_, fit_quietly(direct, X, y, sample_weight=weights)
    )


def test_sample_weight_routed_through_cross_validate(routing):
    X, y, weights = weighted_regression()
    estimator = small_regressor().set_fit_request(sample_weight=True)
    estimator.set_score_request(sample_weight=True)
    cv = KFold(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(
            estimator,
            X,
            y,
            cv=cv,
            params={"sample_weight": weights},
            return_estimator=True,
        )
    for (train, test), fitted, score in zip(
        cv.split(X), result["estimator"], result["test_score"]
    ):
        direct = fit_quietly(
            small_regressor(), X[train], y[train], sample_weight=weights[train]
        )
        assert_same_weights(fitted, direct)
        expected = direct.score(X[test], y[test], sample_weight=weights[test])
        assert score == pytest.approx(expected)


def test_sample_weight_without_request_is_rejected(routing):
    X, y, weights = weighted_regression()
    pipeline = make_pipeline(StandardScaler(), small_regressor())
    with pytest.raises(ValueError, match="sample_weight"):
        pipeline.fit(X, y, sample_weight=weights)


# ----------------------------------------------------------------------
# Targets, labels and feature names


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "bird"]),
        np.array([-7, 3, 100]),
        np.array([1.0, 2.0, 5.0]),
        np.array(["no", "yes"], dtype=object),
    ],
    ids=["strings", "integers", "floats", "binary-objects"],
)
def test_arbitrary_labels(labels):
    X, y = make_classification(
        n_samples=90, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    y = labels[y % len(labels)]
    params = settings("multiclass", "adam", "relu")
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.predict(X).dtype == theirs.predict(X).dtype
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert set(ours.predict(X)) <= set(labels)


@pytest.mark.parametrize("task", ["multilabel", "multioutput"])
def test_multi_output_targets(task):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, "adam", "relu")
    ours, theirs = ours_class(**params), theirs_class(**params)
    fit_both(ours, theirs, X, y)
    assert_same_model(ours, theirs)
    assert ours.predict(X).shape == y.shape
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)
    if task == "multilabel":
        assert ours.predict_proba(X).shape == y.shape
        np.testing.assert_allclose(
            ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10
        )


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_column_vector_target_is_raveled_with_warning(task):
    X, y, ours_class, theirs_class = make_task(task)
    params = settings(task, "adam", "relu")
    column = ours_class(**params)
    with pytest.warns(DataConversionWarning):
        fit_quietly(column, X, y.reshape(-1, 1))
    with pytest.warns(DataConversionWarning):
        fit_quietly(theirs_class(**params), X, y.reshape(-1, 1))
    flat = fit_quietly(ours_class(**params), X, y)
    assert_same_weights(column, flat)
    assert column.predict(X).shape == (len(X),)


@pytest.mark.parametrize("kind", PAIRS)
def test_feature_names(kind):
    pd = pytest.importorskip("pandas")
    X, y = classification()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ours, theirs = (cls(**lbfgs_params(max_iter=5)) for cls in PAIRS[kind])
    fit_both(ours, theirs, frame, y)
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    np.testing.assert_allclose(ours.predict(frame), theirs.predict(frame))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        ours.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        ours.predict(frame[frame.columns[::-1]])
    plain = fit_quietly(PAIRS[kind][0](**lbfgs_params(max_iter=5)), X, y)
    assert not hasattr(plain, "feature_names_in_")


# ----------------------------------------------------------------------
# Ctrl-C and tags


@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_keeps_partial_model(early_stopping, monkeypatch):
    original_epoch = Network.epoch
    calls = []

    def interrupted_on_third_call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Network, "epoch", interrupted_on_third_call)
    X, y, *_ = make_task("multiclass")
    params = settings("multiclass", "adam", "relu", max_iter=50)
    model = MLPClassifier(**params, early_stopping=early_stopping)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        model.fit(X, y)

    assert len(calls) == 3
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    assert model.predict_proba(X).shape == (len(X), 3)
    monkeypatch.setattr(Network, "epoch", original_epoch)
    reference = fit_quietly(
        MLPClassifier(**dict(params, max_iter=2), early_stopping=early_stopping), X, y
    )
    assert_same_weights(model, reference)


def test_several_multiclass_columns_are_rejected_as_by_sklearn():
    # What the classifier's multi_output tag (False) promises.
    X = np.random.default_rng(0).random((30, 3))
    y = np.tile(np.arange(3), 20).reshape(30, 2)
    messages = []
    for cls in PAIRS["classifier"]:
        with pytest.raises(ValueError) as error:
            cls(max_iter=2).fit(X, y)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "Multioutput target data is not supported" in messages[0]


@pytest.mark.parametrize("kind", PAIRS)
def test_tags_declare_what_is_supported(kind):
    ours, theirs = (get_tags(cls()) for cls in PAIRS[kind])
    assert ours.input_tags.sparse and ours.input_tags.two_d_array
    assert not ours.input_tags.allow_nan and not ours.input_tags.string
    assert ours.target_tags.required and ours.target_tags.single_output
    if kind == "classifier":
        # Multilabel targets are declared by multi_label; multi_output would
        # claim several multiclass columns, which neither library fits.
        assert not ours.target_tags.multi_output
        assert ours.classifier_tags.multi_label and ours.classifier_tags.multi_class
    else:
        # scikit-learn's MLPRegressor fits several outputs but does not declare
        # it; this is the only tag where ours differ.
        assert ours.target_tags.multi_output and not theirs.target_tags.multi_output
    assert ours.estimator_type == theirs.estimator_type
    assert replace(ours, target_tags=theirs.target_tags) == theirs


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reported_losses_have_scikit_learns_types(kind, solver, dtype):
    # The kernels sum losses in float64; scikit-learn's regressor reports
    # float32 ones for float32 data, its classifier float64 for any data.
    X, y, *classes = make_task("multiclass" if kind == "classifier" else "regression")
    X = X.astype(dtype)
    if kind == "regressor":
        y = y.astype(dtype)
    fitted = []
    for estimator_class in classes:
        model = estimator_class(hidden_layer_sizes=(4,), solver=solver, max_iter=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(model.fit(X, y))
    for name in ("loss_", "best_loss_"):
        # (Absent after lbfgs, from both.)
        ours, theirs = (getattr(model, name, "absent") for model in fitted)
        assert type(ours) is type(theirs)
    if solver != "lbfgs":
        assert [type(v) for v in fitted[0].loss_curve_] == [
            type(v) for v in fitted[1].loss_curve_
        ]
