"""Time fastmlp against scikit-learn and PyTorch on five workloads, in one run.

For each workload (see ``suite/workloads.py``) the script times full training
runs of

- fastmlp, with its default ``n_jobs`` (all cores), after one warm-up fit so
  that the compiled kernels are ready (steady state);
- scikit-learn, once with its BLAS held to 1 thread and once with all cores
  (threadpoolctl), quoting the faster setting;
- a plain PyTorch CPU loop (``suite/torch_mlp.py``) on all cores, with the same
  architecture, loss, optimizer, initial weights and mini-batch order; skipped
  when PyTorch is not installed.

Every fit is repeated and the median quoted; the repeats of the libraries
are interleaved, round by round, so that other work on a shared machine
slows all of them alike. The table gives seconds,
samples/s, GFLOP/s (6 x samples x weights per epoch), the share of the
machine's practical peak (the fastest large matrix product measured in the same
run), the same share counting only the work done (no library computes the
input layer's backward product, which the 6 x count includes), speed ratios
against scikit-learn and PyTorch, and the final training loss of each
library, which must agree for the comparison to be fair.

The same fits are then timed next to one busy process (a Python loop, which
keeps one core busy) on the small networks of W1 and W4, where fastmlp's
choice of team size matters most; fastmlp runs there three ways: by default
(it times segments of training and uses the fastest team size), with that
choice switched off (all cores throughout), and with ``n_jobs=1``.

It also measures ``predict_proba`` latency (1 row) and throughput (100,000
rows) on W2 and W5, and the time of fastmlp's first fit in a fresh process,
with an empty Numba cache (cold: compiling) and with the cache that run left
(warm: loading).

Run it as::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py

(those variables, when set on a machine, make NumPy's OpenBLAS slower).
``--quick`` runs everything on tiny data in seconds, as a smoke test.
"""

import argparse
import contextlib
import functools
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import sklearn
from suite.torch_mlp import TORCH_AVAILABLE, import_torch
from suite.workloads import (
    LIBRARIES,
    WORKLOADS,
    first_fit_in_subprocess,
    fit_quietly,
    warm_up,
)
from threadpoolctl import threadpool_info, threadpool_limits

from fastmlp._kernels import ThreadCountTuner

SECTIONS = ("peak", "fit", "busy", "predict", "compile")

# Pause before each timed fit. OpenBLAS's and OpenMP's worker threads keep
# spinning for a while after their last task before they sleep (OpenBLAS's
# OPENBLAS_THREAD_TIMEOUT sets how long); a fit of another library started
# meanwhile would share the cores with them.
SETTLE_SECONDS = 0.25

# Sizes of a --quick run: (samples, epochs) per workload, and the rest.
QUICK_SIZES = {
    "W1": (300, 2),
    "W2": (600, 1),
    "W3": (300, 1),
    "W4": (1000, 1),
    "W5": (600, 1),
}
QUICK = dict(peak_size=512, predict_rows=600, latency_calls=10, compile_epochs=2)
FULL = dict(
    peak_size=3072, predict_rows=100_000, latency_calls=200, compile_epochs=None
)


def available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------
# Results


@dataclass
class PeakResult:
    """Speed of a large matrix product on all cores."""

    dtype: str
    library: str
    gflops: float


@dataclass
class FitResult:
    """Repeated training runs of one library on one workload."""

    workload: str
    library: str
    setting: str
    times: list
    n_samples: int
    epochs: int
    flops: float
    flops_done: float
    final_loss: float

    @property
    def seconds(self):
        return statistics.median(self.times)

    @property
    def samples_per_second(self):
        return self.n_samples * self.epochs / self.seconds

    @property
    def gflops(self):
        return self.flops / self.seconds / 1e9

    @property
    def gflops_done(self):
        return self.flops_done / self.seconds / 1e9


@dataclass
class PredictResult:
    """predict_proba latency on one row and throughput on many."""

    dtype: str
    library: str
    setting: str
    latency: float
    n_rows: int
    rows_per_second: float


@dataclass
class CompileResult:
    """fastmlp's first fit in a fresh process."""

    cache: str
    import_seconds: float
    fit_seconds: float


# ----------------------------------------------------------------------
# Measuring


