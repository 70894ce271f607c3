"""Where scikit-learn 1.9 is wrong and fastmlp deliberately differs.

Each test shows scikit-learn's behaviour next to fastmlp's, so that a change on
either side is noticed.
"""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
import sklearn.neural_network._multilayer_perceptron as sk_module
from sklearn.exceptions import ConvergenceWarning
from test_parity import make_task, settings

from fastmlp import MLPClassifier, MLPRegressor
from fastmlp._kernels import Network


def fit_quietly(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def our_loss_and_gradient(model, params, X, y):
    network = model._network(np.float64)
    grad = np.empty_like(params)
    target = np.ascontiguousarray(y, dtype=np.float64)
    loss = network.loss_and_gradient(
        params, X, target, np.ones(len(X)), model.alpha, grad, 1
    )
    return loss, grad


def their_loss_and_gradient(model, params, X, y):
    n_layers = model.n_layers_
    return model._loss_grad_lbfgs(
        params,
        X,
        y,
        None,
        [X] + [None] * (n_layers - 1),
        [None] * (n_layers - 1),
        [np.empty_like(c) for c in model.coefs_],
        [np.empty_like(b) for b in model.intercepts_],
    )


@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_lbfgs_multi_output_gradient_is_gradient_of_reported_loss(alpha):
    X, y, *_ = make_task("multioutput")
    params = settings("multioutput", "lbfgs", "tanh", max_iter=5, alpha=alpha)
    ours = fit_quietly(MLPRegressor(**params), X, y)
    theirs = fit_quietly(sk.MLPRegressor(**params), X, y)
    packed = ours._network(np.float64).pack(ours.coefs_, ours.intercepts_)

    loss, grad = our_loss_and_gradient(ours, packed.copy(), X, y)
    their_loss, their_grad = their_loss_and_gradient(theirs, packed.copy(), X, y)
    assert loss == pytest.approx(ours.loss_, rel=1e-12)
    assert their_loss == pytest.approx(loss, rel=1e-12)

    # Central differences of the reported loss along a few coordinates.
    step = 1e-6
    coordinates = np.random.default_rng(0).choice(len(packed), 12, replace=False)
    numerical = []
    for i in coordinates:
        shifted = [packed.copy(), packed.copy()]
        shifted[0][i] += step
        shifted[1][i] -= step
        up, down = (our_loss_and_gradient(ours, p, X, y)[0] for p in shifted)
        numerical.append((up - down) / (2 * step))
    np.testing.assert_allclose(grad[coordinates], numerical, rtol=1e-5, atol=1e-8)
    # scikit-learn's gradient of the data term is n_outputs (here 3) times the
    # true one; only the L2 penalty's part, alpha * W / n_samples, is right.
    penalty = alpha * packed / len(X)
    penalty[sum(c.size for c in ours.coefs_) :] = 0.0
    np.testing.assert_allclose(
        their_grad[coordinates] - penalty[coordinates],
        3 * (np.array(numerical) - penalty[coordinates]),
        rtol=1e-5,
        atol=1e-8,
    )


def test_single_class_raises_clearly():
    X, y = np.random.default_rng(0).standard_normal((6, 2)), ["a"] * 6
    theirs = fit_quietly(sk.MLPClassifier(max_iter=3), X, y)
    # scikit-learn reports one class but predicts two probability columns.
    assert len(theirs.classes_) == 1
    assert theirs.predict_proba(X).shape == (6, 2)
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier(max_iter=3).fit(X, y)


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_changed_hidden_layer_sizes_raise_instead_of_training_old_network(how):
    X, y, *_ = make_task("regression")
    models = []
    for Estimator in (sk.MLPRegressor, MLPRegressor):
        model = Estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
        model = fit_quietly(model, X, y)
        model.set_params(hidden_layer_sizes=(6,), warm_start=how == "warm_start")
        models.append(model)
    theirs, ours = models

    train = "fit" if how == "warm_start" else "partial_fit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        getattr(theirs, train)(X, y)
    # scikit-learn silently keeps training the (4,) network.
    assert [c.shape[1] for c in theirs.coefs_] == [4, 1]
    with pytest.raises(ValueError, match="layer sizes"):
        getattr(ours, train)(X, y)


def test_no_partial_fit_for_lbfgs():
    X, y, *_ = make_task("regression")
    for Estimator in (MLPClassifier, MLPRegressor):
        assert not hasattr(Estimator(solver="lbfgs"), "partial_fit")
        assert hasattr(Estimator(solver="sgd"), "partial_fit")
    assert not hasattr(sk.MLPClassifier(solver="lbfgs"), "partial_fit")
    # scikit-learn's regressor offers partial_fit and runs a whole L-BFGS fit.
    theirs = sk.MLPRegressor(solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.partial_fit(X, y)
    assert theirs.n_iter_ == 20


@pytest.mark.parametrize("Estimators", [(sk.MLPRegressor, MLPRegressor)])
def test_warm_start_refit_is_not_stopped_by_the_previous_fit(Estimators):
    X, y, *_ = make_task("regression")
    params = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=300)
    params.update(tol=1e-3, n_iter_no_change=2, random_state=0)
    n_iters = []
    for Estimator in Estimators:
        model = fit_quietly(Estimator(**params), X, y)
        assert model.n_iter_ < 300  # stopped by the stopping rule
        model.set_params(warm_start=True)
        fit_quietly(model, X, y)
        n_iters.append(model.n_iter_)
        assert len(model.loss_curve_) == model.t_ // len(X)
    # scikit-learn's stale no-improvement count ends the refit after one epoch;
    # ours gets the n_iter_no_change + 1 epochs of a new stopping rule.
    assert n_iters[0] == 1
    assert n_iters[1] >= 3


class OrderRecorder:
    """Records the sample order of each epoch of either implementation."""

    def __init__(self, monkeypatch):
        self.ours, self.theirs = [], []
        original_epoch, original_shuffle = Network.epoch, sk_module.shuffle

        def epoch(network, params, state, X, target, weights, order, *args):
            self.ours.append(order.copy())
            return original_epoch(
                network, params, state, X, target, weights, order, *args
            )

        def shuffle(*arrays, **options):
            shuffled = original_shuffle(*arrays, **options)
            self.theirs.append(shuffled.copy())
            return shuffled

        monkeypatch.setattr(Network, "epoch", epoch)
        monkeypatch.setattr(sk_module, "shuffle", shuffle)


def test_repeated_partial_fit_draws_new_shuffles(monkeypatch):
    recorder = OrderRecorder(monkeypatch)
    X, y, *_ = make_task("multiclass")
    params = settings("multiclass", "sgd", "relu", shuffle=True)
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    for _ in range(3):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
    assert len(recorder.ours) == len(recorder.theirs) == 3
    # scikit-learn reseeds from random_state on every call, so every call after
    # the first (whose draws start with the initial weights) repeats one order.
    np.testing.assert_array_equal(recorder.theirs[1], recorder.theirs[2])
    assert not (recorder.ours[1] == recorder.ours[0]).all()
    assert not (recorder.ours[2] == recorder.ours[1]).all()
    # The first call still shuffles exactly as scikit-learn does.
    np.testing.assert_array_equal(recorder.ours[0], recorder.theirs[0])
