"""fastmlp: multilayer perceptrons trained by Numba-compiled backpropagation.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
scikit-learn's classes of the same names.
"""

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
