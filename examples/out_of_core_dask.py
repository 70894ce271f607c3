"""Out-of-core training of fastmlp on a dask array, block by block.

The data are a dask array whose blocks are generated only when a task needs
them, so the whole set never sits in memory at once. dask-ml's Incremental
wrapper passes the blocks one after another to the estimator's partial_fit
(one epoch over each block), on the workers of a local dask.distributed
cluster; each pass over the blocks is followed by the accuracy on held-out
blocks. The labels are drawn at random from a logistic model of the
features, so no classifier gets them all right (logistic regression, the
true model, scores about 0.78 with the default sizes). Each worker runs one
thread, so fastmlp uses one thread in it (dask sets OMP_NUM_THREADS=1 in its
worker processes), and loads its compiled kernels from the on-disk cache on
its first call.
"""

import argparse
import time

try:
    from dask.distributed import Client, LocalCluster
    from dask_ml.datasets import make_classification
    from dask_ml.wrappers import Incremental
except ImportError:  # pragma: no cover - depends on the installed extras
    raise SystemExit(
        "This example needs dask, distributed and dask-ml: pip install 'fastmlp[dask]'"
    ) from None

from fastmlp import MLPClassifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--chunk-size", type=int, default=5000, help="rows a block")
    parser.add_argument(
        "--test-blocks", type=int, default=2, help="last blocks held out for testing"
    )
    parser.add_argument("--passes", type=int, default=5, help="passes over the data")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the local cluster; 0 runs the tasks in this "
        "process with dask's threaded scheduler",
    )
    args = parser.parse_args(argv)

    X, y = make_classification(
        n_samples=args.n_samples,
        n_features=args.n_features,
        n_informative=args.n_features // 2,
        chunks=args.chunk_size,
        random_state=0,
    )
    n_test = args.test_blocks * args.chunk_size
    X_train, y_train = X[:-n_test], y[:-n_test]
    X_test, y_test = X[-n_test:], y[-n_test:]
    print(
        f"{X_train.shape[0]} training rows in {X_train.numblocks[0]} blocks of "
        f"{args.chunk_size} x {args.n_features}, {X_test.shape[0]} test rows"
    )

    cluster = client = None
    if args.workers > 0:
        # Loopback only and no dashboard: nothing is exposed to the network.
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
        print(f"local cluster: {args.workers} worker process(es), 1 thread each")

    model = Incremental(
        MLPClassifier(
            hidden_layer_sizes=(64,), learning_rate_init=0.01, random_state=0
        ),
        scoring="accuracy",
        random_state=0,
    )
    try:
        start = time.perf_counter()
        # The test blocks are small: bring them to this process once, and score
        # the fitted estimator on them directly.
        X_test, y_test = X_test.compute(), y_test.compute()
        for n_pass in range(1, args.passes + 1):
            model.partial_fit(X_train, y_train, classes=[0, 1])
            accuracy = model.estimator_.score(X_test, y_test)
            print(
                f"pass {n_pass}: test accuracy {accuracy:.4f}, "
                f"{time.perf_counter() - start:.1f} s so far"
            )
        print(
            f"fastmlp trained on {model.estimator_.t_} rows in all "
            f"({args.passes} passes over {X_train.shape[0]} rows)"
        )
    finally:
        if client is not None:
            client.close()
            cluster.close()


if __name__ == "__main__":
    main()
