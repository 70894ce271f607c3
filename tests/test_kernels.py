"""The compiled kernels against the NumPy reference and finite differences."""

import naive
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import (
    ATOL,
    HIDDEN_ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    RTOL,
    make_problem,
)

from fastmlp._kernels import (
    PREDICT_ROWS,
    Network,
    ThreadCountTuner,
    optimizer_settings,
    optimizer_state,
)
from fastmlp._kernels._backprop import FEW_ROWS

UNITS_HIDDEN = [6, 4]


def _network(X, y, activation, out_activation, hidden=UNITS_HIDDEN):
    units = [X.shape[1], *hidden, y.shape[1]]
    return Network(units, activation, out_activation, X.dtype)


def _random_params(network, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-0.8, 0.8, network.n_params)).astype(network.dtype)


def _flat(network, coefs, intercepts):
    return network.pack(coefs, intercepts).astype(np.float64)


def _assert_close(got, want, dtype):
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=ATOL[dtype] * scale)


@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_loss_and_gradient_match_reference(activation, out_activation, dtype):
    X, y = make_problem(out_activation, dtype=dtype)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(X)).astype(dtype)
    network = _network(X, y, activation, out_activation)
    params = _random_params(network)
    grad = np.empty_like(params)

    loss = network.loss_and_gradient(params, X, y, weights, 0.3, grad, threads=1)

    coefs, intercepts = network.views(params)
    want_loss, coef_grads, intercept_grads = naive.loss_and_gradients(
        X,
        y,
        coefs,
        intercepts,
        activation,
        out_activation,
        0.3,
        weights,
        exact_multioutput=True,
    )
    assert grad.dtype == dtype
    _assert_close(loss, want_loss, dtype)
    _assert_close(grad, _flat(network, coef_grads, intercept_grads), dtype)


@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_gradient_matches_finite_differences(activation, out_activation, dtype):
    X, y = make_problem(out_activation, n_samples=23, dtype=dtype)
    network = _network(X, y, activation, out_activation)
    params = _random_params(network, seed=3)
    weights = np.ones(len(X), dtype=dtype)
    grad = np.empty_like(params)
    network.loss_and_gradient(params, X, y, weights, 0.1, grad, threads=1)

    def loss_at(point):
        scratch = np.empty_like(point)
        return network.loss_and_gradient(point, X, y, weights, 0.1, scratch, 1)

    if dtype == np.float64:
        # Every coordinate, central differences.
        step = 1e-6
        numeric = np.empty(network.n_params)
        for k in range(network.n_params):
            shift = np.zeros_like(params)
            shift[k] = step
            numeric[k] = (loss_at(params + shift) - loss_at(params - shift)) / (
                2 * step
            )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    else:
        # float32 rounding swamps single-coordinate differences; compare
        # directional derivatives along random directions with a larger step.
        rng = np.random.default_rng(4)
        for _ in range(5):
            direction = rng.standard_normal(network.n_params).astype(dtype)
            direction /= np.linalg.norm(direction)
            step = np.float32(1e-2)
            numeric = (
                loss_at(params + step * direction) - loss_at(params - step * direction)
            ) / (2 * step)
            analytic = float(np.dot(grad.astype(np.float64), direction))
            assert abs(numeric - analytic) <= 2e-2 * max(1.0, abs(analytic))


@pytest.mark.parametrize("solver", ["sgd", "sgd-plain", "adam"])
@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_epoch_matches_reference(activation, out_activation, solver, dtype):
    X, y = make_problem(out_activation, n_samples=37, dtype=dtype)
    network = _network(X, y, activation, out_activation)
    params = _random_params(network, seed=5)
    order = np.random.default_rng(6).permutation(len(X))
    weights = np.random.default_rng(7).uniform(0.5, 2.0, len(X)).astype(dtype)
    nesterov = solver == "sgd"
    kernel_solver = "adam" if solver == "adam" else "sgd"
    settings = optimizer_settings(0.01, 0.9, 0.9, 0.999, 1e-8, 0.01)
    state = optimizer_state(kernel_solver, network.n_params, dtype)
    adam_step = np.zeros(1, dtype=np.int64)

    reference = [a.copy() for a in sum(network.views(params.copy()), [])]
    coefs, intercepts = reference[:3], reference[3:]
    if kernel_solver == "adam":
        optimizer = naive.Adam(reference, 0.01)
    else:
        optimizer = naive.Sgd(reference, 0.01, 0.9, nesterov)

    for _ in range(2):
        total = network.epoch(
            params,
            state,
            X,
            y,
            weights,
            order,
            10,
            kernel_solver,
            settings,
            adam_step,
            nesterov,
            threads=1,
        )
        want = naive.train_epoch(
            X,
            y,
            coefs,
            intercepts,
            activation,
            out_activation,
            0.01,
            order,
            10,
            optimizer,
            weights,
        )
        _assert_close(total / len(X), want, dtype)
    assert adam_step[0] == (8 if kernel_solver == "adam" else 0)
    assert np.isfinite(params).all()
    _assert_close(params, _flat(network, coefs, intercepts), dtype)


