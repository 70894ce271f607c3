"""The base of the training benchmarks: set-up and the measured methods.

A subclass names its workload; the base supplies ``time_fit``, ``peakmem_fit``,
``time_predict``, ``track_train_loss`` and ``track_test_score`` for every
library in ``params``. ``setup`` warms fastmlp's compiled kernels (and
PyTorch's thread pool) and fits one model for the predict and track
benchmarks, so ``time_fit`` measures steady-state training; the first,
compiling fit is timed apart in ``bench_compile``.

scikit-learn runs with its BLAS held to one thread, its faster setting for
these layer sizes on small machines (``benchmarks/compare.py`` times both
settings and quotes the faster).
"""

import functools
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

    def setup(self, library):
        workload = self.make_workload()
        X, y = workload.data()
        self.X, self.X_test, self.y, self.y_test = train_test_split(
            X, y, test_size=0.25, random_state=0
        )
        # Raises NotImplementedError for 'torch' without PyTorch: asv skips.
        workload.make_estimator(library)
        self.make_estimator = functools.partial(workload.make_estimator, library)
        self.blas_limits = (
            threadpool_limits(limits=1, user_api="blas")
            if library == "sklearn"
            else None
        )
        warm_up(workload, self.make_estimator)
        self.fitted = fit_quietly(self.make_estimator(), self.X, self.y)

    def teardown(self, library):
        if self.blas_limits is not None:
            self.blas_limits.restore_original_limits()

    def time_fit(self, library):
        fit_quietly(self.make_estimator(), self.X, self.y)

    def peakmem_fit(self, library):
        fit_quietly(self.make_estimator(), self.X, self.y)

    def time_predict(self, library):
        self.fitted.predict(self.X_test)

    def track_train_loss(self, library):
        return self.fitted.loss_

    track_train_loss.unit = "loss"

    def track_test_score(self, library):
        return self.fitted.score(self.X_test, self.y_test)

    track_test_score.unit = "accuracy or R^2"
