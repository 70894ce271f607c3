"""MLPClassifier and MLPRegressor: scikit-learn estimators over the compiled core.

This module holds the estimator classes and the Python loop over epochs (the
stopping rule, verbose lines, warnings, early stopping, L-BFGS through SciPy).
All array work per mini-batch happens in ``fastmlp._kernels``; nothing here
imports Numba.
"""

import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.optimize
import scipy.sparse
import sklearn
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning, InconsistentVersionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._kernels import PREDICT_ROWS, ThreadCountTuner, kernel_ready, network
from ._stochastic import StochasticOptimizer
from ._threads import effective_n_threads, single_threaded_blas
from ._validation import (
    PARAMETER_CONSTRAINTS,
    REGRESSOR_CONSTRAINTS,
    check_fits_dtype,
    check_poisson_targets,
    check_validation_fraction,
    hidden_layer_sizes_list,
)

_STOCHASTIC_SOLVERS = ("sgd", "adam")

# Non-finite training data only reach the kernels when scikit-learn's input
# checks are off, so a divergence then names the data rather than the settings.
_NON_FINITE_DATA = (
    "X, y or sample_weight hold NaN or infinite values, which fit did not "
    "check because scikit-learn's assume_finite=True is set; remove or impute "
    "them (e.g. with sklearn.impute.SimpleImputer)."
)


def _penalty_overflow_message(alpha, coefs):
    """The reason to give when the L2 penalty alpha / 2 * ||W||^2 of these
    weights is too large for float64, else None: a huge alpha makes the loss
    infinite whatever the learning rate or the data."""
    with np.errstate(over="ignore"):
        squares = sum(
            float(np.sum(np.square(coef, dtype=np.float64))) for coef in coefs
        )
        penalty = 0.5 * alpha * squares
    # Weights that a too-large learning rate blew up overflow with any alpha;
    # only name alpha when the weights alone were representable and alpha
    # (more than 1) is what pushed the penalty over.
    if np.isfinite(penalty) or not np.isfinite(squares) or alpha <= 1.0:
        return None
    return (
        f"The L2 penalty overflows: alpha={alpha} times the squared weights "
        f"({squares:.3g}) is too large for float64; lower alpha."
    )


def _holds_non_finite(*arrays):
    """Whether any of these dense or sparse arrays holds NaN or infinity."""
    return any(
        not np.isfinite(array.data if scipy.sparse.issparse(array) else array).all()
        for array in arrays
    )


_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_FLOAT32_REMEDY = (
    "scale the data (e.g. with sklearn.preprocessing.StandardScaler), or train "
    "on float64 X, which gives a float64 network."
)

# Version of the layout of a pickled estimator's state (fitted attributes and
# the private optimizer state that partial_fit and warm_start continue from).
# Raise it whenever that layout changes incompatibly; loading a pickle of any
# other format then fails with a clear message instead of a model that breaks
# later.
PERSISTENCE_FORMAT = 1
_FORMAT_KEY = "_fastmlp_persistence_format"
_VERSION_KEY = "_fastmlp_version"
_SKLEARN_VERSION_KEY = "_sklearn_version"


def _shuffled(order, random_state):
    """``order`` in a new random order, the one ``sklearn.utils.shuffle(order,
    random_state=random_state)`` gives: the same draw from the same generator
    (a permutation of ``arange(len(order))`` by ``RandomState.shuffle``), so
    that the mini-batches match scikit-learn's. That function's input checks
    cost 0.1 ms per epoch (0.12 ms against 0.02 ms for the 1797 digits
    samples), about 5 ms of a 60-80 ms fit of 50 epochs on them."""
    permutation = np.arange(len(order))
    random_state.shuffle(permutation)
    return order[permutation]


def _check_batch_weights(weights, order, batch_size):
    """Raise if a mini-batch's sample weights sum to zero: its loss and
    gradient are divided by that sum."""
    sums = np.add.reduceat(weights[order], np.arange(0, len(order), batch_size))
    empty = np.flatnonzero(sums <= 0)
    if len(empty):
        start = int(empty[0]) * batch_size
        raise ValueError(
            f"The sample weights of mini-batch {int(empty[0]) + 1} (samples "
            f"{start} to {min(start + batch_size, len(order)) - 1} in this "
            "epoch's order) sum to zero, so its loss is undefined. Give every "
            "mini-batch some positive weight: use a larger batch_size, fewer "
            "zero weights, or drop the zero-weight samples."
        )