@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_predict_matches_reference(activation, out_activation, dtype):
    # More rows than one prediction block, so several blocks and threads run.
    X, y = make_problem(out_activation, n_samples=700, dtype=dtype)
    network = _network(X, y, activation, out_activation)
    params = _random_params(network, seed=8)
    got = network.predict(params, X, n_threads=2)
    coefs, intercepts = network.views(params)
    want = naive.forward(X, coefs, intercepts, activation, out_activation)[-1]
    assert got.dtype == dtype
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("out_activation", ["softmax", "identity"])
@pytest.mark.parametrize("n_samples", [1, 2, 4, 2 * PREDICT_ROWS + 3])
def test_predict_of_a_few_rows_matches_reference(n_samples, out_activation, dtype):
    # Blocks of at most FEW_ROWS rows take a product of their own (row by row).
    assert n_samples % PREDICT_ROWS <= FEW_ROWS
    X, y = make_problem(out_activation, n_samples=n_samples, dtype=dtype)
    network = _network(X, y, "relu", out_activation)
    params = _random_params(network, seed=12)
    got = network.predict(params, X, n_threads=2)
    coefs, intercepts = network.views(params)
    want = naive.forward(X, coefs, intercepts, "relu", out_activation)[-1]
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("out_activation", ["softmax", "identity"])
def test_sparse_input_matches_dense(out_activation, dtype):
    X, y = make_problem(out_activation, n_samples=50, n_features=12, dtype=dtype)
    X[np.random.default_rng(9).random(X.shape) < 0.7] = 0
    X_csr = sp.csr_matrix(X)
    network = _network(X, y, "tanh", out_activation)
    params = _random_params(network, seed=10)
    weights = np.ones(len(X), dtype=dtype)

    dense_grad, sparse_grad = np.empty_like(params), np.empty_like(params)
    dense_loss = network.loss_and_gradient(params, X, y, weights, 0.1, dense_grad, 2)
    sparse_loss = network.loss_and_gradient(
        params, X_csr, y, weights, 0.1, sparse_grad, 2
    )
    _assert_close(sparse_loss, dense_loss, dtype)
    _assert_close(sparse_grad, dense_grad, dtype)
    _assert_close(
        network.predict(params, X_csr, 2), network.predict(params, X, 2), dtype
    )

    order = np.random.default_rng(11).permutation(len(X))
    settings = optimizer_settings(0.01, 0.9, 0.9, 0.999, 1e-8, 0.001)
    trained = []
    for data in (X, X_csr):
        p = params.copy()
        network.epoch(
            p,
            optimizer_state("adam", network.n_params, dtype),
            data,
            y,
            weights,
            order,
            16,
            "adam",
            settings,
            np.zeros(1, dtype=np.int64),
            False,
            2,
        )
        trained.append(p)
    _assert_close(trained[1], trained[0], dtype)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_is_bit_identical_for_any_thread_count(solver, dtype):
    # Batches of 300 rows are cut into several chunks and tiles; whichever
    # thread computes a chunk or tile, the arithmetic must be the same.
    X, y = make_problem(
        "softmax", n_samples=1000, n_features=30, n_outputs=5, dtype=dtype
    )
    network = _network(X, y, "relu", "softmax", hidden=[64, 32])
    weights = np.ones(len(X), dtype=dtype)
    order = np.random.default_rng(12).permutation(len(X))
    settings = optimizer_settings(0.01, 0.9, 0.9, 0.999, 1e-8, 0.001)
    results = []
    for n_threads in (1, 2, 3):
        params = _random_params(network, seed=13) * dtype(0.2)
        state = optimizer_state(solver, network.n_params, dtype)
        losses = [
            network.epoch(
                params,
                state,
                X,
                y,
                weights,
                order,
                300,
                solver,
                settings,
                np.zeros(1, dtype=np.int64),
                True,
                n_threads,
            )
            for _ in range(3)
        ]
        results.append((params, losses))
    for params, losses in results[1:]:
        np.testing.assert_array_equal(params, results[0][0])
        assert losses == results[0][1]


