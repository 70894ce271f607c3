"""The five training workloads and the estimators compared on them.

Shared by ``benchmarks/compare.py`` and the asv suite so that both measure the
same thing. A workload fixes the data, the architecture, the solver, the batch
size and the number of epochs; every library trains the same network on it
with early stopping switched off (``tol=0`` and a no-improvement patience
longer than the run), so that all of them run all the epochs.

Data come from scikit-learn's bundled digits set and its generators only.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from .torch_mlp import TORCH_AVAILABLE, TorchMLP

LIBRARIES = ("fastmlp", "sklearn", "torch")


def _digits(n_samples):
    """scikit-learn's 8x8 handwritten digits, pixels scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    return X[:n_samples] / 16.0, y[:n_samples]


def _classification(n_features):
    def make(n_samples):
        return make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=20,
            n_classes=10,
            random_state=0,
        )

    return make


def _regression(n_samples):
    """Linear targets with noise, scaled to unit variance.

    Unscaled, make_regression's targets reach the hundreds and the squared
    error in the tens of thousands, which says little about agreement.
    """
    X, y = make_regression(
        n_samples=n_samples, n_features=50, n_informative=25, noise=1.0, random_state=0
    )
    return X, y / y.std()


@dataclass(frozen=True)
class Workload:
    """One training job: data, network and solver, the same for every library.

    Attributes
    ----------
    name : str
        Short name, ``'W1'`` to ``'W5'``.
    title : str
        One line saying what the data are.
    task : {'classification', 'regression'}
    n_samples : int
        Rows of training data generated.
    hidden : tuple of int
        Hidden-layer widths.
    solver : {'adam', 'sgd'}
        'sgd' runs with momentum 0.9 and Nesterov's momentum.
    batch_size : int
    epochs : int
    dtype : {numpy.float64, numpy.float32}
    make_data : callable
        ``make_data(n_samples) -> (X, y)`` in float64.
    """

    name: str
    title: str
    task: str
    n_samples: int
    hidden: tuple
    solver: str
    batch_size: int
    epochs: int
    dtype: type
    make_data: Callable = dataclasses.field(repr=False, compare=False)

    def data(self):
        """(X, y) of this workload, X in its dtype; generated once per size."""
        X, y = _cached_data(self.make_data, self.n_samples)
        return X.astype(self.dtype), y

    def units(self, n_features, n_outputs):
        """Widths of all layers, input and output included."""
        return [n_features, *self.hidden, n_outputs]

    def flops_per_epoch(self, n_features, n_outputs):
        """Floating-point operations of one epoch: 6 x samples x weights.

        Forward, backward and weight-gradient products are 2 flops per weight
        per sample each; element-wise work and the optimizer are left out.
        """
        units = self.units(n_features, n_outputs)
        weights = sum(a * b for a, b in zip(units[:-1], units[1:]))
        return 6 * self.n_samples * weights

    def flops_done_per_epoch(self, n_features, n_outputs):
        """The floating-point operations an epoch actually needs.

        ``flops_per_epoch`` less the backward product of the first layer: the
        inputs need no delta, and no library computes one. Where the first
        layer holds most weights (W3), this is about 2/3 of the count.
        """
        units = self.units(n_features, n_outputs)
        return self.flops_per_epoch(n_features, n_outputs) - (
            2 * self.n_samples * units[0] * units[1]
        )

    def estimator_params(self):
        """Parameters shared by fastmlp's and scikit-learn's estimators."""
        params = dict(
            hidden_layer_sizes=self.hidden,
            solver=self.solver,
            batch_size=self.batch_size,
            max_iter=self.epochs,
            tol=0.0,
            n_iter_no_change=self.epochs + 1,
            random_state=0,
        )
        if self.solver == "sgd":
            params.update(momentum=0.9, nesterovs_momentum=True)
        return params

    def make_estimator(self, library, **extra):
        """A fresh, unfitted estimator of ``library`` set up for this workload.

        Raises NotImplementedError for 'torch' when PyTorch is not installed
        (asv reads that as "skip this benchmark").
        """
        params = {**self.estimator_params(), **extra}
        if library == "fastmlp":
            import fastmlp

            cls = fastmlp.MLPClassifier if self.classifies else fastmlp.MLPRegressor
            return cls(**params)
        if library == "sklearn":
            from sklearn import neural_network

            cls = (
                neural_network.MLPClassifier
                if self.classifies
                else neural_network.MLPRegressor
            )
            return cls(**params)
        if library == "torch":
            if not TORCH_AVAILABLE:
                raise NotImplementedError("PyTorch is not installed")
            return TorchMLP(task=self.task, **params)
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")

    @property
    def classifies(self):
        return self.task == "classification"

    def scaled(self, n_samples=None, epochs=None):
        """The same workload with fewer samples or epochs (same network)."""
        return dataclasses.replace(
            self,
            n_samples=min(n_samples or self.n_samples, self.n_samples),
            epochs=epochs or self.epochs,
        )


