"""A plain PyTorch CPU training loop behind a small scikit-learn-like interface.

``TorchMLP`` trains the network scikit-learn's and fastmlp's estimators train,
so that all three can be timed by the same code: an ``nn.Sequential`` of
``Linear`` and ``ReLU`` layers, cross-entropy (classification) or half the
mean squared error (regression), and ``torch.optim.Adam`` or
``torch.optim.SGD(momentum=0.9, nesterov=True)`` in their fastest CPU form
(fused where this PyTorch supports it, else foreach).

To make the final losses comparable the loop also starts from the same
weights and visits the same mini-batches in the same order: it draws the
Glorot-uniform initial weights and the per-epoch shuffles from a NumPy
``RandomState`` seeded with ``random_state``, in the order scikit-learn's
estimators draw them. The L2 penalty ``alpha`` enters as the optimizer's weight
decay on the weights (not the biases), ``alpha / batch_size``, which gives the
same gradient as scikit-learn's penalty on every full batch.

PyTorch is optional: ``TORCH_AVAILABLE`` says whether it is installed.
"""

import importlib.util
import os

import numpy as np
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state, shuffle

# Importing PyTorch takes seconds, so it happens on first use only.
TORCH_AVAILABLE = importlib.util.find_spec("torch") is not None


def import_torch():
    """The torch module (imported on the first call)."""
    import torch

    return torch


def _make_optimizer(groups, solver, learning_rate, implementation):
    """The torch optimizer for ``solver``; ``implementation`` 'fused'/'foreach'."""
    torch = import_torch()
    options = {implementation: True}
    if solver == "adam":
        return torch.optim.Adam(
            groups, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8, **options
        )
    return torch.optim.SGD(
        groups, lr=learning_rate, momentum=0.9, nesterov=True, **options
    )


def fastest_optimizer(groups, solver, learning_rate, dtype):
    """Fused optimizer when this PyTorch runs it on CPU in ``dtype``, else foreach.

    Support for fused CPU optimizers differs between releases and dtypes, so a
    throw-away parameter takes one step first to find out.

    Returns
    -------
    optimizer : torch.optim.Optimizer
    implementation : {'fused', 'foreach'}
    """
    torch = import_torch()
    probe = torch.zeros(2, dtype=dtype, requires_grad=True)
    probe.grad = torch.ones(2, dtype=dtype)
    try:
        _make_optimizer([probe], solver, learning_rate, "fused").step()
    except (RuntimeError, ValueError):
        return _make_optimizer(groups, solver, learning_rate, "foreach"), "foreach"
    return _make_optimizer(groups, solver, learning_rate, "fused"), "fused"


