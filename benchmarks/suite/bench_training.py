"""Training benchmarks W1 to W5 for fastmlp, scikit-learn and PyTorch.

The architectures, solvers and batch sizes are those of
``benchmarks/compare.py``; the data are scaled down (and W1 runs 10 epochs
instead of 50) so that ``asv run --python=same --quick`` finishes in a few
minutes on two cores. A quarter of each data set is held out for
``track_test_score`` and ``time_predict``. PyTorch rows are skipped when it is
not installed. Every class defines its own ``setup_cache`` (see
``TrainingBenchmark.fit_models`` for why).
"""

from .common import TrainingBenchmark
from .workloads import WORKLOADS


class W1Digits(TrainingBenchmark):
    """W1: digits, hidden (100,), adam, batch 200; 10 epochs."""

    def make_workload(self):
        return WORKLOADS["W1"].scaled(epochs=10)

    def setup_cache(self):
        return self.fit_models()


class W2Classification(TrainingBenchmark):
    """W2: 5,000 x 100, 10 classes, hidden (256, 128), adam, batch 256; 2 epochs."""

    def make_workload(self):
        return WORKLOADS["W2"].scaled(n_samples=5000, epochs=2)

    def setup_cache(self):
        return self.fit_models()


class W3WideInput(TrainingBenchmark):
    """W3: 2,000 x 784, 10 classes, hidden (512,), sgd + Nesterov, batch 128;
    2 epochs."""

    def make_workload(self):
        return WORKLOADS["W3"].scaled(n_samples=2000, epochs=2)

    def setup_cache(self):
        return self.fit_models()


class W4Regression(TrainingBenchmark):
    """W4: regression 10,000 x 50, hidden (64, 64), adam, batch 64; 1 epoch."""

    def make_workload(self):
        return WORKLOADS["W4"].scaled(n_samples=10_000, epochs=1)

    def setup_cache(self):
        return self.fit_models()


class W5Float32(TrainingBenchmark):
    """W5: W2 in float32 (5,000 x 100, hidden (256, 128)); 2 epochs."""

    def make_workload(self):
        return WORKLOADS["W5"].scaled(n_samples=5000, epochs=2)

    def setup_cache(self):
        return self.fit_models()