def _median_seconds(function, repeats):
    """Median wall time of ``repeats`` calls of ``function()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _best_seconds(function, repeats):
    """Shortest wall time of ``repeats`` calls of ``function()``."""
    return min(_median_seconds(function, 1) for _ in range(repeats))


def measure_peak(size, repeats=3):
    """GFLOP/s of a size x size matrix product, per dtype and library.

    The best of ``repeats`` products counts: a peak is what the machine can do,
    so the run least disturbed by other processes is the closest to it.
    """
    cores = available_cores()
    rng = np.random.default_rng(0)
    flops = 2.0 * size**3
    results = []
    for dtype in (np.float64, np.float32):
        a = rng.standard_normal((size, size)).astype(dtype)
        b = rng.standard_normal((size, size)).astype(dtype)
        with threadpool_limits(limits=cores, user_api="blas"):
            product = functools.partial(np.matmul, a, b)
            product()  # the first call starts BLAS's threads
            best = _best_seconds(product, repeats)
        results.append(PeakResult(np.dtype(dtype).name, "numpy", flops / best / 1e9))
        if TORCH_AVAILABLE:
            torch = import_torch()
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            with torch_threads(cores):
                product = functools.partial(torch.matmul, ta, tb)
                product()
                best = _best_seconds(product, repeats)
            results.append(
                PeakResult(np.dtype(dtype).name, "torch", flops / best / 1e9)
            )
    return results


@contextlib.contextmanager
def torch_threads(n_threads):
    """PyTorch's intra-op thread count set for a block, then restored."""
    torch = import_torch()
    saved = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@dataclass
class _Contender:
    """One library at one setting, as timed on a workload."""

    library: str
    setting: object  # text, or a function of the fitted estimator giving it
    make_estimator: object
    limits: object  # factory of the context manager a fit runs under
    needs_warm_up: bool


def _contenders(workload, libraries, thread_counts):
    """Every (library, setting) to time, in table order.

    ``thread_counts`` maps 'sklearn' and 'torch' to the thread counts to try.
    fastmlp runs with its default n_jobs; scikit-learn with its BLAS held to
    each thread count; PyTorch on each thread count.
    """
    make = workload.make_estimator
    for library in libraries:
        if library == "fastmlp":
            yield _Contender(
                "fastmlp",
                "n_jobs=None",
                functools.partial(make, "fastmlp"),
                contextlib.nullcontext,
                True,
            )
        elif library == "sklearn":
            for n in thread_counts["sklearn"]:
                yield _Contender(
                    "sklearn",
                    f"BLAS {n} thread(s)",
                    functools.partial(make, "sklearn"),
                    functools.partial(threadpool_limits, limits=n, user_api="blas"),
                    False,
                )
        else:
            for n in thread_counts["torch"]:
                yield _Contender(
                    "torch",
                    lambda fitted, n=n: (
                        f"{fitted.optimizer_implementation_} optimizer, {n} thread(s)"
                    ),
                    functools.partial(make, "torch", n_threads=n),
                    contextlib.nullcontext,
                    True,
                )


class _WholeEpochTeam(ThreadCountTuner):
    """fastmlp's team-size tuner switched off: every epoch runs in one call on
    all threads."""

    def plan(self, batches_left):
        return self.sizes[0], batches_left

    def record(self, threads, batches, seconds):
        pass


@contextlib.contextmanager
def tuning_off():
    """fastmlp fits inside this block train on all their threads throughout."""
    import fastmlp._multilayer_perceptron as estimators

    saved = estimators.ThreadCountTuner
    estimators.ThreadCountTuner = _WholeEpochTeam
    try:
        yield
    finally:
        estimators.ThreadCountTuner = saved


# Keeps a core busy until killed, or until its parent is gone (a benchmark
# stopped by SIGTERM runs no cleanup and would leave it spinning).
_BUSY_LOOP = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


@contextlib.contextmanager
def busy_process():
    """Another process keeping one core busy while the block runs.

    Raises RuntimeError at the end of the block if that process ended early
    (say, by a Ctrl-C that the fits then caught), since the timings would
    then be labelled wrongly.
    """
    process = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP])
    try:
        time.sleep(0.5)  # until it has started and runs flat out
        yield process
        if process.poll() is not None:
            raise RuntimeError(
                f"the busy process ended early (exit code {process.returncode}); "
                "the timings next to it are not valid"
            )
    finally:
        process.kill()
        process.wait()


