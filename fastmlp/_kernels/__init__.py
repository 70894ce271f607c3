"""Numba-compiled core of fastmlp: forward and backward passes, losses,
optimizer steps and whole training epochs, run by a team of threads.

Module map:

- ``_blas``: matrix products on blocks of flat buffers (BLAS gemm).
- ``_functions``: activations, their derivatives, output activations and losses.
- ``_backprop``: forward pass, backward pass and weight-gradient tiles.
- ``_optim``: SGD (with momentum / Nesterov) and Adam steps.
- ``_epoch``: the entry points (epoch, full-batch loss and gradient, predict)
  and their parallel schedule.
- ``_team``: atomics, barriers, the launcher for the thread team and the
  tuner that chooses its size.
- ``_network``: the Python-side layout of one network and calls into the
  entry points.

Nothing in this package imports scikit-learn.
"""

from ._epoch import PREDICT_ROWS
from ._network import (
    Network,
    kernel_ready,
    network,
    optimizer_settings,
    optimizer_state,
)
from ._team import ThreadCountTuner

__all__ = [
    "PREDICT_ROWS",
    "Network",
    "ThreadCountTuner",
    "kernel_ready",
    "network",
    "optimizer_settings",
    "optimizer_state",
]
