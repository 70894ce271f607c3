"""fastmlp estimators on a dask.distributed cluster.

One local cluster serves the whole module: starting worker processes and
loading the compiled kernels in each takes seconds.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastmlp import MLPClassifier, MLPRegressor

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(
        1200, n_features=20, n_informative=10, class_sep=1.5, random_state=0
    )
    return X[:900], y[:900], X[900:], y[900:]


def test_incremental_streams_blocks_through_partial_fit(client, blobs):
    X_train, y_train, X_test, y_test = blobs
    X_blocks = da.from_array(X_train, chunks=300)
    y_blocks = da.from_array(y_train, chunks=300)
    settings = dict(hidden_layer_sizes=(20,), learning_rate_init=0.01, random_state=0)
    n_passes = 5

    incremental = wrappers.Incremental(
        MLPClassifier(**settings), scoring="accuracy", shuffle_blocks=False
    )
    with distributed.get_task_stream(client) as tasks:
        for _ in range(n_passes):
            incremental.partial_fit(X_blocks, y_blocks, classes=[0, 1])
    model = incremental.estimator_

    # Every block went through one partial_fit epoch per pass, in order (the
    # same calls made here in this process give the same network)...
    local = MLPClassifier(**settings)
    for _ in range(n_passes):
        for start in range(0, len(X_train), 300):
            block = slice(start, start + 300)
            local.partial_fit(X_train[block], y_train[block], classes=[0, 1])
    # ...as tasks of the cluster (dask-ml names them fit-<token>).
    fit_tasks = [t for t in tasks.data if "fit-" in str(t["key"])]
    assert len(fit_tasks) >= n_passes * X_blocks.numblocks[0]
    assert model.t_ == n_passes * len(X_train)
    for ours, theirs in zip(model.coefs_, local.coefs_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert model.score(X_test, y_test) > 0.85
    assert incremental.score(da.from_array(X_test, chunks=150), y_test) > 0.85


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (
            MLPClassifier(hidden_layer_sizes=(10,), max_iter=40, random_state=0),
            {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]},
        ),
        (
            MLPRegressor(
                hidden_layer_sizes=(10,), solver="lbfgs", max_iter=60, random_state=0
            ),
            {"alpha": [1e-4, 1.0], "activation": ["tanh", "relu"]},
        ),
    ],
    ids=["classifier", "regressor"],
)
def test_grid_search_on_dask_equals_local_search(client, blobs, estimator, grid):
    X, y, _, _ = blobs
    searches = {}
    for where in ("local", "dask"):
        search = GridSearchCV(estimator, grid, cv=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if where == "dask":
                with (
                    distributed.get_task_stream(client) as tasks,
                    joblib.parallel_backend("dask"),
                ):
                    search.fit(X, y)
            else:
                search.fit(X, y)
        searches[where] = search

    # The cross-validation fits ran as tasks of the cluster (joblib may batch
    # several fits into one task, so there can be fewer tasks than fits).
    assert tasks.data
    assert searches["dask"].best_params_ == searches["local"].best_params_
    np.testing.assert_allclose(
        searches["dask"].cv_results_["mean_test_score"],
        searches["local"].cv_results_["mean_test_score"],
        rtol=1e-12,
    )
    assert searches["dask"].best_score_ > 0.5
