"""The LP solver prints nothing: HiGHS's banner goes to the C-level stdout on the first
solver of a process, which only a subprocess can observe."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import numpy as np
from reluscope.preimage import is_omnidirectional
M = np.random.default_rng(0).standard_normal((12, 3))
res = is_omnidirectional(M, search=False)
assert res.method == "lp", res.method
print("done", res.omnidirectional)
"""


def test_highs_banner_is_silenced():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines() == ["done True"], out.stdout
    assert "HiGHS" not in out.stderr