class ScriptedTuner(ThreadCountTuner):
    """Runs segments of the given (threads, batches) in turn, cycling."""

    def __init__(self, script):
        super().__init__(max(threads for threads, _ in script))
        self.script, self.planned, self.recorded = script, [], []

    def plan(self, batches_left):
        threads, batches = self.script[len(self.planned) % len(self.script)]
        self.planned.append((threads, min(batches, batches_left)))
        return self.planned[-1]

    def record(self, threads, batches, seconds):
        self.recorded.append((threads, batches))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_in_segments_on_changing_teams_is_bit_identical(solver, dtype):
    # A tuner may cut an epoch into runs of batches, each on a different
    # number of threads; the loss and weights must be those of one call.
    X, y = make_problem(
        "softmax", n_samples=1030, n_features=40, n_outputs=5, dtype=dtype
    )
    # Layers cut into several tiles, so that the squared norm summed tile by
    # tile differs in its last bits from one summed over the whole buffer.
    network = _network(X, y, "relu", "softmax", hidden=[100, 70])
    assert len(network.tiles) > 3
    weights = np.random.default_rng(18).uniform(0.5, 2.0, len(X)).astype(dtype)
    order = np.random.default_rng(19).permutation(len(X))
    # A strong L2 penalty, so that the loss shows the last bits of the
    # squared norm, which must also carry over from segment to segment.
    settings = optimizer_settings(0.01, 0.9, 0.9, 0.999, 1e-8, 5.0)
    # 1030 rows in batches of 100: ten full batches and one of 30.
    scripts = [None, [(2, 3), (1, 1), (3, 2)], [(1, 4), (2, 20)], [(2, 1), (1, 1)]]
    results, tuners = [], []
    for script in scripts:
        params = _random_params(network, seed=20) * dtype(0.2)
        state = optimizer_state(solver, network.n_params, dtype)
        adam_step = np.zeros(1, dtype=np.int64)
        threads = 1 if script is None else ScriptedTuner(script)
        losses = [
            network.epoch(
                params,
                state,
                X,
                y,
                weights,
                order,
                100,
                solver,
                settings,
                adam_step,
                True,
                threads,
            )
            for _ in range(3)
        ]
        results.append((params, state, adam_step, losses))
        tuners.append(threads)
    for params, state, adam_step, losses in results[1:]:
        np.testing.assert_array_equal(params, results[0][0])
        np.testing.assert_array_equal(state, results[0][1])
        assert adam_step[0] == results[0][2][0] == (33 if solver == "adam" else 0)
        assert losses == results[0][3]
    # Each epoch's segments cover its 11 batches exactly once.
    first = tuners[1].planned
    assert first[:6] == [(2, 3), (1, 1), (3, 2), (2, 3), (1, 1), (3, 1)]
    assert sum(batches for _, batches in tuners[1].planned) == 3 * 11
    assert tuners[2].planned[:2] == [(1, 4), (2, 7)]
    assert tuners[1].recorded == tuners[1].planned


@pytest.mark.parametrize("sparse_input", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_with_many_chunks_and_tiles_matches_reference(solver, sparse_input):
    # Batches of 200 rows are cut into several chunks, and these layers into
    # several tiles each (bands of weight rows): every band's weights,
    # biases and optimizer state must come out as in the reference.
    X, y = make_problem("softmax", n_samples=450, n_features=40, n_outputs=5)
    X[np.random.default_rng(14).random(X.shape) < 0.5] = 0
    network = _network(X, y, "relu", "softmax", hidden=[100, 70])
    layers_with_bands = {int(layer) for layer in network.tiles[:, 0]}
    assert len(network.tiles) > len(layers_with_bands) == 3
    params = _random_params(network, seed=15) * 0.3
    order = np.random.default_rng(16).permutation(len(X))
    weights = np.random.default_rng(17).uniform(0.5, 2.0, len(X))
    settings = optimizer_settings(0.01, 0.9, 0.9, 0.999, 1e-8, 0.01)
    state = optimizer_state(solver, network.n_params, np.float64)

    reference = [a.copy() for a in sum(network.views(params.copy()), [])]
    coefs, intercepts = reference[:3], reference[3:]
    optimizer = (
        naive.Adam(reference, 0.01)
        if solver == "adam"
        else naive.Sgd(reference, 0.01, 0.9, True)
    )
    data = sp.csr_matrix(X) if sparse_input else X
    total = network.epoch(
        params,
        state,
        data,
        y,
        weights,
        order,
        200,
        solver,
        settings,
        np.zeros(1, dtype=np.int64),
        True,
        threads=2,
    )
    want = naive.train_epoch(
        X, y, coefs, intercepts, "relu", "softmax", 0.01, order, 200, optimizer, weights
    )
    _assert_close(total / len(X), want, np.float64)
    _assert_close(params, _flat(network, coefs, intercepts), np.float64)
