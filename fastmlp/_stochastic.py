"""State of a stochastic optimizer between epochs.

The compiled epoch kernel does all per-batch work (gradients, moments,
velocities, parameter updates). What changes only between epochs lives here:
the learning-rate schedule of 'sgd' ('constant', 'invscaling', 'adaptive'),
Adam's step count, and the decision to stop or to lower the learning rate
when the stopping rule fires.
"""

import numpy as np

from ._kernels import optimizer_settings, optimizer_state


class StochasticOptimizer:
    """Optimizer state carried across epochs and across partial_fit calls.

    Parameters
    ----------
    estimator : BaseMultilayerPerceptron
        Supplies the solver settings (read once, at creation).
    n_params : int
        Size of the flat parameter buffer.
    dtype : numpy dtype
        dtype of the parameters, shared by the optimizer state.
    """

    def __init__(self, estimator, n_params, dtype):
        self.solver = estimator.solver
        self.schedule = estimator.learning_rate
        self.learning_rate_init = float(estimator.learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.power_t = estimator.power_t
        self.nesterov = bool(estimator.nesterovs_momentum)
        self._fixed = (
            estimator.momentum,
            estimator.beta_1,
            estimator.beta_2,
            estimator.epsilon,
        )
        self.state = optimizer_state(self.solver, n_params, dtype)
        # Adam's step count, advanced by the kernel once per mini-batch.
        self.adam_step = np.zeros(1, dtype=np.int64)

    def serves(self, n_params, dtype):
        """Whether this state was made for parameters of this size and dtype."""
        return self.state.shape[-1] == n_params and self.state.dtype == dtype

    def settings(self, alpha):
        """The float64 settings vector for the next epoch."""
        momentum, beta_1, beta_2, epsilon = self._fixed
        # Adam corrects its own step size from the initial rate; sgd uses the
        # scheduled one.
        rate = self.learning_rate_init if self.solver == "adam" else self.learning_rate
        return optimizer_settings(rate, momentum, beta_1, beta_2, epsilon, alpha)

    def iteration_ends(self, samples_seen):
        """Apply the 'invscaling' schedule after an epoch (sgd only).

        The rate is learning_rate_init / (samples_seen + 1) ** power_t.
        """
        if self.solver == "sgd" and self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (
                (samples_seen + 1) ** self.power_t
            )

    def trigger_stopping(self, message, verbose):
        """Stop, or for sgd with 'adaptive' divide the learning rate by 5.

        Returns True when training should stop. As in scikit-learn, an adaptive
        rate that has fallen to 1e-6 or below stops training.
        """
        if self.solver == "adam" or self.schedule != "adaptive":
            if verbose:
                print(message + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self.learning_rate:f}")
        return False