def _busy_contenders(workload, libraries, thread_counts):
    """The contenders of the busy-machine table: those of the main table,
    with fastmlp also run with its tuning off and with n_jobs=1."""
    for contender in _contenders(workload, libraries, thread_counts):
        yield contender
        if contender.library == "fastmlp":
            make = workload.make_estimator
            yield _Contender(
                "fastmlp, tuning off",
                "n_jobs=None, all cores throughout",
                functools.partial(make, "fastmlp"),
                tuning_off,
                True,
            )
            yield _Contender(
                "fastmlp, 1 thread",
                "n_jobs=1",
                functools.partial(make, "fastmlp", n_jobs=1),
                contextlib.nullcontext,
                True,
            )


def _fastest(results):
    """The fastest of several settings; the others' medians go in its text."""
    best = min(results, key=lambda result: result.seconds)
    others = [f"{r.setting}: {r.seconds:.3g} s" for r in results if r is not best]
    if others:
        best.setting += f" (vs {', '.join(others)})"
    return best


def measure_fits(workload, libraries, repeats, thread_counts, log, contenders=None):
    """FitResults of each library on one workload, in table order.

    The repeats are interleaved: every round times one fit of each library
    and setting in turn, so that a stretch of time in which other work slows
    the machine down falls on all of them rather than on one library's
    block of repeats. Compiled code (fastmlp, PyTorch) is warmed up first.
    For each library the fastest setting (by median) is kept. ``contenders``
    replaces the default list (see ``_contenders``).
    """
    X, y = workload.data()
    if contenders is None:
        contenders = list(_contenders(workload, libraries, thread_counts))
    for contender in contenders:
        if contender.needs_warm_up:
            warm_up(workload, contender.make_estimator)
    times = [[] for _ in contenders]
    fitted = [None] * len(contenders)
    for round_ in range(repeats):
        log(f"timing {workload.name}, round {round_ + 1} of {repeats} ...")
        for index, contender in enumerate(contenders):
            estimator = contender.make_estimator()
            # Let the thread pools of the previous fit go to sleep first.
            time.sleep(SETTLE_SECONDS)
            with contender.limits():
                start = time.perf_counter()
                fit_quietly(estimator, X, y)
                times[index].append(time.perf_counter() - start)
            fitted[index] = estimator
    n_outputs = len(np.unique(y)) if workload.classifies else 1
    flops = workload.flops_per_epoch(X.shape[1], n_outputs) * workload.epochs
    flops_done = workload.flops_done_per_epoch(X.shape[1], n_outputs) * workload.epochs
    by_library = {}
    for contender, seconds, estimator in zip(contenders, times, fitted):
        setting = contender.setting
        by_library.setdefault(contender.library, []).append(
            FitResult(
                workload=workload.name,
                library=contender.library,
                setting=setting(estimator) if callable(setting) else setting,
                times=seconds,
                n_samples=len(X),
                epochs=workload.epochs,
                flops=flops,
                flops_done=flops_done,
                final_loss=float(estimator.loss_),
            )
        )
    return [_fastest(results) for results in by_library.values()]


def _thread_settings(library, thread_counts):
    """{setting text: context manager factory} under which to predict."""
    if library == "sklearn":
        return {
            f"BLAS {n} thread(s)": functools.partial(
                threadpool_limits, limits=n, user_api="blas"
            )
            for n in thread_counts["sklearn"]
        }
    if library == "torch":
        return {
            f"{n} thread(s)": functools.partial(torch_threads, n)
            for n in thread_counts["torch"]
        }
    return {"n_jobs=None": contextlib.nullcontext}


def measure_predict(workload, libraries, sizes, repeats, thread_counts, log):
    """predict_proba latency (1 row) and throughput (``sizes['predict_rows']``).

    The networks are trained for one epoch on a few thousand rows first: the
    speed of prediction depends on the architecture, not on the weights. Each
    thread setting of scikit-learn and PyTorch gets a row of its own.
    """
    X, y = workload.data()
    rows, one_row = X[: sizes["predict_rows"]], X[:1]
    n_train = min(len(X), 2000)
    results = []
    for library in libraries:
        log(f"timing predict_proba {workload.name} {library} ...")
        estimator = workload.make_estimator(library, max_iter=1)
        fit_quietly(estimator, X[:n_train], y[:n_train])
        for setting, limits in _thread_settings(library, thread_counts).items():
            with limits():
                estimator.predict_proba(rows)  # warm caches and thread pools
                latency = _median_seconds(
                    functools.partial(estimator.predict_proba, one_row),
                    sizes["latency_calls"],
                )
                seconds = _median_seconds(
                    functools.partial(estimator.predict_proba, rows), repeats
                )
            results.append(
                PredictResult(
                    np.dtype(workload.dtype).name,
                    library,
                    setting,
                    latency,
                    len(rows),
                    len(rows) / seconds,
                )
            )
    return results


