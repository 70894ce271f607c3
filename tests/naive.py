"""A slow, obviously correct NumPy multilayer perceptron, the tests' reference.

Written for clarity only: lists of per-layer arrays, one mini-batch at a time,
the formulas as scikit-learn documents them. The compiled kernels must agree
with it to floating-point rounding.
"""

import numpy as np


def hidden_activation(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    raise ValueError(name)


def hidden_derivative(name, a):
    """f'(z) written in terms of a = f(z)."""
    if name == "identity":
        return np.ones_like(a)
    if name == "logistic":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a**2
    if name == "relu":
        return (a > 0).astype(a.dtype)
    raise ValueError(name)


def output_activation(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def forward(X, coefs, intercepts, activation, out_activation):
    """Activations of every layer, input first."""
    layers = [X]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = layers[-1] @ W + b
        last = i == len(coefs) - 1
        layers.append(
            output_activation(out_activation, z)
            if last
            else hidden_activation(activation, z)
        )
    return layers


def data_loss(y, p, out_activation, sample_weight):
    """Weighted mean loss over rows, as scikit-learn's loss functions."""
    w = sample_weight / sample_weight.sum()
    eps = np.finfo(p.dtype).eps
    if out_activation == "identity":
        per_row = 0.5 * ((y - p) ** 2).mean(axis=1)
    elif out_activation == "logistic":
        q = np.clip(p, eps, 1 - eps)
        per_row = -(_xlogy(y, q) + _xlogy(1 - y, 1 - q)).sum(axis=1)
    elif out_activation == "softmax":
        per_row = -_xlogy(y, np.clip(p, eps, 1 - eps)).sum(axis=1)
    else:
        per_row = (_xlogy(y, y / p) - y + p).sum(axis=1)
    return float(np.sum(w * per_row))


def _xlogy(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def loss_and_gradients(
    X,
    y,
    coefs,
    intercepts,
    activation,
    out_activation,
    alpha,
    sample_weight=None,
    exact_multioutput=False,
):
    """Loss and gradients of one batch by the chain rule, layer by layer.

    With ``exact_multioutput``, the squared-error gradient is divided by the
    number of outputs like the loss is (fastmlp's L-BFGS); otherwise it is
    scikit-learn's mini-batch gradient.
    """
    if sample_weight is None:
        sample_weight = np.ones(len(X), dtype=X.dtype)
    weight_sum = sample_weight.sum()
    layers = forward(X, coefs, intercepts, activation, out_activation)
    penalty = sum(float(np.sum(W.astype(np.float64) ** 2)) for W in coefs)
    loss = data_loss(y, layers[-1], out_activation, sample_weight)
    loss += 0.5 * alpha * penalty / weight_sum

    delta = (layers[-1] - y) * sample_weight[:, None]
    if exact_multioutput and out_activation == "identity":
        delta = delta / y.shape[1]
    coef_grads = [None] * len(coefs)
    intercept_grads = [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        coef_grads[i] = (layers[i].T @ delta + alpha * coefs[i]) / weight_sum
        intercept_grads[i] = delta.sum(axis=0) / weight_sum
        if i > 0:
            delta = (delta @ coefs[i].T) * hidden_derivative(activation, layers[i])
    return loss, coef_grads, intercept_grads


def train_epoch(
    X,
    y,
    coefs,
    intercepts,
    activation,
    out_activation,
    alpha,
    order,
    batch_size,
    optimizer,
    sample_weight=None,
):
    """One epoch of mini-batch training in place; returns the epoch loss.

    ``optimizer`` is an ``Sgd`` or ``Adam`` instance.
    """
    if sample_weight is None:
        sample_weight = np.ones(len(X), dtype=X.dtype)
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        loss, coef_grads, intercept_grads = loss_and_gradients(
            X[rows],
            y[rows],
            coefs,
            intercepts,
            activation,
            out_activation,
            alpha,
            sample_weight[rows],
        )
        total += loss * len(rows)
        optimizer.step(coefs + intercepts, coef_grads + intercept_grads)
    return total / len(order)


class Sgd:
    def __init__(self, params, learning_rate, momentum, nesterov):
        self.learning_rate, self.momentum, self.nesterov = (
            learning_rate,
            momentum,
            nesterov,
        )
        self.velocities = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        for p, g, v in zip(params, grads, self.velocities):
            v[...] = self.momentum * v - self.learning_rate * g
            p += self.momentum * v - self.learning_rate * g if self.nesterov else v


class Adam:
    def __init__(self, params, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, beta_1, beta_2
        self.epsilon = epsilon
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        rate = (
            self.learning_rate
            * np.sqrt(1 - self.beta_2**self.t)
            / (1 - self.beta_1**self.t)
        )
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[...] = self.beta_1 * m + (1 - self.beta_1) * g
            v[...] = self.beta_2 * v + (1 - self.beta_2) * g**2
            p -= rate * m / (np.sqrt(v) + self.epsilon)
