"""benchmarks/compare.py on tiny sizes, so that the script cannot rot unseen.

The comparison is only honest if every library trains the same network on the
same mini-batches, so the tests also check that the final training losses of
fastmlp, scikit-learn and (when installed) the PyTorch loop agree.
"""

import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# One thread per library keeps the smoke run short and steady on a busy machine.
QUICK_ARGS = ["--quick", "--repeats", "1", "--sklearn-threads", "1"]
QUICK_ARGS += ["--torch-threads", "1", "--skip", "compile"]


@pytest.fixture(scope="module")
def compare():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("compare")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def quick_run(compare):
    out = io.StringIO()
    results = compare.main(QUICK_ARGS, out=out)
    return results, out.getvalue()


def test_quick_run_measures_every_workload_and_library(compare, quick_run):
    results, _ = quick_run
    libraries = [lib for lib in compare.LIBRARIES if lib != "torch"]
    libraries += ["torch"] if compare.TORCH_AVAILABLE else []
    measured = [(r.workload, r.library) for r in results["fit"]]
    assert measured == [(w, lib) for w in compare.WORKLOADS for lib in libraries]
    for result in results["fit"]:
        assert result.seconds > 0 and result.gflops > 0
        assert np.isfinite(result.final_loss)


@pytest.mark.parametrize("library, rtol", [("fastmlp", 1e-6), ("torch", 1e-3)])
def test_final_losses_agree_with_scikit_learn(compare, quick_run, library, rtol):
    # Same initial weights and batch order: the losses differ by rounding only
    # (fastmlp) or by Adam's epsilon placement and the last batch's weight
    # decay (PyTorch).
    if library == "torch" and not compare.TORCH_AVAILABLE:
        pytest.skip("PyTorch is not installed")
    results, _ = quick_run
    loss = {(r.workload, r.library): r.final_loss for r in results["fit"]}
    for name in compare.WORKLOADS:
        tolerance = max(rtol, 1e-4) if name == "W5" else rtol
        np.testing.assert_allclose(
            loss[name, library], loss[name, "sklearn"], rtol=tolerance
        )


def test_quick_run_prints_every_table(quick_run):
    results, text = quick_run
    assert "Practical peak" in text and "final loss" in text
    assert "predict_proba" in text and "1 row (us)" in text
    assert {r.dtype for r in results["predict"]} == {"float64", "float32"}
    assert all(r.rows_per_second > 0 and r.latency > 0 for r in results["predict"])
    assert "compile" not in results


def test_busy_table_runs_fastmlp_three_ways_with_one_result(compare, quick_run):
    results, text = quick_run
    assert "next to one busy process" in text
    rows = {(r.workload, r.library): r for r in results["busy"]}
    for name in compare.parse_args(QUICK_ARGS).busy_workloads:
        variants = [
            rows[name, library]
            for library in ("fastmlp", "fastmlp, tuning off", "fastmlp, 1 thread")
        ]
        # However many threads trained, the model is the same.
        assert len({r.final_loss for r in variants}) == 1
        assert (name, "sklearn") in rows


def test_busy_process_ends_with_its_block(compare):
    with compare.busy_process() as process:
        assert process.poll() is None
    assert process.poll() is not None


def test_busy_process_that_ended_early_fails_the_block(compare):
    with pytest.raises(RuntimeError, match="ended early"):
        with compare.busy_process() as process:
            process.kill()
            process.wait()


def test_busy_process_ends_when_its_parent_does(compare, tmp_path):
    # A benchmark stopped by SIGTERM runs no cleanup.
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "import compare\n"
        "with compare.busy_process() as process:\n"
        "    print(process.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, 9)
    pytest.fail("the busy process outlived its parent")


def test_tuning_off_trains_each_epoch_in_one_call_on_all_threads(compare, monkeypatch):
    import fastmlp
    from fastmlp._kernels import _network

    X = np.random.default_rng(0).normal(size=(2000, 5))
    # A process's first call of the kernel runs on one thread (see _run_timed).
    fastmlp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=1).fit(X, X[:, 0])
    calls = []
    run_team = _network.run_team
    monkeypatch.setattr(
        _network,
        "run_team",
        lambda kernel, n_threads, *args: (
            calls.append(n_threads) or run_team(kernel, n_threads, *args)
        ),
    )
    model = fastmlp.MLPRegressor(
        hidden_layer_sizes=(8,), batch_size=10, max_iter=3, n_jobs=2
    )
    with compare.tuning_off():
        model.fit(X, X[:, 0])
    assert calls == [2, 2, 2]
    calls.clear()
    model.fit(X, X[:, 0])  # tuned again: an epoch of 200 batches in segments
    assert len(calls) > 3


def test_torch_rows_are_skipped_without_torch(compare, monkeypatch):
    monkeypatch.setattr(compare, "TORCH_AVAILABLE", False)
    out = io.StringIO()
    args = ["--quick", "--repeats", "1", "--workloads", "W1", "--skip"]
    results = compare.main(args + ["peak,predict,compile"], out=out)
    assert [r.library for r in results["fit"]] == ["fastmlp", "sklearn"]
    assert "torch not installed" in out.getvalue()


def test_markdown_table(compare):
    table = compare.format_table(["a", "bb"], [["1", "2"], ["3", "4"]], True)
    assert table.splitlines() == ["| a | bb |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workloads", "W9"], "unknown ['W9']"),
        (["--skip", "lunch"], "unknown ['lunch']"),
        (["--torch-threads", "0"], "positive integers"),
        (["--repeats", "0"], "at least 1"),
    ],
)
def test_bad_options_are_named(compare, capsys, argv, message):
    with pytest.raises(SystemExit):
        compare.parse_args(argv)
    assert message in capsys.readouterr().err


def test_runs_as_a_script():
    # Run from another directory: the script must find its suite package.
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "compare.py"), "--quick", "--markdown"]
        + ["--workloads", "W1", "--libraries", "sklearn", "--repeats", "1"]
        + ["--sklearn-threads", "1", "--skip", "peak,predict,compile"],
        capture_output=True,
        text=True,
        cwd=BENCHMARKS.parent.parent,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "| W1 | sklearn |" in completed.stdout


def test_asv_skips_a_library_that_is_not_installed(compare):
    # asv runs teardown even after setup raised NotImplementedError (its way of
    # skipping a parameter); teardown must not fail on the half-set-up object.
    from suite.bench_training import W1Digits

    benchmark = W1Digits()
    with pytest.raises(NotImplementedError, match="torch is not installed"):
        benchmark.setup({}, "torch")
    benchmark.teardown({}, "torch")
