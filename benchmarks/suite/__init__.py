"""asv benchmarks of fastmlp against scikit-learn and PyTorch.

``workloads`` and ``torch_mlp`` hold what the suite and ``benchmarks/compare.py``
share; the ``bench_*`` modules hold the asv benchmark classes.
"""
