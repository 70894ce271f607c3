"""ONNX export through skl2onnx, checked by running the graphs in onnxruntime."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, MLPRegressor

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("fastmlp.onnx")

# onnxruntime and the compiled kernels sum in different orders: allow for
# rounding, relative to the dtype the network computes in.
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _run(model, X, options=None):
    """Export ``model`` for inputs like X and run the graph on X."""
    onx = skl2onnx.to_onnx(model, X, options=options)
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def _classification(kind, dtype):
    if kind == "multilabel-2":
        X, y = make_multilabel_classification(
            80, n_features=6, n_classes=2, random_state=0
        )
    elif kind == "multilabel-3":
        X, y = make_multilabel_classification(
            80, n_features=6, n_classes=3, random_state=0
        )
    else:
        n_classes = {"binary": 2, "multiclass": 4}[kind]
        X, y = make_classification(
            80, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
        )
    return X.astype(dtype), y


@pytest.mark.parametrize(
    "kind",
    ["binary", "binary-strings", "multiclass", "multiclass-strings"]
    + ["multilabel-2", "multilabel-3"],
)
def test_classifier_matches_predict_and_predict_proba(kind, dtype):
    X, y = _classification(kind.removesuffix("-strings"), dtype)
    if kind.endswith("-strings"):
        y = np.array(["cat", "dog", "eel", "fox"])[y]
    clf = _fit(
        MLPClassifier(hidden_layer_sizes=(7, 5), max_iter=30, random_state=0), X, y
    )

    label, proba = _run(clf, X, options={"zipmap": False})

    assert proba.dtype == dtype
    np.testing.assert_allclose(
        proba, clf.predict_proba(X), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype]
    )
    np.testing.assert_array_equal(label, clf.predict(X))


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_regressor_matches_predict(n_targets, activation, dtype):
    X, y = make_regression(80, n_features=6, n_targets=n_targets, random_state=0)
    X = X.astype(dtype)
    reg = _fit(
        MLPRegressor(
            hidden_layer_sizes=(7, 5),
            activation=activation,
            max_iter=30,
            random_state=0,
        ),
        X,
        y / 100,
    )

    (prediction,) = _run(reg, X)

    assert prediction.dtype == dtype
    assert prediction.shape == (X.shape[0], n_targets)
    np.testing.assert_allclose(
        prediction.reshape(reg.predict(X).shape),
        reg.predict(X),
        rtol=TOLERANCE[dtype],
        atol=TOLERANCE[dtype],
    )


def test_float32_model_exported_for_float64_input():
    # The graph computes in the input's dtype; a float32 model run in float64
    # agrees with its own predictions to float32 rounding.
    X, y = _classification("multiclass", np.float32)
    clf = _fit(
        MLPClassifier(hidden_layer_sizes=(7,), max_iter=30, random_state=0), X, y
    )

    _, proba = _run(clf, X.astype(np.float64), options={"zipmap": False})

    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_pipeline_with_default_zipmap_output():
    X, y = _classification("multiclass", np.float32)
    pipe = _fit(
        make_pipeline(
            StandardScaler(),
            MLPClassifier(hidden_layer_sizes=(7,), max_iter=30, random_state=0),
        ),
        X,
        y,
    )

    label, proba_maps = _run(pipe, X)

    np.testing.assert_array_equal(label, pipe.predict(X))
    expected = pipe.predict_proba(X)
    received = np.array([[row[c] for c in pipe.classes_] for row in proba_maps])
    np.testing.assert_allclose(received, expected, rtol=1e-4, atol=1e-5)


def test_import_fastmlp_does_not_import_skl2onnx():
    code = "import sys, fastmlp; print('skl2onnx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
