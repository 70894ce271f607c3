"""fastmlp's first fit in a fresh process: compiling, or loading the cache.

Each measurement starts a new interpreter with ``NUMBA_CACHE_DIR`` pointing at
a directory of its own. 'cold' leaves it empty, so the fit compiles every
kernel it needs (what a user meets after installing); 'warm' fills it in
``setup`` first, so the fit loads the kernels (every later session). Only the
``fit`` call on the digits data (W1 settings) is timed, inside the subprocess,
hence ``track_`` rather than ``time_``.
"""

import shutil
import tempfile

from .workloads import first_fit_in_subprocess


class FirstFit:
    """Seconds of the first fit in a new process, by state of the Numba cache."""

    param_names = ["numba_cache"]
    params = [["cold", "warm"]]
    timeout = 600

    def setup(self, numba_cache):
        self.cache_dir = tempfile.mkdtemp(prefix="fastmlp-asv-numba-")
        if numba_cache == "warm":
            first_fit_in_subprocess(self.cache_dir)

    def teardown(self, numba_cache):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_first_fit(self, numba_cache):
        return first_fit_in_subprocess(self.cache_dir)["fit"]

    track_first_fit.unit = "seconds"
