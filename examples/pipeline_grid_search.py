"""Grid search over a scaling + fastmlp pipeline on the digits data.

A fastmlp estimator drops into scikit-learn's model selection like any other:
here a Pipeline of StandardScaler and fastmlp.MLPClassifier is tuned by
GridSearchCV over the hidden layer sizes and the L2 penalty, then scored on
held-out images. scikit-learn's bundled digits data keep it offline.
"""

import argparse
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-samples", type=int, default=None, help="digits used (all 1797)"
    )
    parser.add_argument("--max-iter", type=int, default=100, help="epochs per fit")
    parser.add_argument("--cv", type=int, default=3, help="cross-validation folds")
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="parallel fits of the search"
    )
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X, y = X[: args.n_samples], y[: args.n_samples]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", MLPClassifier(max_iter=args.max_iter, random_state=0)),
        ]
    )
    grid = {
        "mlp__hidden_layer_sizes": [(32,), (64,), (64, 32)],
        "mlp__alpha": [1e-4, 1e-2, 1.0],
    }
    search = GridSearchCV(pipeline, grid, cv=args.cv, n_jobs=args.n_jobs)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start

    n_fits = len(search.cv_results_["params"]) * args.cv
    print(
        f"{n_fits} fits of {len(search.cv_results_['params'])} settings "
        f"({args.cv}-fold) on {len(X_train)} digits in {seconds:.1f} s"
    )
    order = search.cv_results_["rank_test_score"].argsort()
    print(f"{'rank':>4s}  {'mean CV accuracy':>16s}  settings")
    for i in order:
        print(
            f"{search.cv_results_['rank_test_score'][i]:4d}  "
            f"{search.cv_results_['mean_test_score'][i]:16.4f}  "
            f"{search.cv_results_['params'][i]}"
        )
    print(f"best settings: {search.best_params_}")
    accuracy = search.score(X_test, y_test)
    print(f"test accuracy of the refitted best pipeline: {accuracy:.4f}")


if __name__ == "__main__":
    main()
