"""The scripts in examples/, run on small settings."""

import importlib.util
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _main(name, *packages):
    """The ``main`` function of examples/<name>.py, or a skip if the example's
    optional packages are not installed."""
    for package in packages:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{name} needs {package} (see the extras in pyproject.toml)")
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=name)["main"]


def _numbers_after(label, text):
    return [float(x) for x in re.findall(rf"{label}\s+([0-9.]+)", text)]


def test_pipeline_grid_search(capsys):
    main = _main("pipeline_grid_search")
    main(["--n-samples", "500", "--max-iter", "30", "--cv", "2"])
    out = capsys.readouterr().out
    assert "18 fits of 9 settings (2-fold)" in out
    assert "best settings: {'mlp__alpha'" in out
    assert _numbers_after("refitted best pipeline:", out)[0] > 0.8


def test_loss_curves_writes_png_of_identical_curves(capsys, tmp_path):
    main = _main("loss_curves", "matplotlib")
    output = tmp_path / "curves.png"
    main(["--n-samples", "1500", "--max-iter", "8", "--output", str(output)])
    out = capsys.readouterr().out
    # Same settings and seed: both libraries stop at the same epoch with the
    # same loss.
    epochs = re.findall(r"(\d+) epochs in", out)
    losses = re.findall(r"final loss ([0-9.]+)", out)
    assert len(epochs) == len(losses) == 2
    assert epochs[0] == epochs[1] and losses[0] == losses[1]
    assert output.read_bytes().startswith(b"\x89PNG")


def test_out_of_core_dask(capsys):
    main = _main("out_of_core_dask", "dask", "distributed", "dask_ml")
    main(
        ["--n-samples", "6000", "--chunk-size", "1000", "--passes", "2"]
        + ["--workers", "1"]
    )
    out = capsys.readouterr().out
    assert "4000 training rows in 4 blocks of 1000 x 20, 2000 test rows" in out
    assert "fastmlp trained on 8000 rows in all" in out
    assert min(_numbers_after("test accuracy", out)) > 0.7


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_on_a_subsample(capsys):
    main = _main("fashion_mnist")
    status = main(["--n-train", "2000", "--n-test", "500", "--max-iter", "5"])
    out = capsys.readouterr().out
    assert status == 0
    assert "2000 training and 500 test images of 784 pixels, 10 classes" in out
    # Table rows: name, test accuracy, epochs, fit time.
    rows = re.findall(
        r"^(scikit-learn|fastmlp) +([0-9.]+) +(\d+) +[0-9.]+ s", out, re.M
    )
    assert [name for name, _, _ in rows] == ["scikit-learn", "fastmlp"]
    assert all(float(accuracy) > 0.7 for _, accuracy, _ in rows)
    assert all(epochs == "5" for _, _, epochs in rows)
    assert re.search(r"fastmlp fits [0-9.]+x (faster|slower) than scikit-learn", out)


def test_fashion_mnist_without_data_says_how_to_get_it(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "fashion_mnist.py"), "--data-dir", tmp_path],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"Fashion-MNIST not found: {tmp_path} lacks" in result.stderr
    assert "apt-get install dataset-fashion-mnist" in result.stderr
    assert "--data-dir" in result.stderr
    assert result.stdout == ""