class TorchMLP:
    """A multilayer perceptron with ReLU units trained by a PyTorch loop.

    Parameters mirror the scikit-learn estimators' for the settings the
    benchmarks use; ``tol`` and ``n_iter_no_change`` are accepted and ignored
    (the loop always runs ``max_iter`` epochs, as the benchmarks ask of every
    library).

    Parameters
    ----------
    task : {'classification', 'regression'}
    hidden_layer_sizes : tuple of int
    solver : {'adam', 'sgd'}
    batch_size : int
    max_iter : int
        Epochs.
    alpha : float, default=1e-4
    learning_rate_init : float, default=1e-3
    random_state : int, default=0
    n_threads : int, default=None
        Intra-op threads; None means every core this process may use.
    """

    def __init__(
        self,
        task,
        hidden_layer_sizes,
        solver,
        batch_size,
        max_iter,
        alpha=1e-4,
        learning_rate_init=1e-3,
        random_state=0,
        n_threads=None,
        tol=None,
        n_iter_no_change=None,
        momentum=0.9,
        nesterovs_momentum=True,
    ):
        if solver == "sgd" and (momentum != 0.9 or not nesterovs_momentum):
            raise ValueError("TorchMLP runs sgd with Nesterov momentum 0.9 only")
        self.task = task
        self.hidden_layer_sizes = hidden_layer_sizes
        self.solver = solver
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state
        self.n_threads = n_threads

    def _build(self, units, dtype, random_state):
        """Sequential model with Glorot-uniform weights drawn like scikit-learn's."""
        torch = import_torch()
        layers = []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            weight = random_state.uniform(-bound, bound, (fan_in, fan_out))
            bias = random_state.uniform(-bound, bound, fan_out)
            layer = torch.nn.Linear(fan_in, fan_out, dtype=dtype)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(weight.T.copy()))
                layer.bias.copy_(torch.from_numpy(bias))
            layers += [layer, torch.nn.ReLU()]
        return torch.nn.Sequential(*layers[:-1])  # no ReLU on the output

    def _targets(self, y):
        torch = import_torch()
        if self.task == "classification":
            self.classes_, codes = np.unique(y, return_inverse=True)
            return torch.from_numpy(codes.astype(np.int64)), len(self.classes_)
        return torch.from_numpy(np.asarray(y, dtype=np.float64).reshape(-1, 1)), 1

    def _loss(self, output, target):
        torch = import_torch()
        if self.task == "classification":
            return torch.nn.functional.cross_entropy(output, target)
        return 0.5 * torch.nn.functional.mse_loss(output, target)

    def fit(self, X, y):
        """Train for ``max_iter`` epochs; sets ``loss_`` like scikit-learn's."""
        torch = import_torch()
        X = np.ascontiguousarray(X)
        inputs = torch.from_numpy(X)
        targets, n_outputs = self._targets(y)
        if self.task == "regression":
            targets = targets.to(inputs.dtype)
        random_state = check_random_state(self.random_state)
        units = [X.shape[1], *self.hidden_layer_sizes, n_outputs]
        self.model_ = self._build(units, inputs.dtype, random_state)

        # Weight decay on the weights only, as scikit-learn's penalty.
        weights = [p for name, p in self.model_.named_parameters() if "weight" in name]
        biases = [p for name, p in self.model_.named_parameters() if "bias" in name]
        groups = [
            {"params": weights, "weight_decay": self.alpha / self.batch_size},
            {"params": biases, "weight_decay": 0.0},
        ]
        optimizer, self.optimizer_implementation_ = fastest_optimizer(
            groups, self.solver, self.learning_rate_init, inputs.dtype
        )

        saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_threads or _available_cores())
        try:
            self._train(inputs, targets, optimizer, weights, random_state)
        finally:
            torch.set_num_threads(saved_threads)
        return self

    def _train(self, inputs, targets, optimizer, weights, random_state):
        torch = import_torch()
        n_samples = inputs.shape[0]
        n_batches = -(-n_samples // self.batch_size)
        order = np.arange(n_samples)
        for _ in range(self.max_iter):
            # The same reshuffle of the previous order as scikit-learn's; one
            # gather per epoch, then contiguous slices as mini-batches.
            order = shuffle(order, random_state=random_state)
            index = torch.from_numpy(order)
            epoch_inputs, epoch_targets = inputs[index], targets[index]
            summed_loss = torch.zeros((), dtype=torch.float64)
            for start in range(0, n_samples, self.batch_size):
                batch = slice(start, start + self.batch_size)
                optimizer.zero_grad(set_to_none=True)
                loss = self._loss(
                    self.model_(epoch_inputs[batch]), epoch_targets[batch]
                )
                loss.backward()
                optimizer.step()
                summed_loss += loss.detach() * (min(n_samples, batch.stop) - start)

        # scikit-learn adds alpha / 2 * ||W||^2 / batch_size to each batch's
        # loss; here it is evaluated once, on the final weights.
        with torch.no_grad():
            squares = sum(float((w.double() ** 2).sum()) for w in weights)
        penalty = 0.5 * self.alpha * squares * n_batches / n_samples
        self.loss_ = float(summed_loss) / n_samples + penalty
        self.n_iter_ = self.max_iter

    def _output(self, X):
        torch = import_torch()
        with torch.inference_mode():
            return self.model_(torch.from_numpy(np.ascontiguousarray(X)))

    def predict_proba(self, X):
        """Class probabilities (classification only)."""
        torch = import_torch()
        with torch.inference_mode():
            return torch.softmax(self._output(X), dim=1).numpy()

    def predict(self, X):
        output = self._output(X)
        if self.task == "classification":
            return self.classes_[output.argmax(dim=1).numpy()]
        return output.numpy().ravel()

    def score(self, X, y):
        """Accuracy (classification) or R^2 (regression), as scikit-learn's."""
        if self.task == "classification":
            return accuracy_score(y, self.predict(X))
        return r2_score(y, self.predict(X))


def _available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