@functools.lru_cache(maxsize=8)
def _cached_data(make_data, n_samples):
    return make_data(n_samples)


WORKLOADS = {
    "W1": Workload(
        name="W1",
        title="digits 1797x64",
        task="classification",
        n_samples=1797,
        hidden=(100,),
        solver="adam",
        batch_size=200,
        epochs=50,
        dtype=np.float64,
        make_data=_digits,
    ),
    "W2": Workload(
        name="W2",
        title="make_classification 100000x100, 10 classes",
        task="classification",
        n_samples=100_000,
        hidden=(256, 128),
        solver="adam",
        batch_size=256,
        epochs=5,
        dtype=np.float64,
        make_data=_classification(100),
    ),
    "W3": Workload(
        name="W3",
        title="make_classification 20000x784, 10 classes",
        task="classification",
        n_samples=20_000,
        hidden=(512,),
        solver="sgd",
        batch_size=128,
        epochs=5,
        dtype=np.float64,
        make_data=_classification(784),
    ),
    "W4": Workload(
        name="W4",
        title="make_regression 200000x50",
        task="regression",
        n_samples=200_000,
        hidden=(64, 64),
        solver="adam",
        batch_size=64,
        epochs=3,
        dtype=np.float64,
        make_data=_regression,
    ),
}
# W5 is W2 in single precision.
WORKLOADS["W5"] = dataclasses.replace(
    WORKLOADS["W2"], name="W5", title="W2 in float32", dtype=np.float32
)


def fit_quietly(estimator, X, y):
    """Fit, silencing the warning that max_iter was reached (it always is here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def warm_up(workload, estimator_factory):
    """Run one short fit so that compiled kernels are ready before timing.

    fastmlp compiles (or loads from its cache) one kernel per dtype on first
    use; a 1-epoch fit on a few batches of the workload's own data and dtype
    triggers exactly that compilation.
    """
    X, y = workload.data()
    n_rows = min(len(X), 4 * workload.batch_size)
    fit_quietly(estimator_factory(max_iter=1), X[:n_rows], y[:n_rows])


# Run in a fresh interpreter: imports, then times one fit on the digits data.
_FIRST_FIT_SCRIPT = """
import json, time, warnings
start = time.perf_counter()
import fastmlp
from sklearn.datasets import load_digits
import_seconds = time.perf_counter() - start
X, y = load_digits(return_X_y=True)
model = fastmlp.MLPClassifier(**json.loads({params!r}))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    model.fit(X / 16.0, y)
    fit_seconds = time.perf_counter() - start
print(json.dumps({{"import": import_seconds, "fit": fit_seconds}}))
"""


def first_fit_in_subprocess(cache_dir, max_iter=None):
    """Seconds of the first fastmlp fit in a new process, with its import time.

    Numba writes and reads its on-disk cache in ``cache_dir``
    (``NUMBA_CACHE_DIR``): an empty directory gives the cold, compiling first
    fit a user meets after installing; the same directory a second time gives
    the first fit of every later session. Only the ``fit`` call is timed as
    'fit'; the import is reported apart.

    Returns
    -------
    dict
        ``{'import': seconds, 'fit': seconds}``.
    """
    workload = WORKLOADS["W1"]
    params = dict(workload.estimator_params())
    params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
    if max_iter is not None:
        params.update(max_iter=max_iter, n_iter_no_change=max_iter + 1)
    script = _FIRST_FIT_SCRIPT.format(params=json.dumps(params))
    env = {**os.environ, "NUMBA_CACHE_DIR": os.fspath(cache_dir)}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"first-fit subprocess failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
