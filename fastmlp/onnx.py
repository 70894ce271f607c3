"""ONNX export of fitted fastmlp estimators, through skl2onnx.

Importing this module registers :class:`fastmlp.MLPClassifier` and
:class:`fastmlp.MLPRegressor` with skl2onnx, after which ``skl2onnx.to_onnx``
and ``skl2onnx.convert_sklearn`` accept them, alone or as the last step of a
Pipeline. Registration happens once per process, on import; calling
:func:`register_converters` again is harmless. ``import fastmlp`` never
imports skl2onnx: install the extra (``pip install "fastmlp[onnx]"``) and
import this module when you need the export.

The fitted attributes of fastmlp's estimators have the names and meaning of
scikit-learn's, so single-label classifiers go through skl2onnx's own MLP
converter, with its options (``zipmap``, ``output_class_labels``, ``nocl``).
Regressors and multilabel classifiers get graphs built here: skl2onnx's
regressor reshapes every prediction to one column, wrong for multi-output
models, and its multilabel labels use an operator that onnxruntime runs in
float32 only. Regressors output shape (n_samples, n_outputs), also for one
target, as skl2onnx's regressors do.

Examples
--------
>>> import numpy as np
>>> import onnxruntime as ort
>>> from skl2onnx import to_onnx
>>> import fastmlp.onnx  # registers the converters
>>> from fastmlp import MLPRegressor
>>> X = np.linspace(-1, 1, 40, dtype=np.float32).reshape(-1, 1)
>>> reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", random_state=0)
>>> reg = reg.fit(X, X.ravel() ** 2)
>>> session = ort.InferenceSession(to_onnx(reg, X).SerializeToString())
>>> (y_onnx,) = session.run(None, {"X": X})
>>> bool(np.allclose(y_onnx.ravel(), reg.predict(X), atol=1e-5))
True
"""

from skl2onnx import update_registered_converter
from skl2onnx.common._apply_operation import apply_add, apply_cast, apply_identity
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    guess_proto_type,
)
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
)
from skl2onnx.common.utils import check_input_and_output_numbers
from skl2onnx.operator_converters.multilayer_perceptron import (
    convert_sklearn_mlp_classifier,
)
from skl2onnx.proto import onnx_proto

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = ["register_converters"]

_CLASSIFIER_ALIAS = "FastmlpMLPClassifier"
_REGRESSOR_ALIAS = "FastmlpMLPRegressor"

# ONNX operator computing each activation name of the estimators.
_ONNX_ACTIVATIONS = {
    "identity": "Identity",
    "logistic": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "softmax": "Softmax",
}


def _proto_dtype(operator):
    """ONNX element type the network computes in: double for double input,
    float for any other input (as skl2onnx does for scikit-learn's MLP)."""
    proto_dtype = guess_proto_type(operator.inputs[0].type)
    if proto_dtype != onnx_proto.TensorProto.DOUBLE:
        proto_dtype = onnx_proto.TensorProto.FLOAT
    return proto_dtype


def _classifier_shapes(operator):
    """Output types of a classifier: labels and class probabilities.

    skl2onnx's calculator declares one label per sample; a multilabel model
    predicts an indicator row per sample, so that shape is corrected here.
    """
    calculate_linear_classifier_output_shapes(operator)
    model = operator.raw_operator
    if model._label_binarizer.y_type_ == "multilabel-indicator":
        n_rows = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n_rows, len(model.classes_)])


def _convert_classifier(scope, operator, container):
    """Graph of a fitted MLPClassifier.

    Single-label models go through skl2onnx's MLP converter. Multilabel
    models get their own labels step: skl2onnx's uses the Binarizer operator,
    which onnxruntime implements for float only, and it mistakes a model with
    two labels for a binary one.
    """
    model = operator.raw_operator
    if model._label_binarizer.y_type_ != "multilabel-indicator":
        convert_sklearn_mlp_classifier(scope, operator, container)
        return

    proto_dtype = _proto_dtype(operator)
    probabilities = _forward(scope, operator, container, proto_dtype)
    apply_identity(scope, probabilities, operator.outputs[1].full_name, container)

    # A label is on where its probability exceeds one half, as in predict.
    half = scope.get_unique_variable_name("half")
    container.add_initializer(half, proto_dtype, [], [0.5])
    on = scope.get_unique_variable_name("label_on")
    container.add_node(
        "Greater",
        [probabilities, half],
        on,
        name=scope.get_unique_operator_name("Greater"),
    )
    apply_cast(
        scope,
        on,
        operator.outputs[0].full_name,
        container,
        to=onnx_proto.TensorProto.INT64,
    )


def _regressor_shapes(operator):
    """Output type of a regressor: (n_samples, n_outputs_) in the input's
    floating dtype (float for non-floating input)."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    input_type = operator.inputs[0].type
    if not isinstance(input_type, (FloatTensorType, DoubleTensorType)):
        input_type = FloatTensorType()
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = input_type.__class__(
        [n_rows, operator.raw_operator.n_outputs_]
    )


def _forward(scope, operator, container, proto_dtype):
    """Add the network's layers to the graph: a MatMul, an Add and an
    activation each; return the name of the output layer's activations."""
    model = operator.raw_operator

    # The whole network computes in one dtype, the input's when floating.
    layer_input = scope.get_unique_variable_name("cast_input")
    apply_cast(
        scope, operator.inputs[0].full_name, layer_input, container, to=proto_dtype
    )
    n_layers = len(model.coefs_)
    for layer, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        coef_name = scope.get_unique_variable_name("coefficient")
        intercept_name = scope.get_unique_variable_name("intercept")
        container.add_initializer(coef_name, proto_dtype, coef.shape, coef.ravel())
        container.add_initializer(
            intercept_name, proto_dtype, [1, intercept.shape[0]], intercept
        )
        product = scope.get_unique_variable_name("product")
        container.add_node(
            "MatMul",
            [layer_input, coef_name],
            product,
            name=scope.get_unique_operator_name("MatMul"),
        )
        pre_activation = scope.get_unique_variable_name("pre_activation")
        apply_add(scope, [product, intercept_name], pre_activation, container)

        last = layer == n_layers - 1
        activation = model.out_activation_ if last else model.activation
        layer_input = scope.get_unique_variable_name("activation")
        op_type = _ONNX_ACTIVATIONS[activation]
        container.add_node(
            op_type,
            pre_activation,
            layer_input,
            name=scope.get_unique_operator_name(op_type),
        )
    return layer_input


def _convert_regressor(scope, operator, container):
    """Graph of a fitted MLPRegressor.

    The output has one column per target, also for a single target (the
    convention of skl2onnx's regressors), where ``predict`` returns 1-D.
    """
    outputs = _forward(scope, operator, container, _proto_dtype(operator))
    apply_identity(scope, outputs, operator.outputs[0].full_name, container)


def register_converters():
    """Register fastmlp's estimators with skl2onnx.

    Called when :mod:`fastmlp.onnx` is imported; calling it again replaces the
    registration with an identical one. The classifier is registered with
    skl2onnx's options for classifiers (``zipmap``, ``output_class_labels``,
    ``nocl``), which also makes skl2onnx parse it with its classifier parser;
    the regressor uses skl2onnx's default parser (one output tensor).

    Examples
    --------
    >>> from fastmlp.onnx import register_converters
    >>> register_converters()
    """
    update_registered_converter(
        MLPClassifier,
        _CLASSIFIER_ALIAS,
        _classifier_shapes,
        _convert_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [True, False],
        },
    )
    update_registered_converter(
        MLPRegressor, _REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor
    )


register_converters()
