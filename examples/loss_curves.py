"""Loss and validation curves of fastmlp and scikit-learn, trained side by side.

Both libraries train an MLPClassifier with the same settings (adam, early
stopping on a held-out tenth of the training data) on a synthetic
classification problem. The figure plots each model's ``loss_curve_`` and
``validation_scores_`` against the epoch, where the two curves should lie on
top of each other, and against wall-clock time, where the speed difference
shows. Epoch times are taken as the fit runs, from the moment each library
prints its per-epoch verbose line.
"""

import argparse
import contextlib
import io
import time
import warnings

try:
    # A Figure made without pyplot draws through the Agg backend when saved to
    # a PNG: no display, and no global backend switch.
    from matplotlib.figure import Figure
except ImportError:  # pragma: no cover - depends on the installed extras
    raise SystemExit(
        "This example needs matplotlib: pip install 'fastmlp[examples]'"
    ) from None
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from threadpoolctl import threadpool_limits

import fastmlp


class _EpochClock(io.TextIOBase):
    """Text stream that notes the time of each 'Iteration ...' line written."""

    def __init__(self):
        self.start = time.perf_counter()
        self.epoch_ends = []

    def write(self, text):
        if text.startswith("Iteration "):
            self.epoch_ends.append(time.perf_counter() - self.start)
        return len(text)


def fit_with_epoch_times(model, X, y):
    """Fit ``model`` verbosely; return it and the time at the end of each epoch."""
    model.set_params(verbose=True)
    clock = _EpochClock()
    with contextlib.redirect_stdout(clock), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, clock.epoch_ends


def plot(runs, path):
    figure = Figure(figsize=(11, 8))
    axes = figure.subplots(2, 2, sharey="row")
    # Wide solid and narrow dashed lines, so that identical curves stay visible.
    styles = [dict(linewidth=4, alpha=0.5), dict(linewidth=1.5, linestyle="--")]
    for (name, (model, seconds)), style in zip(runs.items(), styles):
        epochs = range(1, len(model.loss_curve_) + 1)
        for column, x in enumerate((epochs, seconds)):
            axes[0, column].plot(x, model.loss_curve_, label=name, **style)
            axes[1, column].plot(x, model.validation_scores_, label=name, **style)
    for column, xlabel in enumerate(("epoch", "wall-clock time since fit started (s)")):
        axes[1, column].set_xlabel(xlabel)
    axes[0, 0].set_ylabel("training loss (loss_curve_)")
    axes[1, 0].set_ylabel("validation accuracy (validation_scores_)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle("fastmlp and scikit-learn MLPClassifier, same settings")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--max-iter", type=int, default=50, help="epochs at most")
    parser.add_argument("--output", default="loss_curves.png", help="PNG written")
    args = parser.parse_args(argv)

    X, y = make_classification(
        args.n_samples,
        n_features=args.n_features,
        n_informative=args.n_features // 2,
        n_classes=5,
        random_state=0,
    )
    settings = dict(
        hidden_layer_sizes=tuple(args.hidden),
        solver="adam",
        batch_size=200,
        max_iter=args.max_iter,
        early_stopping=True,
        random_state=0,
    )
    print("settings:", ", ".join(f"{k}={v!r}" for k, v in settings.items()))

    # Compile (or load) fastmlp's kernels first, so the curve shows training.
    fit_with_epoch_times(
        fastmlp.MLPClassifier(**{**settings, "max_iter": 1}), X[:500], y[:500]
    )

    runs = {}
    with threadpool_limits(limits=1, user_api="blas"):
        runs["scikit-learn (BLAS on 1 thread)"] = fit_with_epoch_times(
            SklearnMLPClassifier(**settings), X, y
        )
    runs["fastmlp"] = fit_with_epoch_times(fastmlp.MLPClassifier(**settings), X, y)

    for name, (model, seconds) in runs.items():
        print(
            f"{name:32s} {model.n_iter_:3d} epochs in {seconds[-1]:7.2f} s, "
            f"final loss {model.loss_curve_[-1]:.5f}, "
            f"best validation accuracy {model.best_validation_score_:.4f}"
        )
    plot(runs, args.output)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