class BaseMultilayerPerceptron(BaseEstimator, metaclass=ABCMeta):
    """Shared fitting and prediction of MLPClassifier and MLPRegressor.

    Not meant to be used directly; use the two subclasses.
    """

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        n_jobs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------
    # Persistence

    def __getstate__(self):
        from . import __version__

        state = super().__getstate__()
        # Timings of this machine: neither part of the model nor useful on
        # another, and they would make equal models pickle differently.
        state.pop("_thread_tuner", None)
        state[_FORMAT_KEY] = PERSISTENCE_FORMAT
        state[_VERSION_KEY] = __version__
        # scikit-learn records its version only for its own estimators.
        state[_SKLEARN_VERSION_KEY] = sklearn.__version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved_format = state.pop(_FORMAT_KEY, None)
        saved_version = state.pop(_VERSION_KEY, "unknown")
        if saved_format != PERSISTENCE_FORMAT:
            from . import __version__

            raise ValueError(
                f"This {type(self).__name__} was saved by fastmlp {saved_version} "
                f"in persistence format {saved_format}, but fastmlp {__version__} "
                f"reads format {PERSISTENCE_FORMAT} only. Load it with the fastmlp "
                "version that saved it, or train the model again."
            )
        # scikit-learn warns about a version change only for its own
        # estimators; a fastmlp model holds scikit-learn objects too (its
        # label binarizer), so the same warning is given here.
        saved_sklearn = state.pop(_SKLEARN_VERSION_KEY, "unknown")
        if saved_sklearn != sklearn.__version__:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_sklearn_version=sklearn.__version__,
                    original_sklearn_version=saved_sklearn,
                )
            )
        super().__setstate__(state)

    # ------------------------------------------------------------------
    # Network set-up

    def _network(self, dtype):
        """Layout and compiled calls for the current coefs_ shapes."""
        units = (self.coefs_[0].shape[0], *(c.shape[1] for c in self.coefs_))
        return network(
            units, self.activation, self.out_activation_, np.dtype(dtype).name
        )

    def _initialize(self, y, layer_units, dtype):
        """Set the fitted attributes of a new network and draw its weights."""
        # An optimizer state belongs to the weights it was made for.
        if hasattr(self, "_optimizer"):
            del self._optimizer
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()

        # Glorot-uniform initialisation: weights and biases of each layer are
        # drawn from U(-b, b), b = sqrt(factor / (fan_in + fan_out)), with
        # factor 2 for logistic units and 6 otherwise. The draws come from
        # self._random_state in the order weights, biases, layer by layer.
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))

        if self.solver in _STOCHASTIC_SOLVERS:
            self._start_stochastic_history()

    def _start_stochastic_history(self):
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _check_same_network(self, layer_units):
        """A warm start or partial_fit must continue the network it has."""
        fitted_units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        fitted = (fitted_units, self.out_activation_)
        asked = (layer_units, self._output_activation())
        if fitted != asked:
            raise ValueError(
                f"The fitted network has layer sizes {fitted_units} and output "
                f"activation {self.out_activation_!r}, but the current parameters "
                f"and data ask for {layer_units} and {asked[1]!r}. warm_start "
                "and partial_fit continue training the fitted network; set "
                "warm_start=False (or call fit) to train a new one."
            )

    # ------------------------------------------------------------------
    # Fitting

    def _fit(self, X, y, sample_weight=None, incremental=False):
        check_validation_fraction(self.early_stopping, self.validation_fraction)
        hidden_layer_sizes = hidden_layer_sizes_list(self.hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        if not first_pass:
            # Training goes on from coefs_ and intercepts_, which may have been
            # assigned since: they are copied into the kernels' buffer by
            # shape, so a missing or broadcast array would go unnoticed.
            self._check_fitted_weights()
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if not first_pass:
            # Continue in the dtype the network was trained in.
            check_fits_dtype(X, self.coefs_[0].dtype, "X", _FLOAT32_REMEDY)
            X = X.astype(self.coefs_[0].dtype, copy=False)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        check_fits_dtype(y, X.dtype, "y", _FLOAT32_REMEDY)
        # Once per fit, into the layout the kernels read without copying.
        X = kernel_ready(X, X.dtype)
        target = kernel_ready(y, X.dtype)
        weights = kernel_ready(self._sample_weights(sample_weight, X), X.dtype)

        layer_units = [X.shape[1], *hidden_layer_sizes, y.shape[1]]
        self._random_state = self._fit_random_state(incremental)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        else:
            self._check_same_network(layer_units)

        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, target, weights, sample_weight, incremental)
        elif self.solver == "lbfgs":
            self._fit_lbfgs(X, target, weights)
        else:
            # Reachable only with scikit-learn's parameter validation skipped.
            raise ValueError(
                f"Unknown solver {self.solver!r}: use 'lbfgs', 'sgd' or 'adam'."
            )
        return self

    def _fit_random_state(self, incremental):
        """Random state for this call.

        fit starts from ``random_state`` afresh, as scikit-learn does. Repeated
        partial_fit calls continue one stream instead, so that an integer
        random_state does not shuffle every batch of calls in the same order.
        """
        if incremental and getattr(self, "_partial_fit_random_state", None):
            return self._partial_fit_random_state
        random_state = check_random_state(self.random_state)
        if incremental:
            self._partial_fit_random_state = random_state
        else:
            self._partial_fit_random_state = None
        return random_state

    def _tuner(self, n_threads):
        """The tuner that picks the number of threads (see ThreadCountTuner).

        One tuner serves all fits of this estimator, so that what it measured
        keeps serving from one partial_fit call (one epoch) to the next.
        """
        tuner = getattr(self, "_thread_tuner", None)
        if type(tuner) is not ThreadCountTuner or tuner.sizes[0] != n_threads:
            tuner = self._thread_tuner = ThreadCountTuner(n_threads)
        return tuner

    def _sample_weights(self, sample_weight, X):
        """Sample weights in X's dtype, all ones when none are given."""
        if sample_weight is None:
            return np.ones(X.shape[0], dtype=X.dtype)
        weights = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        return np.ascontiguousarray(weights)

    def _fit_stochastic(self, X, y, target, weights, sample_weight, incremental):
        """Mini-batch training with 'sgd' or 'adam', one compiled call per epoch."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        network = self._network(X.dtype)
        if not hasattr(self, "loss_curve_"):
            # The network was trained by L-BFGS, which keeps no such history.
            self._start_stochastic_history()
        if (
            not incremental
            or not hasattr(self, "_optimizer")
            # Weights of another network assigned since (the kernels would
            # read the state without bounds checks).
            or not self._optimizer.serves(network.n_params, X.dtype)
        ):
            self._optimizer = StochasticOptimizer(self, network.n_params, X.dtype)
            # A new fit counts epochs without improvement afresh: a count left
            # by an earlier fit would end a warm start after one epoch. The
            # best loss or score so far and the score history carry over, as
            # loss_curve_ does (and as in scikit-learn).
            self._no_improvement_count = 0
            if self.early_stopping and self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
            if not self.early_stopping and self.best_loss_ is None:
                self.best_loss_ = np.inf

        (X_train, target_train, weights_train), validation = self._split(
            X, y, target, weights, sample_weight
        )
        n_samples = X_train.shape[0]
        batch_size = self._batch_size(n_samples)
        workspace = network.workspace(
            min(batch_size, n_samples), gather_rows=not scipy.sparse.issparse(X_train)
        )
        n_threads = effective_n_threads(self.n_jobs)
        tuner = self._tuner(n_threads)

        params = network.pack(self.coefs_, self.intercepts_)
        self.coefs_, self.intercepts_ = network.views(params)
        if self.early_stopping:
            self._best_params = params.copy()
        order = np.arange(n_samples, dtype=np.int64)
        self.n_iter_ = 0  # per call; t_ counts samples across calls
        # Weights and optimizer state before the current epoch, restored if
        # the epoch diverges or fails, so that an error never leaves a model of
        # NaN or half-updated weights.
        before_epoch = [params, self._optimizer.state, self._optimizer.adam_step]
        before_epoch = [(array, np.empty_like(array)) for array in before_epoch]
        in_epoch = False
        try:
            # BLAS stays on one thread for the whole loop (see _threads).
            with single_threaded_blas():
                # The batches change only when the order does.
                if sample_weight is not None and not self.shuffle:
                    _check_batch_weights(weights_train, order, batch_size)
                for _ in range(self.max_iter):
                    if self.shuffle:
                        order = _shuffled(order, self._random_state)
                        if sample_weight is not None:
                            _check_batch_weights(weights_train, order, batch_size)
                    for array, saved in before_epoch:
                        saved[...] = array
                    in_epoch = True
                    accumulated_loss = network.epoch(
                        params,
                        self._optimizer.state,
                        X_train,
                        target_train,
                        weights_train,
                        order,
                        batch_size,
                        # The solver the optimizer state was made for: like
                        # scikit-learn, partial_fit goes on with it after
                        # set_params(solver=...).
                        self._optimizer.solver,
                        self._optimizer.settings(self.alpha),
                        self._optimizer.adam_step,
                        self._optimizer.nesterov,
                        tuner,
                        workspace,
                    )
                    in_epoch = False
                    self.n_iter_ += 1
                    self.loss_ = self._reported_loss(
                        accumulated_loss / n_samples, X.dtype
                    )
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    # Checked in Python: the kernels' fast-math flags keep NaN and
                    # inf, but a NaN weight can hide behind a relu's max().
                    if not (np.isfinite(self.loss_) and np.isfinite(params).all()):
                        self._diverged(
                            before_epoch,
                            n_samples,
                            (X_train, target_train, weights_train),
                        )
                        break

                    self._update_no_improvement_count(validation, params)
                    self._optimizer.iteration_ends(self.t_)
                    if self._no_improvement_count > self.n_iter_no_change:
                        if self._optimizer.trigger_stopping(
                            self._stopping_message(), self.verbose
                        ):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            "Stochastic Optimizer: Maximum iterations "
                            f"({self.max_iter}) reached and the optimization "
                            "hasn't converged yet.",
                            ConvergenceWarning,
                        )
        except BaseException as error:
            # A fault inside the compiled epoch (a helper thread that could
            # not start), or Ctrl-C between two of its segments, leaves the
            # weights part of the way through the epoch: back to where it
            # began, so that the model is the one of n_iter_ epochs.
            if in_epoch:
                for array, saved in before_epoch:
                    array[...] = saved
            if not isinstance(error, KeyboardInterrupt):
                raise
            warnings.warn("Training interrupted by user.")

        if self.early_stopping:
            params[...] = self._best_params
            del self._best_params

    def _diverged(self, before_epoch, n_samples, training_data):
        """The loss or the weights went non-finite: keep the best weights (early
        stopping) or restore those from before the epoch and raise."""
        if self.early_stopping and np.isfinite(self._best_params).all():
            warnings.warn(
                f"Training diverged at iteration {self.n_iter_} (the loss became "
                f"{self.loss_}); the weights with the best validation score are "
                "kept. Lower learning_rate_init or scale the input data.",
                ConvergenceWarning,
            )
            return
        diverged_loss = self.loss_
        for array, saved in before_epoch:
            array[...] = saved
        self.loss_curve_.pop()
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan
        self.n_iter_ -= 1
        self.t_ -= n_samples
        what = (
            "the weights overflowed"
            if np.isfinite(diverged_loss)
            else f"the loss became {diverged_loss}"
        )
        cause = self._certain_divergence_cause(*training_data) or (
            f"The learning rate (learning_rate_init={self.learning_rate_init}) "
            "is likely too large for this data, or the input features are not "
            "scaled; lower learning_rate_init or standardise X (e.g. with "
            "sklearn.preprocessing.StandardScaler)."
            f"{self._target_scale_hint(training_data[1])}"
        )
        raise ValueError(
            f"Training diverged at iteration {self.n_iter_ + 1}: {what}. {cause} "
            "The weights from before this iteration are kept on the estimator."
        )

    def _certain_divergence_cause(self, X, target, weights):
        """The sentence naming what made training diverge when that is known
        for certain (non-finite data, an L2 penalty beyond float64), else
        None; the weights are those training went on from."""
        if _holds_non_finite(X, target, weights):
            return _NON_FINITE_DATA
        return _penalty_overflow_message(self.alpha, self.coefs_)

    def _target_scale_hint(self, target):
        """A sentence on the targets' scale when it may explain a divergence
        (regression only: class targets are 0 or 1)."""
        return ""

    def _reported_loss(self, loss, dtype):
        """The loss as loss_ and loss_curve_ hold it. The kernels sum it in
        float64; scikit-learn's classifier reports float64 for any data."""
        return np.float64(loss)

    def _stopping_message(self):
        if self.early_stopping:
            return (
                f"Validation score did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs."
            )
        return (
            f"Training loss did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is "
                "going to be clipped"
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _split(self, X, y, target, weights, sample_weight):
        """Training part and (for early stopping) validation part of the data.

        The validation part is ``(X_val, y_val, sample_weight_val)`` with y in
        the user's encoding, or None without early stopping. The split draws
        from the fit's random state, stratified for single-output
        classification, exactly as scikit-learn's.
        """
        if not self.early_stopping:
            return (X, target, weights), None
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, y, target, weights]
        if sample_weight is not None:
            arrays.append(weights)
        parts = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, _, y_val, target_train, _, weights_train, _ = parts[:8]
        weights_val = parts[9] if sample_weight is not None else None
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        return (
            (
                kernel_ready(X_train, X.dtype),
                kernel_ready(target_train, X.dtype),
                kernel_ready(weights_train, X.dtype),
            ),
            (X_val, y_val, weights_val),
        )

    def _update_no_improvement_count(self, validation, params):
        """Count epochs without improvement by tol; remember the best weights."""
        if validation is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
            return

        X_val, y_val, weights_val = validation
        score = self._score(X_val, y_val, weights_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params[...] = params

    def _fit_lbfgs(self, X, target, weights):
        """Full-batch L-BFGS-B from SciPy over the compiled loss and gradient."""
        network = self._network(X.dtype)
        params = network.pack(self.coefs_, self.intercepts_)
        self.coefs_, self.intercepts_ = network.views(params)
        grad = np.empty_like(params)
        tuner = self._tuner(effective_n_threads(self.n_jobs))
        initial_params = params.copy()

        workspace = network.workspace(X.shape[0], gather_rows=False)

        def loss_and_gradient(packed):
            params[...] = packed
            loss = network.loss_and_gradient(
                params, X, target, weights, self.alpha, grad, tuner, workspace
            )
            return loss, grad.astype(np.float64)

        def report(intermediate_result):
            report.iteration += 1
            print(f"Iteration {report.iteration}, loss = {intermediate_result.fun:.8f}")

        report.iteration = 0
        with single_threaded_blas():
            result = scipy.optimize.minimize(
                loss_and_gradient,
                params.astype(np.float64),
                method="L-BFGS-B",
                jac=True,
                callback=report if self.verbose else None,
                options={
                    "maxfun": self.max_fun,
                    "maxiter": self.max_iter,
                    "gtol": self.tol,
                },
            )
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = self._reported_loss(result.fun, X.dtype)
        params[...] = result.x
        if not np.isfinite(params).all() or not np.isfinite(self.loss_):
            # Keep the weights training started from rather than NaN.
            params[...] = initial_params
            cause = self._certain_divergence_cause(X, target, weights)
            if cause:
                raise ValueError(f"L-BFGS failed: the loss is not finite. {cause}")
            raise ValueError(
                "L-BFGS produced non-finite weights. The input data may contain "
                "very large values; scale them (e.g. with StandardScaler)."
            )
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status={result.status}): {result.message}. Increase max_iter "
                f"(now {self.max_iter}) or max_fun (now {self.max_fun}), or scale "
                "the data.",
                ConvergenceWarning,
            )

    def _check_solver(self):
        """partial_fit exists only for the stochastic solvers."""
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ------------------------------------------------------------------
    # Prediction

    def _forward(self, X, check_output=True):
        """Output-layer activations for validated X, in the network's dtype.

        Validated X is finite, so a non-finite output comes from non-finite
        weights (set or loaded from outside fit) or from a forward pass that
        overflowed, from huge inputs or huge weights: with ``check_output``
        that raises instead of returning inf or NaN predictions.
        """
        y_pred = self._forward_unchecked(X)
        if check_output and not np.isfinite(y_pred).all():
            if not all(np.isfinite(p).all() for p in self.coefs_ + self.intercepts_):
                raise ValueError(
                    "The network's weights (coefs_ or intercepts_) contain NaN "
                    "or infinity, so its outputs would too; fit does not leave "
                    "such weights, so they were set or loaded from elsewhere."
                )
            if _holds_non_finite(X):
                raise ValueError(
                    "X holds NaN or infinite values, which predict did not check "
                    "because scikit-learn's assume_finite=True is set; remove or "
                    "impute them (e.g. with sklearn.impute.SimpleImputer)."
                )
            largest_weight = max(float(np.abs(c).max()) for c in self.coefs_)
            largest_input = float(abs(X).max())
            raise ValueError(
                f"The network's outputs overflowed {y_pred.dtype} for this "
                f"input: the inputs (largest absolute value {largest_input:.3g}) "
                f"or the weights (largest absolute value {largest_weight:.3g}) "
                "are too large for this dtype. Standardise X (e.g. with "
                "sklearn.preprocessing.StandardScaler); if the fit diverged, "
                "refit with a lower learning_rate_init."
            )
        return y_pred

    def _forward_unchecked(self, X):
        layout = self._network(self.coefs_[0].dtype)
        # After fit, coefs_ and intercepts_ are views into one flat buffer that
        # the kernel can use as it is; otherwise (unpickled or assigned by the
        # user) they are copied into one.
        params = layout.buffer_of(self.coefs_, self.intercepts_)
        if params is None:
            params = layout.pack(self.coefs_, self.intercepts_)
        if X.shape[0] <= PREDICT_ROWS:
            # One block of rows: one thread, and BLAS sees products too small
            # to start threads of its own.
            return layout.predict(params, X, 1)
        with single_threaded_blas():
            return layout.predict(params, X, effective_n_threads(self.n_jobs))

    def _check_fitted_weights(self):
        """coefs_ and intercepts_ must be the fitted network's, in float32 or
        float64: fit leaves them so, but they can be assigned, and the kernels
        read them without bounds checks."""
        coefs, intercepts = self.coefs_, self.intercepts_
        fan_in = self.n_features_in_
        problem = None
        if len(coefs) != self.n_layers_ - 1 or len(intercepts) != len(coefs):
            problem = (
                f"{len(coefs)} coefs_ and {len(intercepts)} intercepts_ for "
                f"n_layers_={self.n_layers_}"
            )
        for layer, (coef, intercept) in enumerate(zip(coefs, intercepts)):
            if not (
                isinstance(coef, np.ndarray)
                and isinstance(intercept, np.ndarray)
                and coef.dtype in _FLOAT_DTYPES
                and intercept.dtype in _FLOAT_DTYPES
            ):
                problem = f"layer {layer} is not a float32 or float64 ndarray"
            elif coef.ndim != 2 or coef.shape[0] != fan_in:
                problem = (
                    f"coefs_[{layer}] has shape {coef.shape}, where {fan_in} rows "
                    "are needed"
                )
            elif intercept.shape != (coef.shape[1],):
                problem = (
                    f"intercepts_[{layer}] has shape {intercept.shape} for "
                    f"coefs_[{layer}] of shape {coef.shape}"
                )
            if problem is not None:
                break
            fan_in = coef.shape[1]
        if problem is None and fan_in != self.n_outputs_:
            problem = (
                f"the last layer has {fan_in} units for n_outputs_={self.n_outputs_}"
            )
        if problem is not None:
            raise ValueError(
                "coefs_ and intercepts_ do not form the fitted network of "
                f"n_features_in_={self.n_features_in_} inputs: {problem}."
            )

    def _validate_predict_input(self, X):
        self._check_fitted_weights()
        if not self._passes_validation_unchanged(X):
            X = validate_data(
                self,
                X,
                accept_sparse=["csr", "csc"],
                dtype=(np.float64, np.float32),
                reset=False,
            )
        check_fits_dtype(X, self.coefs_[0].dtype, "X", _FLOAT32_REMEDY)
        return X.astype(self.coefs_[0].dtype, copy=False)

    def _passes_validation_unchanged(self, X):
        """Whether X is an array that ``validate_data`` would accept and return
        as it is: a finite 2-D float ndarray with the fitted number of columns,
        from a model fitted without feature names.

        ``validate_data`` costs about 150 microseconds per call, most of the
        time to predict one row. This test costs a few, and anything it does
        not recognise goes through ``validate_data``, which also raises the
        errors and warnings, so behaviour is unchanged.
        """
        if not (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _FLOAT_DTYPES
            and X.shape[0] > 0
            and X.shape[1] == getattr(self, "n_features_in_", None)
            and not hasattr(self, "feature_names_in_")
        ):
            return False
        # A sum is finite only if every value is; a sum that overflows merely
        # sends finite X the slow way.
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(X.sum()))

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coefs_")

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score on validated X; NaN predictions score NaN instead of raising."""
        y_pred = self._predict(X, check_input=False, check_output=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    """Multi-layer perceptron classifier trained by compiled backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters, defaults, fitted attributes, warnings and verbose
    output, with forward pass, backward pass and optimizer updates running as
    Numba-compiled code, a whole epoch per compiled call, in parallel over
    the samples of each mini-batch.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer, from the input side.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers: f(x) = x, 1 / (1 + exp(-x)),
        tanh(x) or max(0, x).

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'adam' and 'sgd' train on mini-batches; 'lbfgs' minimises the
        full-batch loss with SciPy's L-BFGS-B, often better on small data.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases); the
        penalty alpha / 2 * ||W||^2 is divided by the batch's sample count (or
        weight sum).

    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is
        min(200, n_samples). Not used by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of 'sgd': fixed at learning_rate_init;
        learning_rate_init / (t + 1) ** power_t with t the number of samples
        seen, updated after each epoch; or divided by 5 each time the stopping
        rule fires, until it falls to 1e-6 or below.

    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' and 'adam'.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or of iterations ('lbfgs').

    shuffle : bool, default=True
        Whether to shuffle the samples before each epoch ('sgd', 'adam').

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the early-stopping split and the
        shuffling. An int gives reproducible fits.

    tol : float, default=1e-4
        Training stops (or, with 'adaptive', the rate drops) when the loss, or
        the validation score under early stopping, fails to improve by tol for
        n_iter_no_change consecutive epochs. For 'lbfgs', the gradient
        tolerance.

    verbose : bool, default=False
        Print one line per epoch (or L-BFGS iteration) with the loss.

    warm_start : bool, default=False
        Continue from the fitted weights when fit is called again, instead of
        starting over.

    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.

    early_stopping : bool, default=False
        Hold out validation_fraction of the training data (stratified) and
        stop when its accuracy stops improving; the weights with the best
        validation score are kept. 'sgd' and 'adam' only.

    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping, in [0, 1).

    beta_1 : float, default=0.9
        Decay rate of Adam's first-moment estimate, in [0, 1).

    beta_2 : float, default=0.999
        Decay rate of Adam's second-moment estimate, in [0, 1).

    epsilon : float, default=1e-8
        Adam's denominator offset.

    n_iter_no_change : int, default=10
        Number of epochs without improvement by tol that the stopping rule
        tolerates ('sgd', 'adam').

    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.

    n_jobs : int, default=None
        Most threads that train (and predict) together; None means all
        available cores (capped by ``OMP_NUM_THREADS`` when set), -1 all
        cores. Training times its segments and uses fewer threads while
        fewer train faster (as when other processes keep cores busy).
        Results are bit-identical for any value. Not in scikit-learn.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    loss_ : float
        Loss of the last epoch (or the final L-BFGS loss).

    best_loss_ : float or None
        Lowest epoch loss, or None under early stopping.

    loss_curve_ : list of float
        Loss of each epoch: the average over mini-batches of the batch losses
        ('sgd', 'adam').

    validation_scores_ : list of float or None
        Validation accuracy after each epoch under early stopping, else None.

    best_validation_score_ : float or None
        Best validation accuracy under early stopping, else None.

    t_ : int
        Number of training samples seen by the solver.

    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        Weight matrix of each layer, in the dtype of the training data.

    intercepts_ : list of ndarray of shape (n_fan_out,)
        Bias vector of each layer.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when X had string column names.

    n_iter_ : int
        Number of epochs (or L-BFGS iterations) run by the last fit.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Output activation: 'softmax' (multiclass) or 'logistic' (binary and
        multilabel).

    See Also
    --------
    MLPRegressor : Multi-layer perceptron regressor.
    sklearn.neural_network.MLPClassifier : The scikit-learn original.

    Notes
    -----
    With the same initial weights and the same mini-batches, training gives
    the same weights as scikit-learn up to floating-point rounding.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastmlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=500, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_jobs=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_jobs=n_jobs,
        )

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously got "
                        f"{self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        if (
            len(self.classes_) < 2
            and self._label_binarizer.y_type_ != "multilabel-indicator"
        ):
            raise ValueError(
                "The training data contains only one class "
                f"({self.classes_[0]}); a classifier needs samples of at least "
                "two classes."
            )
        return X, self._label_binarizer.transform(y)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 data trains in float32; other dtypes are
            converted to float64.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label indicator matrix for multilabel
            classification.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss; None weighs all equally.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
        >>> [coef.shape for coef in clf.coefs_]
        [(4, 100), (100, 3)]
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train for one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        classes : array-like of shape (n_classes,), default=None
            All classes that will ever appear, required on the first call.
            Classes absent from a given call still get an output unit.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPClassifier
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
        >>> clf = clf.partial_fit(X[:2], [0, 1], classes=[0, 1, 2])
        >>> clf = clf.partial_fit(X[2:], [2, 0])
        >>> clf.classes_, clf.t_  # t_ counts the samples seen
        (array([0, 1, 2]), 4)
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels (an indicator matrix for multilabel models).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
        >>> clf.predict(X[:3]).shape
        (3,)
        >>> bool((clf.predict(X) == y).mean() > 0.9)
        True
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True, check_output=True):
        if check_input:
            X = self._validate_predict_input(X)
        y_pred = self._forward(X, check_output)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``, in the
            network's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:3])
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((3, 3), True)
        """
        check_is_fitted(self)
        y_pred = self._forward(self._validate_predict_input(X))
        if self.n_outputs_ == 1:
            return np.hstack([1 - y_pred, y_pred])
        return y_pred

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
        >>> log_proba = clf.predict_log_proba(X[:3])
        >>> bool(np.allclose(np.exp(log_proba), clf.predict_proba(X[:3])))
        True
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multi-layer perceptron regressor trained by compiled backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`:
    the same parameters, defaults, fitted attributes, warnings and verbose
    output, with forward pass, backward pass and optimizer updates running as
    Numba-compiled code, a whole epoch per compiled call, in parallel over
    the samples of each mini-batch.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        Half squared error with an identity output, or half Poisson deviance
        with an exponential output (requires y >= 0).

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer, from the input side.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers: f(x) = x, 1 / (1 + exp(-x)),
        tanh(x) or max(0, x).

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'adam' and 'sgd' train on mini-batches; 'lbfgs' minimises the
        full-batch loss with SciPy's L-BFGS-B, often better on small data.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases); the
        penalty alpha / 2 * ||W||^2 is divided by the batch's sample count (or
        weight sum).

    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is
        min(200, n_samples). Not used by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of 'sgd': fixed at learning_rate_init;
        learning_rate_init / (t + 1) ** power_t with t the number of samples
        seen, updated after each epoch; or divided by 5 each time the stopping
        rule fires, until it falls to 1e-6 or below.

    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' and 'adam'.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or of iterations ('lbfgs').

    shuffle : bool, default=True
        Whether to shuffle the samples before each epoch ('sgd', 'adam').

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the early-stopping split and the
        shuffling. An int gives reproducible fits.

    tol : float, default=1e-4
        Training stops (or, with 'adaptive', the rate drops) when the loss, or
        the validation score under early stopping, fails to improve by tol for
        n_iter_no_change consecutive epochs. For 'lbfgs', the gradient
        tolerance.

    verbose : bool, default=False
        Print one line per epoch (or L-BFGS iteration) with the loss.

    warm_start : bool, default=False
        Continue from the fitted weights when fit is called again, instead of
        starting over.

    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.

    early_stopping : bool, default=False
        Hold out validation_fraction of the training data and stop when its R^2
        stops improving; the weights with the best validation score are kept.
        'sgd' and 'adam' only.

    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping, in [0, 1).

    beta_1 : float, default=0.9
        Decay rate of Adam's first-moment estimate, in [0, 1).

    beta_2 : float, default=0.999
        Decay rate of Adam's second-moment estimate, in [0, 1).

    epsilon : float, default=1e-8
        Adam's denominator offset.

    n_iter_no_change : int, default=10
        Number of epochs without improvement by tol that the stopping rule
        tolerates ('sgd', 'adam').

    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.

    n_jobs : int, default=None
        Most threads that train (and predict) together; None means all
        available cores (capped by ``OMP_NUM_THREADS`` when set), -1 all
        cores. Training times its segments and uses fewer threads while
        fewer train faster (as when other processes keep cores busy).
        Results are bit-identical for any value. Not in scikit-learn.

    Attributes
    ----------
    loss_ : float
        Loss of the last epoch (or the final L-BFGS loss).

    best_loss_ : float or None
        Lowest epoch loss, or None under early stopping.

    loss_curve_ : list of float
        Loss of each epoch: the average over mini-batches of the batch losses
        ('sgd', 'adam').

    validation_scores_ : list of float or None
        Validation R^2 after each epoch under early stopping, else None.

    best_validation_score_ : float or None
        Best validation R^2 under early stopping, else None.

    t_ : int
        Number of training samples seen by the solver.

    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        Weight matrix of each layer, in the dtype of the training data.

    intercepts_ : list of ndarray of shape (n_fan_out,)
        Bias vector of each layer.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when X had string column names.

    n_iter_ : int
        Number of epochs (or L-BFGS iterations) run by the last fit.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Output activation: 'identity' (squared error) or 'exp' (Poisson).

    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier.
    sklearn.neural_network.MLPRegressor : The scikit-learn original.

    Notes
    -----
    With the same initial weights and the same mini-batches, training gives
    the same weights as scikit-learn up to floating-point rounding. For
    multi-output squared error, the 'lbfgs' gradient is the gradient of the
    reported loss (scikit-learn's is n_outputs times larger).

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0)
    >>> reg.fit(X, X.ravel() ** 2).score(X, X.ravel() ** 2) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        **REGRESSOR_CONSTRAINTS,
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_jobs=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_jobs=n_jobs,
        )

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _reported_loss(self, loss, dtype):
        # scikit-learn's regressor computes its loss in the data's dtype, so
        # float32 data give float32 losses (and no-improvement decisions
        # between float32 values).
        return dtype.type(loss)

    # Targets beyond this magnitude are named when a fit diverges: with a
    # loss that grows with their square, they make large gradients too.
    _LARGE_TARGET = 1e3

    def _target_scale_hint(self, target):
        largest = float(np.abs(target).max()) if target.size else 0.0
        if not largest > self._LARGE_TARGET:
            return ""
        return (
            f" The targets reach {largest:.3g} in absolute value, which also makes "
            "the gradients large; scale y too (e.g. with "
            "sklearn.compose.TransformedTargetRegressor and a StandardScaler)."
        )

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson":
            check_poisson_targets(y)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 data trains in float32; other dtypes are
            converted to float64.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss; None weighs all equally.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
        >>> reg = reg.fit(X, np.column_stack([X.ravel(), X.ravel() ** 2]))
        >>> reg.n_outputs_, [coef.shape for coef in reg.coefs_]
        (2, [(1, 8), (8, 2)])
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
        >>> for _ in range(3):
        ...     reg = reg.partial_fit(X, X.ravel())
        >>> reg.t_  # samples seen over the three calls
        150
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Several outputs are supported; scikit-learn's MLPRegressor supports
        # them too but leaves this tag False.
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predict target values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions, in the network's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> X = np.linspace(-1, 1, 50, dtype=np.float32).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
        >>> y_pred = reg.fit(X, X.ravel()).predict(X)
        >>> y_pred.shape, y_pred.dtype
        ((50,), dtype('float32'))
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True, check_output=True):
        if check_input:
            X = self._validate_predict_input(X)
        y_pred = self._forward(X, check_output)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)