def measure_compile(epochs=None):
    """First fastmlp fit in a fresh process: empty Numba cache, then warmed."""
    results = []
    with tempfile.TemporaryDirectory(prefix="fastmlp-numba-cache-") as cache_dir:
        for cache in ("cold", "warm"):
            seconds = first_fit_in_subprocess(cache_dir, max_iter=epochs)
            results.append(CompileResult(cache, seconds["import"], seconds["fit"]))
    return results


# ----------------------------------------------------------------------
# Reporting


def format_table(headers, rows, markdown=False):
    """Rows of strings as an aligned text table or a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _ratio(numerator, denominator):
    """'2.50x', or '-' when either side was not measured."""
    if numerator is None or denominator is None:
        return "-"
    return f"{numerator / denominator:.2f}x"


def fit_table(results, peaks, markdown):
    """The main table: speeds, share of peak, ratios and final losses."""
    peak = {}
    for result in peaks:
        peak[result.dtype] = max(peak.get(result.dtype, 0.0), result.gflops)
    seconds = {(r.workload, r.library): r.seconds for r in results}
    headers = [
        "workload", "library", "setting", "seconds", "samples/s", "GFLOP/s",
        "% peak", "% peak, work done", "vs sklearn", "vs torch", "final loss",
    ]  # fmt: skip
    rows = []
    for r in results:
        dtype = np.dtype(WORKLOADS[r.workload].dtype).name
        share, share_done = (
            (f"{100 * g / peak[dtype]:.1f}%" for g in (r.gflops, r.gflops_done))
            if dtype in peak
            else ("-", "-")
        )
        rows.append(
            [
                r.workload,
                r.library,
                r.setting,
                f"{r.seconds:.3f}",
                f"{r.samples_per_second:,.0f}",
                f"{r.gflops:.2f}",
                share,
                share_done,
                _ratio(seconds.get((r.workload, "sklearn")), r.seconds),
                _ratio(seconds.get((r.workload, "torch")), r.seconds),
                f"{r.final_loss:.6f}",
            ]
        )
    return format_table(headers, rows, markdown)


def loss_agreement(results):
    """One line per workload: the relative spread of the final losses.

    With the same initial weights and mini-batches, fastmlp and scikit-learn
    differ by rounding only (about 1e-15 in float64). PyTorch also places
    Adam's epsilon differently and decays the weights of the short last batch
    by alpha / batch_size; over many epochs that adds up (measured: 3e-3 after
    W1's 50 epochs). A larger spread means the libraries did not train the
    same thing.
    """
    lines = []
    for name in dict.fromkeys(r.workload for r in results):
        losses = {r.library: r.final_loss for r in results if r.workload == name}
        values = np.array(list(losses.values()))
        spread = (values.max() - values.min()) / max(abs(values.mean()), 1e-300)
        lines.append(
            f"{name}: final losses of {', '.join(losses)} agree to a relative "
            f"{spread:.1e}"
        )
    return "\n".join(lines)


def predict_table(results, markdown):
    """Latency and throughput, as ratios to scikit-learn's best setting."""
    best = {}
    for r in results:
        if r.library == "sklearn":
            latency, throughput = best.get(r.dtype, (np.inf, 0.0))
            best[r.dtype] = (
                min(latency, r.latency),
                max(throughput, r.rows_per_second),
            )
    headers = ["dtype", "library", "setting", "1 row (us)", "rows/s", "vs sklearn"]
    rows = []
    for r in results:
        latency, throughput = best.get(r.dtype, (None, None))
        rows.append(
            [
                r.dtype,
                r.library,
                r.setting,
                f"{1e6 * r.latency:.1f}",
                f"{r.rows_per_second:,.0f}",
                f"{_ratio(latency, r.latency)} latency, "
                f"{_ratio(r.rows_per_second, throughput)} throughput",
            ]
        )
    return format_table(headers, rows, markdown)


def compile_table(results, markdown):
    """Import and first-fit seconds in a new process, cold and warm cache."""
    headers = ["Numba cache", "import (s)", "first fit (s)"]
    rows = [
        [r.cache, f"{r.import_seconds:.2f}", f"{r.fit_seconds:.2f}"] for r in results
    ]
    return format_table(headers, rows, markdown)


# Whose matrix products each BLAS runs: Numba calls SciPy's, and scikit-learn's
# MLP multiplies with NumPy.
_ROLES = {"scipy": " (fastmlp's)", "numpy": " (scikit-learn's MLP)"}


def _owner(library_path):
    """The package whose wheel ships a shared library: 'numpy' for
    .../site-packages/numpy.libs/libopenblas.so, 'torch' for
    .../site-packages/torch/lib/libgomp.so."""
    parts = pathlib.PurePath(library_path).parts
    if "site-packages" in parts:
        folder = parts[parts.index("site-packages") + 1]
        return folder.removesuffix(".libs").replace("scikit_learn", "scikit-learn")
    return library_path


def environment_lines():
    """Versions, cores and BLAS libraries: what the numbers depend on."""
    import fastmlp

    versions = [
        f"fastmlp {fastmlp.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"numpy {np.__version__}",
        f"torch {import_torch().__version__}"
        if TORCH_AVAILABLE
        else "torch not installed",
    ]
    lines = [", ".join(versions) + f"; {available_cores()} cores"]
    pools = sorted(threadpool_info(), key=lambda info: _owner(info["filepath"]))
    for info in pools:
        owner = _owner(info["filepath"])
        role = _ROLES.get(owner, "")
        details = [
            f"{info['internal_api']} {info['version'] or ''}".strip(),
            info.get("threading_layer"),
            info.get("architecture"),
            f"{info['num_threads']} threads",
        ]
        lines.append(
            f"{info['user_api']} of {owner}{role}: "
            + ", ".join(detail for detail in details if detail)
        )
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if variable in os.environ:
            lines.append(
                f"note: {variable} is set; run as `env -u OPENBLAS_CORETYPE "
                "-u OPENBLAS_L2_SIZE ...` for representative BLAS speed"
            )
    return lines


# ----------------------------------------------------------------------
# Command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run in seconds"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated subset of %(default)s",
    )
    parser.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="comma-separated subset of %(default)s (torch is skipped when absent)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per measurement (median)"
    )
    parser.add_argument(
        "--big-repeats",
        type=int,
        default=None,
        help="timed runs for W2-W5, which take longest (default: --repeats)",
    )
    parser.add_argument(
        "--sklearn-threads",
        default=None,
        help="comma-separated BLAS thread counts to try for scikit-learn, the "
        "fastest quoted (default: 1 and all cores)",
    )
    parser.add_argument(
        "--torch-threads",
        default=None,
        help="comma-separated thread counts to try for PyTorch, the fastest "
        "quoted (default: all cores)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help=f"comma-separated sections to leave out, of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--busy-workloads",
        default="W1,W4",
        help="comma-separated workloads of the busy-machine table "
        "(default: %(default)s)",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)

    args.workloads = _choices(parser, "--workloads", args.workloads, WORKLOADS)
    args.busy_workloads = _choices(
        parser, "--busy-workloads", args.busy_workloads, WORKLOADS
    )
    args.libraries = _choices(parser, "--libraries", args.libraries, LIBRARIES)
    args.skip = _choices(parser, "--skip", args.skip, SECTIONS) if args.skip else []
    cores = available_cores()
    args.thread_counts = {
        "sklearn": _counts(
            parser, "--sklearn-threads", args.sklearn_threads, [1, cores]
        ),
        "torch": _counts(parser, "--torch-threads", args.torch_threads, [cores]),
    }
    if args.repeats < 1 or (args.big_repeats is not None and args.big_repeats < 1):
        parser.error("--repeats and --big-repeats must be at least 1")
    return args


