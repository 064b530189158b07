"""Parts of the reproductions written on top of each analysis package.

Each function runs one experiment in the quick or full configuration and returns a
Section whose claims compare the paper's statement with the measurement.
"""

from __future__ import annotations
