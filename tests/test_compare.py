"""cnnlab.compare: per-seed means, spreads and the noise band of a difference."""

import math

import pytest

from cnnlab.compare import mean_spread, seed_difference


def test_mean_spread_uses_the_sample_standard_deviation():
    assert mean_spread([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert mean_spread([0.5]) == (0.5, 0.0)


def test_seed_difference_is_twice_the_standard_error():
    diff, noise = seed_difference([1.0, 3.0], [0.0, 0.0])
    assert diff == 2.0
    assert noise == pytest.approx(2.0 * math.sqrt(2.0 / 2))


def test_seed_difference_noise_never_below_the_floor():
    assert seed_difference([0.9, 0.9], [0.8, 0.8], floor=0.005) == (pytest.approx(0.1), 0.005)
    assert seed_difference([0.9, 0.9], [0.8, 0.8]) == (pytest.approx(0.1), 0.0)


def test_seed_difference_refuses_an_empty_side():
    with pytest.raises(ValueError, match="both sides, got 0 and 2"):
        seed_difference([], [1.0, 2.0])
