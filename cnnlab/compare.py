"""Comparing two settings measured over several seeds: mean difference and its noise band."""

from __future__ import annotations

import math

import numpy as np


def mean_spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of per-seed measurements."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def seed_difference(a, b, floor: float = 0.0) -> tuple[float, float]:
    """mean(a) - mean(b) over seeds, and the noise band of that difference: twice its standard error
    (sample standard deviations, sqrt(s_a^2/n_a + s_b^2/n_b)), never below `floor`.

    With two or three seeds the standard error is itself rough; the floor keeps a lucky pair of
    nearly equal seeds from making any small difference look significant."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"seed_difference needs measurements on both sides, got {len(a)} and {len(b)}")
    (mean_a, sd_a), (mean_b, sd_b) = mean_spread(a), mean_spread(b)
    standard_error = math.sqrt(sd_a**2 / len(a) + sd_b**2 / len(b))
    return mean_a - mean_b, max(2.0 * standard_error, floor)
