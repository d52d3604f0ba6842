"""The one percentile definition: nearest rank. `/metrics` and the load test's report both use it."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float, *, presorted: bool = False) -> float | None:
    """Nearest-rank percentile (`pct` in 0-100): a value that was observed, never an interpolation.

    The smallest value with at least `pct` percent of the values at or below it; None for no values.
    """
    if not values:
        return None
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile out of range: {pct}")
    ordered = values if presorted else sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
