"""Weight initialisation schemes by name, and the variance each one gives a weight.

Every scheme of the lectures is a Keras `VarianceScaling(scale, mode, distribution)`:
Var(W) = scale / fan, with fan = fan_in, fan_out or their average. Gaussians are untruncated, as in
the papers. `normal_<sigma>` is a fixed N(0, sigma^2), e.g. Krizhevsky's `normal_0.01`.

The fan-in of a conv kernel is k*k*c_in (Keras's receptive field times input channels).
"""

from __future__ import annotations

import math

import keras

# name: (scale, mode, distribution, who)
SCHEMES = {
    "lecun_normal": (1.0, "fan_in", "untruncated_normal", "LeCun 1998: Var = 1/n_in"),
    "lecun_uniform": (1.0, "fan_in", "uniform", "LeCun 1998: Var = 1/n_in"),
    "heuristic": (1.0 / 3.0, "fan_in", "uniform", "old Torch default U[-1/sqrt(n_in), 1/sqrt(n_in)]: Var = 1/(3 n_in)"),
    "glorot_normal": (1.0, "fan_avg", "untruncated_normal", "Glorot & Bengio 2010: Var = 2/(n_in + n_out)"),
    "glorot_uniform": (1.0, "fan_avg", "uniform", "Glorot & Bengio 2010: Var = 2/(n_in + n_out)"),
    "he_normal": (2.0, "fan_in", "untruncated_normal", "He et al. 2015: Var = 2/n_in"),
    "he_uniform": (2.0, "fan_in", "uniform", "He et al. 2015: Var = 2/n_in"),
}
FIXED_PREFIX = "normal_"


def _sigma(name: str) -> float | None:
    if not name.startswith(FIXED_PREFIX):
        return None
    try:
        sigma = float(name.removeprefix(FIXED_PREFIX))
    except ValueError:
        sigma = -1.0
    if not sigma > 0:
        raise ValueError(f"fixed-normal scheme '{name}' needs a positive sigma, e.g. normal_0.01")
    return sigma


def check_scheme(name: str) -> str:
    """`name` if it is a known scheme; ValueError naming the allowed ones otherwise."""
    if name not in SCHEMES and _sigma(name) is None:
        raise ValueError(f"unknown initialisation '{name}' (allowed: {', '.join(SCHEMES)}, normal_<sigma>)")
    return name


def initializer(name: str, seed: int | None = None) -> keras.initializers.Initializer:
    """The Keras initializer of a scheme, seeded when `seed` is given."""
    sigma = _sigma(check_scheme(name))
    if sigma is not None:
        return keras.initializers.RandomNormal(0.0, sigma, seed=seed)
    scale, mode, distribution, _ = SCHEMES[name]
    return keras.initializers.VarianceScaling(scale, mode, distribution, seed=seed)


def layer_initializer(name: str | None, seed: int | None, layer_index: int):
    """The initializer of a net's `layer_index`-th layer: seeded from `seed` and the index, so layers differ
    but the net is the same for the same seed. None keeps Keras's default (Glorot uniform, unseeded)."""
    if name is None:
        return "glorot_uniform"
    return initializer(name, None if seed is None else seed * 1000 + layer_index)


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel shape as Keras computes them: dense (n_in, n_out), conv
    (k, k, c_in, c_out) -> (k*k*c_in, k*k*c_out)."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 2:
        return shape
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def variance(name: str, fan_in: int, fan_out: int) -> float:
    """The variance of one weight under a scheme."""
    sigma = _sigma(check_scheme(name))
    if sigma is not None:
        return sigma**2
    scale, mode, _, _ = SCHEMES[name]
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return scale / fan


def relu_std_ratio(name: str, fan_in: int, fan_out: int, depth: int) -> float:
    """Theory for a plain ReLU net of equal layers: the activation std at layer `depth` over layer 1.

    Each layer multiplies the second moment by n_in * Var(W) / 2 (He et al. 2015, eq. 10).
    """
    per_layer = fan_in * variance(name, fan_in, fan_out) / 2
    return per_layer ** ((depth - 1) / 2)
