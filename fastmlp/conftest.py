"""Doctest collection of the modules that need an optional extra.

``pytest --doctest-modules`` imports every module under fastmlp/; the ones that
need an extra that is not installed are left out, instead of failing the
collection with an ImportError. (Kept here rather than at the repository root,
where a conftest.py would make ruff sort ``from conftest import ...`` in the
tests as a first-party import.)
"""

import importlib.util

_EXTRA_MODULES = {"onnx.py": ("skl2onnx", "onnxruntime")}

collect_ignore = [
    path
    for path, packages in _EXTRA_MODULES.items()
    if any(importlib.util.find_spec(name) is None for name in packages)
]
