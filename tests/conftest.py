"""Shared test setup. Its presence puts tests/ on sys.path (pytest's default "prepend"
import mode), so any test can ``from strategies import specs`` (tests/strategies.py)."""

import os

from hypothesis import settings

# In CI (CI=true) every property test draws the same examples on every run, so a landing
# is never decided by a new random draw (and a failure never spends minutes shrinking
# ONNX exports); locally the draws stay random and keep exploring. A failure found
# locally becomes a plain regression test (e.g. tests/backends/test_pool_ceil_mode.py).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
