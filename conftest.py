"""Doctest collection of optional modules.

``pytest --doctest-modules`` imports every module under fastmlp/; the ones that
need an optional extra are left out when that extra is not installed, instead
of failing collection with an ImportError.
"""

import importlib.util

_EXTRA_MODULES = {"fastmlp/onnx.py": ("skl2onnx", "onnxruntime")}

collect_ignore = [
    path
    for path, packages in _EXTRA_MODULES.items()
    if any(importlib.util.find_spec(name) is None for name in packages)
]