def _counts(parser, option, text, default):
    """Sorted distinct positive thread counts from a comma-separated option."""
    if text is None:
        return sorted(set(default))
    try:
        counts = sorted({int(item) for item in text.split(",")})
    except ValueError:
        counts = [0]
    if not counts or counts[0] < 1:
        parser.error(f"{option} takes positive integers separated by commas")
    return counts


def _choices(parser, option, text, allowed):
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        parser.error(f"{option}: unknown {unknown}; choose from {list(allowed)}")
    return chosen


def _report_peak(args, sizes, say, log, results):
    log("measuring the practical peak ...")
    results["peak"] = measure_peak(sizes["peak_size"])
    say(f"\nPractical peak: {sizes['peak_size']}^2 matrix product on all cores")
    rows = [[r.dtype, r.library, f"{r.gflops:.1f}"] for r in results["peak"]]
    say(format_table(["dtype", "library", "GFLOP/s"], rows, args.markdown))


def _repeats(args, workload):
    """Timed fits per library on ``workload``: --big-repeats for W2-W5."""
    if workload.name != "W1" and args.big_repeats is not None:
        return args.big_repeats
    return args.repeats


def _report_fits(args, sizes, say, log, results):
    results["fit"] = []
    for workload in args.workloads:
        results["fit"] += measure_fits(
            workload, args.libraries, _repeats(args, workload), args.thread_counts, log
        )
    say("\nTraining (median of repeats; ratios are speed-ups, >1 is faster)")
    for w in args.workloads:
        samples = f"{w.n_samples} samples"
        if w.n_samples < WORKLOADS[w.name].n_samples:
            samples = f"cut to {w.n_samples} samples (--quick)"
        say(
            f"  {w.name}: {w.title}, {samples}, hidden {w.hidden}, "
            f"{w.solver}, batch {w.batch_size}, {w.epochs} epochs, "
            f"{np.dtype(w.dtype).name}"
        )
    say(fit_table(results["fit"], results.get("peak", []), args.markdown))
    say(loss_agreement(results["fit"]))


