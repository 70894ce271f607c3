"""``python -m fastmlp``: fastmlp and scikit-learn side by side on real data.

Trains fastmlp.MLPClassifier and sklearn.neural_network.MLPClassifier with the
same settings on scikit-learn's bundled handwritten-digits data (so it runs
offline), then prints the test accuracy and fit time of each and the speed
ratio. scikit-learn runs with its BLAS on one thread, its fastest setting for
layers this small; fastmlp uses all cores.
"""

import argparse
import time
import warnings

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp._threads import effective_n_threads


def _timed_fits(make_model, X, y, repeats):
    """Fit a fresh model ``repeats`` times; return the last model and the times."""
    times = []
    for _ in range(repeats):
        model = make_model()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        times.append(time.perf_counter() - start)
    return model, times


def compare_with_scikit_learn(
    data_name, X_train, y_train, X_test, y_test, settings, repeats, n_jobs=None
):
    """Fit both MLPClassifiers with ``settings``, print accuracy, fit time and the
    speed ratio; returns scikit-learn's median fit time over fastmlp's.

    fastmlp fits once on a few rows first, so that compiling (or loading) its
    kernels is reported apart from the timed fits.
    """
    print(
        f"fastmlp {fastmlp.__version__} vs scikit-learn {sklearn.__version__}: "
        f"{data_name}, {X_train.shape[0]} training and {X_test.shape[0]} test "
        f"images of {X_train.shape[1]} pixels, {len(np.unique(y_train))} classes"
    )
    print("settings:", ", ".join(f"{k}={v!r}" for k, v in settings.items()))

    start = time.perf_counter()
    warm_up = {**settings, "max_iter": 1}
    _timed_fits(
        lambda: fastmlp.MLPClassifier(**warm_up), X_train[:200], y_train[:200], 1
    )
    print(
        f"first fastmlp fit, compiling or loading the compiled kernels: "
        f"{time.perf_counter() - start:.2f} s"
    )

    with threadpool_limits(limits=1, user_api="blas"):
        theirs, their_times = _timed_fits(
            lambda: SklearnMLPClassifier(**settings), X_train, y_train, repeats
        )
    ours, our_times = _timed_fits(
        lambda: fastmlp.MLPClassifier(**settings, n_jobs=n_jobs),
        X_train,
        y_train,
        repeats,
    )

    their_time, our_time = np.median(their_times), np.median(our_times)
    n_threads = effective_n_threads(n_jobs)
    print(f"{'':14s}{'test accuracy':>15s}{'epochs':>8s}{'fit time (median)':>20s}")
    for name, model, seconds, note in (
        ("scikit-learn", theirs, their_time, "BLAS on 1 thread"),
        ("fastmlp", ours, our_time, f"{n_threads} thread(s)"),
    ):
        accuracy = model.score(X_test, y_test)
        print(
            f"{name:14s}{accuracy:15.4f}{model.n_iter_:8d}{seconds:18.3f} s  ({note})"
        )
    ratio = their_time / our_time
    speed = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    print(
        f"fastmlp fits {speed} than scikit-learn "
        f"(median of {repeats} fit(s) each, same settings, same data)"
    )
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastmlp", description=__doc__.splitlines()[0].split(": ", 1)[-1]
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed fits per library (median reported)",
    )
    parser.add_argument("--max-iter", type=int, default=200)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 scaled to [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    settings = dict(
        hidden_layer_sizes=(100,),
        solver="adam",
        batch_size=200,
        max_iter=args.max_iter,
        random_state=0,
    )
    compare_with_scikit_learn(
        "digits data", X_train, y_train, X_test, y_test, settings, args.repeats
    )


if __name__ == "__main__":
    main()
