"""Initialisation schemes: the empirical variance of large kernels matches each scheme's formula."""

import numpy as np
import pytest

from cnnlab import init

DENSE = (1000, 500)  # n_in, n_out
CONV = (5, 5, 64, 256)  # fan_in = 5*5*64 = 1600, fan_out = 5*5*256 = 6400

FORMULAS = {  # written out from the papers, not taken from cnnlab
    "lecun_normal": lambda n_in, n_out: 1 / n_in,
    "lecun_uniform": lambda n_in, n_out: 1 / n_in,
    "heuristic": lambda n_in, n_out: 1 / (3 * n_in),
    "glorot_normal": lambda n_in, n_out: 2 / (n_in + n_out),
    "glorot_uniform": lambda n_in, n_out: 2 / (n_in + n_out),
    "he_normal": lambda n_in, n_out: 2 / n_in,
    "he_uniform": lambda n_in, n_out: 2 / n_in,
    "normal_0.01": lambda n_in, n_out: 1e-4,
}


@pytest.mark.parametrize("scheme", FORMULAS)
@pytest.mark.parametrize("shape, fans", [(DENSE, (1000, 500)), (CONV, (1600, 6400))])
def test_empirical_variance_matches_the_formula(scheme, shape, fans):
    kernel = np.asarray(init.initializer(scheme, seed=1)(shape))
    expected = FORMULAS[scheme](*fans)
    assert kernel.var() == pytest.approx(expected, rel=0.02)
    assert abs(kernel.mean()) < 0.01 * np.sqrt(expected)
    assert init.variance(scheme, *fans) == pytest.approx(expected, rel=1e-12)


def test_gaussians_are_untruncated_and_uniforms_bounded():
    n_in = 1000
    normal = np.asarray(init.initializer("he_normal", seed=0)((n_in, 1000)))
    std = np.sqrt(2 / n_in)
    assert np.abs(normal).max() > 3 * std  # a truncated normal stops at 2 std
    heuristic = np.asarray(init.initializer("heuristic", seed=0)((n_in, 1000)))
    assert np.abs(heuristic).max() <= 1 / np.sqrt(n_in) + 1e-7  # U[-1/sqrt(n_in), 1/sqrt(n_in)]
    assert np.abs(heuristic).max() > 0.99 / np.sqrt(n_in)


def test_fans_of_dense_and_conv_kernels():
    assert init.fans((784, 256)) == (784, 256)
    assert init.fans((3, 3, 32, 64)) == (3 * 3 * 32, 3 * 3 * 64)


def test_same_seed_same_kernel():
    a = np.asarray(init.initializer("glorot_uniform", seed=7)((20, 30)))
    b = np.asarray(init.initializer("glorot_uniform", seed=7)((20, 30)))
    c = np.asarray(init.initializer("glorot_uniform", seed=8)((20, 30)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("bad", ["xavier", "normal_", "normal_-1", "normal_abc", ""])
def test_unknown_scheme_names_the_allowed_ones(bad):
    with pytest.raises(ValueError) as err:
        init.initializer(bad)
    assert "\n" not in str(err.value) and ("allowed: lecun_normal" in str(err.value) or "normal_0.01" in str(err.value))


def test_relu_theory_per_scheme():
    assert init.relu_std_ratio("he_normal", 256, 256, 30) == pytest.approx(1.0)
    assert init.relu_std_ratio("glorot_normal", 256, 256, 20) == pytest.approx(0.5 ** 9.5)
    assert init.relu_std_ratio("heuristic", 256, 256, 20) == pytest.approx((1 / 6) ** 9.5)