def _report_busy(args, sizes, say, log, results):
    results["busy"] = []
    # PyTorch may well be fastest on one thread here, as fastmlp is.
    thread_counts = dict(args.thread_counts)
    thread_counts["torch"] = sorted({1, *thread_counts["torch"]})
    with busy_process():
        for workload in args.busy_workloads:
            repeats = _repeats(args, workload)
            contenders = list(_busy_contenders(workload, args.libraries, thread_counts))
            results["busy"] += measure_fits(
                workload, args.libraries, repeats, thread_counts, log, contenders
            )
    say(
        "\nTraining next to one busy process (a Python loop keeping one core "
        "busy): the same fits, median of repeats; PyTorch also tried on 1 thread"
    )
    say(fit_table(results["busy"], [], args.markdown))


def _report_predict(args, sizes, say, log, results):
    results["predict"] = []
    for name in ("W2", "W5"):
        workload = _sized(WORKLOADS[name], args.quick)
        results["predict"] += measure_predict(
            workload, args.libraries, sizes, args.repeats, args.thread_counts, log
        )
    say(
        f"\npredict_proba on the W2 network: latency of 1 row (median of "
        f"{sizes['latency_calls']} calls) and throughput on "
        f"{results['predict'][0].n_rows} rows (median of {args.repeats})"
    )
    say(predict_table(results["predict"], args.markdown))


def _report_compile(args, sizes, say, log, results):
    log("timing the first fit in fresh processes ...")
    results["compile"] = measure_compile(sizes["compile_epochs"])
    epochs = sizes["compile_epochs"] or WORKLOADS["W1"].epochs
    say(f"\nfastmlp's first fit in a new process (W1 digits, {epochs} epochs)")
    say(compile_table(results["compile"], args.markdown))


REPORTS = {
    "peak": _report_peak,
    "fit": _report_fits,
    "busy": _report_busy,
    "predict": _report_predict,
    "compile": _report_compile,
}


def _sized(workload, quick):
    """The workload at full size, or at its --quick size."""
    return workload.scaled(*QUICK_SIZES[workload.name]) if quick else workload


def main(argv=None, out=None):
    """Run the measurements asked for by ``argv`` and print the tables.

    Returns
    -------
    dict
        The results per section (lists of the result dataclasses), for tests
        and for callers that want the numbers rather than the text.
    """
    args = parse_args(argv)
    out = out or sys.stdout

    def say(text=""):
        print(text, file=out, flush=True)

    def log(text):
        # Progress goes to stderr so that stdout holds the tables only.
        print(text, file=sys.stderr, flush=True)

    args.libraries = [
        library for library in args.libraries if library != "torch" or TORCH_AVAILABLE
    ]
    args.workloads = [_sized(WORKLOADS[name], args.quick) for name in args.workloads]
    args.busy_workloads = [
        _sized(WORKLOADS[name], args.quick) for name in args.busy_workloads
    ]
    sizes = QUICK if args.quick else FULL

    say(f"fastmlp benchmark{' (--quick, tiny sizes)' if args.quick else ''}")
    for line in environment_lines():
        say(line)
    results = {}
    for section, report in REPORTS.items():
        if section not in args.skip:
            report(args, sizes, say, log, results)
    return results


if __name__ == "__main__":
    main()
