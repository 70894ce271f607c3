"""Compilation options shared by every compiled kernel.

Kept in one place so that all kernels agree on floating-point semantics and on
caching. Nothing here imports scikit-learn.
"""

import warnings

import numba

# LLVM fast-math flags. Contraction into FMA, reassociation (which lets reductions
# vectorise) and reciprocal approximation are allowed. 'nnan' and 'ninf' are left
# out on purpose: the estimators detect divergence by testing for NaN and inf,
# and those flags would let LLVM fold such tests to False. 'afn' is left out so
# exp and tanh keep libm accuracy, which the parity tests with scikit-learn need.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}


def _disk_cache_available():
    """Whether Numba can cache kernels on disk for this installation.

    Numba writes the cache next to the module, or, when the package folder is
    read-only, to its user-wide cache directory ($NUMBA_CACHE_DIR, else
    $XDG_CACHE_HOME/numba or ~/.cache/numba). When neither is writable,
    ``njit(cache=True)`` raises at decoration time, which would make fastmlp
    impossible to import; the kernels are then compiled in every process.
    """
    try:
        numba.njit(cache=True)(_disk_cache_probe)
    except RuntimeError:
        warnings.warn(
            "fastmlp cannot cache its compiled kernels: neither its package "
            "folder nor Numba's cache directory is writable, so every new "
            "process compiles them again (seconds per dtype). Set NUMBA_CACHE_DIR "
            "to a writable folder to avoid this.",
            stacklevel=2,
        )
        return False
    return True


def _disk_cache_probe():
    return 0


# Options for the entry points, the kernels called from Python. nogil lets
# several Python threads train at once; cache writes the machine code next to
# the module (or to Numba's user-wide cache directory when the package folder
# is read-only), so a fresh process loads it instead of compiling;
# error_model='numpy' drops the division-by-zero checks that would otherwise
# block vectorisation; no kernel is used as a C callback, so none needs that
# wrapper.
JIT_OPTIONS = {
    "nogil": True,
    "cache": _disk_cache_available(),
    "fastmath": FASTMATH,
    "error_model": "numpy",
    "no_cfunc_wrapper": True,
}

# How the kernels' own functions are compiled decides most of the cold first
# fit, which is mostly compilation. Each function compiled on its own gets
# machine code of its own, and again inside every caller it is linked into;
# a function inlined at Numba IR level is typed again at every call site, and
# Numba's inliner copies the callee's whole variable scope for each of its
# blocks, so inlining a big function is slow. Which functions are inlined
# (HELPER_JIT_OPTIONS) and which are compiled once (INNER_JIT_OPTIONS) was
# decided by timing cold fits:
#
# - small helpers are inlined, which also spares a specialisation for every
#   literal argument, and so are middle-sized functions with one call site
#   per kernel (a chunk's forward pass, the output layer);
# - big functions (a chunk's forward and backward pass, a gradient tile),
#   functions called from several places in one kernel, and loops whose
#   inlining made their callers slow to inline in turn (the hidden
#   activations) are compiled once, without the wrapper for calls from
#   Python, which for functions of many array arguments is a sizeable part
#   of their compilation.
#
# Measured on the 2-core benchmark machine, alternating old and new code:
# this split, together with keeping sparse code out of dense kernels (see
# _backprop.csr_only) and the builtins out of the kernels (see _functions),
# took the cold first fit on digits from 4.4-4.8 s to 3.1-3.3 s (from
# 4.7-5.1 s to 3.4-3.6 s while the host was busier).
HELPER_JIT_OPTIONS = {**JIT_OPTIONS, "inline": "always"}
INNER_JIT_OPTIONS = {**JIT_OPTIONS, "no_cpython_wrapper": True}

# Code for sparse input only: compiled as part of the kernel that calls it, so
# it has no disk cache of its own.
CSR_JIT_OPTIONS = {**INNER_JIT_OPTIONS, "cache": False}

# Rows per chunk when a mini-batch is split across threads: about CHUNK_ROWS
# for float64 and twice that for float32, in an even number of chunks so two
# threads share a batch evenly, and no split below 2 * MIN_CHUNK_ROWS rows.
# The split depends on the batch size and dtype only, never on the thread
# count, so results are bit-identical for any number of threads.
# BLAS packs the whole weight matrix again for every chunk, so bigger chunks
# pack less, but they leave fewer chunks to share among threads. Measured on
# the 2-core benchmark machine (best of 3 fits, alternating old and new code,
# several rounds): 128-row float32 chunks took W5 (batch 256) from 0.595 to
# 0.565 s, final loss unchanged; 128-row float64 chunks gained only about 3%
# on W2 and nothing on W1, too little to halve the chunks a batch of 200 (the
# default) offers to a machine with more cores.
CHUNK_ROWS = 64
MIN_CHUNK_ROWS = 16

# Weight-gradient work is cut into tiles, each a band of rows (input units) of
# one layer's weight matrix, so that a tile is a contiguous span of the
# parameter buffer: about TARGET_TILES of them, but no layer cut into bands of
# fewer than MIN_BAND_ROWS rows or of much fewer than MIN_TILE_WEIGHTS weights
# (the band count is rounded), since small bands make BLAS calls
# inefficient. Like the chunks, tiles depend on the layer sizes only, never on
# the thread count.
TARGET_TILES = 4
MIN_TILE_WEIGHTS = 2048
MIN_BAND_ROWS = 8
