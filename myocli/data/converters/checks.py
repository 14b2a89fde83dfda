"""Checks of the numbers a converter reads, shared by the readers.

A damaged file can hold numbers no motion has: NaN and Inf (BVH and AMC text, JSON's NaN and
Infinity, float arrays) or huge values such as 1e308, which overflow in forward kinematics, in
the retarget's squared lengths or in the final float32 cast. Each reader refuses them where it
parses them, so its MyoError can name the frame (and line, joint or channel) to fix; a finite
value within LIMIT reads as before.
"""

from __future__ import annotations

import numpy as np

#: Largest magnitude a value may have, in the file's own units (metres, millimetres, degrees...):
#: far beyond any motion (1e9 mm is 1000 km), far below where float64 or float32 arithmetic
#: on the positions it yields could overflow.
LIMIT = 1e9


def first_bad(values: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first NaN, Inf or value beyond +-LIMIT in `values`; None when all are usable."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and float(np.finfo(values.dtype).max) < LIMIT:
        bad = ~np.isfinite(values)  # float16: LIMIT itself would overflow (and warn) in the comparison
    else:
        bad = ~(np.abs(values) <= LIMIT)  # NaN compares False, so NaN counts as bad; no warning either way
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])


def describe(value: float) -> str:
    """How a refused value reads in a message: NaN, Inf, -Inf, or the number and the limit."""
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return f"{value:g} (beyond +-{LIMIT:g})"
