"""The base of the training benchmarks: set-up and the measured methods.

A subclass names its workload; the base supplies ``time_fit``, ``peakmem_fit``,
``time_predict``, ``track_train_loss`` and ``track_test_score`` for every
library in ``params``. Each subclass's ``setup_cache`` fits one model per
library for the predict and track benchmarks (once per class); ``setup`` warms fastmlp's
compiled kernels (and PyTorch's thread pool) with a short fit, so ``time_fit``
measures steady-state training. The first, compiling fit is timed apart in
``bench_compile``.

scikit-learn runs with its BLAS held to one thread, its faster setting for
these layer sizes on small machines (``benchmarks/compare.py`` times both
settings and quotes the faster).
"""

import contextlib
import functools
import pickle
from abc import ABC, abstractmethod

from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from .workloads import LIBRARIES, fit_quietly, warm_up


class TrainingBenchmark(ABC):
    """Fit, predict and scores of one workload, for each library."""

    param_names = ["library"]
    params = [list(LIBRARIES)]
    timeout = 300

    @abstractmethod
    def make_workload(self):
        """The Workload this class measures, at its asv size."""

    def _data(self):
        """Training and held-out parts of the workload's data."""
        X, y = self.make_workload().data()
        return train_test_split(X, y, test_size=0.25, random_state=0)

    def fit_models(self):
        """One fitted model per installed library, for predict and track.

        Each subclass returns this from its own ``setup_cache``: asv runs that
        once per class rather than once per benchmark, but keys its cache by
        where the method is defined, so one inherited ``setup_cache`` would
        hand every class the first class's models. The models are kept
        pickled, so that a benchmark of one library loads only that library
        (the memory of an unused PyTorch would count in ``peakmem_fit``).
        """
        workload = self.make_workload()
        X, _, y, _ = self._data()
        fitted = {}
        for library in LIBRARIES:
            try:
                estimator = workload.make_estimator(library)
            except NotImplementedError:
                continue
            with _blas_limits(library):
                fitted[library] = pickle.dumps(fit_quietly(estimator, X, y))
        return fitted

    def setup(self, fitted, library):
        # asv calls teardown even when setup raised (skipping a library).
        self.blas_limits = None
        if library not in fitted:
            raise NotImplementedError(f"{library} is not installed")
        workload = self.make_workload()
        self.X, self.X_test, self.y, self.y_test = self._data()
        self.make_estimator = functools.partial(workload.make_estimator, library)
        self.blas_limits = _blas_limits(library)
        self.blas_limits.__enter__()
        warm_up(workload, self.make_estimator)
        self.fitted = pickle.loads(fitted[library])
        # Load fastmlp's compiled prediction kernel outside the timing too.
        self.fitted.predict(self.X_test[:2])

    def teardown(self, fitted, library):
        if self.blas_limits is not None:
            self.blas_limits.__exit__(None, None, None)

    def time_fit(self, fitted, library):
        fit_quietly(self.make_estimator(), self.X, self.y)

    def peakmem_fit(self, fitted, library):
        fit_quietly(self.make_estimator(), self.X, self.y)

    def time_predict(self, fitted, library):
        self.fitted.predict(self.X_test)

    def track_train_loss(self, fitted, library):
        return self.fitted.loss_

    track_train_loss.unit = "loss"

    def track_test_score(self, fitted, library):
        return self.fitted.score(self.X_test, self.y_test)

    track_test_score.unit = "accuracy or R^2"


def _blas_limits(library):
    """scikit-learn's BLAS on one thread; the others manage their own threads."""
    if library == "sklearn":
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()
