"""Architecture arithmetic: output sizes, receptive fields, and per-layer parameters,
multiply-adds (MACs) and activation memory of any built functional or Sequential Keras model.

Conventions of `layer_table`:

- One row per layer in graph order, input layer(s) first, because CS231n-style memory accounting
  counts the input image.
- Nested functional/Sequential sub-models are expanded: their layers appear as rows under their own
  (unprefixed) names; the sub-model's own InputLayer is skipped because it aliases the outer tensor.
  Any other nested `keras.Model` (subclassed) is one row, counted like an unknown layer.
- A layer called several times (shared weights) is described by its first call only.
- Raw ops in a functional graph that are not layers (`x[..., :1]`, `keras.ops.add`) get no row.
- Views (Flatten, Reshape) hold no new values: they count 0 activations, like CS231n's memory lists.
- `weights` are params minus biases and normalisation variables (gamma, beta, moving statistics).
- MACs are counted for Dense and the convolution families (Conv1D/2D/3D, grouped and dilated,
  Depthwise, Separable, Transpose). Every other layer (pooling, normalisation, merges, activations,
  reshapes, and unknown or custom layer types) gets 0 MACs; unknown layers still get their params
  from `count_params()`.
"""

import gc
import math
import operator

import keras
import pandas as pd

from cnnlab import backend

NUMERIC = ["params", "weights", "macs", "activations", "activation_bytes"]
_NOT_WEIGHTS = {"bias", "gamma", "beta", "moving_mean", "moving_variance"}
_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSE = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
              keras.layers.Conv3DTranspose)
_VIEWS = (keras.layers.Flatten, keras.layers.Reshape)


def measure(build, *measures):
    """Build a model with `build()`, apply each of `measures` to it (counts, shapes, a `layer_table`),
    and release it before returning the results (a tuple, or the single result).

    Full-size nets hold hundreds of MB of weights: the model is built with bfloat16 weights (half the
    memory; no count or shape depends on the dtype, and `layer_table` states its bytes per value) and
    released at once, so a notebook measures them one at a time instead of keeping them."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    try:
        model = build()
        results = tuple(m(model) for m in measures)
    finally:
        keras.config.set_dtype_policy(previous)
        model = None
        backend.clear_session()
        gc.collect()
    return results[0] if len(results) == 1 else results


def _int(name, value, minimum):
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def output_size(w, k, s=1, p=0, d=1):
    """Spatial output size floor((w + 2p - d(k-1) - 1) / s) + 1 of a conv or pool.

    Raises ValueError if an argument is not a valid integer or the output would be empty.
    """
    w, k, s, d = (_int(n, v, 1) for n, v in (("w", w), ("k", k), ("s", s), ("d", d)))
    p = _int("p", p, 0)
    out = (w + 2 * p - d * (k - 1) - 1) // s + 1
    if out < 1:
        raise ValueError(
            f"output size {out} < 1: effective kernel d(k-1)+1={d * (k - 1) + 1} exceeds "
            f"padded input w+2p={w + 2 * p} (w={w}, k={k}, s={s}, p={p}, d={d})")
    return out


def keras_output_size(w, k, s=1, p=0, d=1, layer="conv"):
    """Spatial size Keras gives for ZeroPadding2D(p) then a 'valid' Conv2D or MaxPooling2D on (1, w, w, 1).

    Computed symbolically (no ops run). Keras raises ValueError for an empty output and for
    stride > 1 combined with dilation > 1; pools have no dilation, so d must be 1 for layer="pool".
    """
    if layer == "conv":
        op = keras.layers.Conv2D(1, k, strides=s, dilation_rate=d, padding="valid")
    elif layer == "pool":
        if d != 1:
            raise ValueError(f"Keras pooling has no dilation: d must be 1 for layer='pool', got {d}")
        op = keras.layers.MaxPooling2D(pool_size=k, strides=s, padding="valid")
    else:
        raise ValueError(f"layer must be 'conv' or 'pool', got {layer!r}")
    shape = keras.layers.ZeroPadding2D(p).compute_output_shape((1, w, w, 1))
    return int(op.compute_output_shape(shape)[1])


def receptive_field(kernels, strides=None, dilations=None):
    """Receptive field (in input pixels, per side) of a stack of conv/pool layers, first layer first."""
    n = len(kernels)
    strides = [1] * n if strides is None else list(strides)
    dilations = [1] * n if dilations is None else list(dilations)
    if not len(strides) == len(dilations) == n:
        raise ValueError(f"kernels, strides, dilations differ in length: {n}, {len(strides)}, {len(dilations)}")
    field, jump = 1, 1
    for k, s, d in zip(kernels, strides, dilations):
        field += _int("d", d, 1) * (_int("k", k, 1) - 1) * jump
        jump *= _int("s", s, 1)
    return field


def _shapes(tensors):
    """Per-example shapes (batch dropped) of a tensor or a nest of tensors."""
    return [tuple(t.shape[1:]) for t in keras.tree.flatten(tensors)]


def _size(shape):
    return math.prod(shape) if all(isinstance(n, int) for n in shape) else 0


def _macs(layer, out_values):
    """Multiply-adds per example of one layer call (0 for layers without a counted product)."""
    kernel = getattr(layer, "kernel", None)
    if isinstance(layer, _SEPARABLE):
        dw, pw = layer.depthwise_kernel, layer.pointwise_kernel
        return out_values // pw.shape[-1] * (math.prod(dw.shape) + math.prod(pw.shape))
    if kernel is None:
        return 0
    if isinstance(layer, _DEPTHWISE):  # kernel (*k, C_in, multiplier): k MACs per output value
        return out_values * math.prod(kernel.shape[:-2])
    if isinstance(layer, _CONVS):  # kernel (*k, C_in/groups, C_out)
        return out_values * math.prod(kernel.shape[:-1])
    if isinstance(layer, _TRANSPOSE):  # kernel (*k, C_out, C_in): each input value scatters k*C_out
        in_values = sum(_size(s) for s in _shapes(layer.input))
        return in_values * math.prod(kernel.shape[:-1])
    if isinstance(layer, keras.layers.Dense):  # kernel (in, out), applied at every position
        return out_values * kernel.shape[0]
    return 0


def _row(layer, shapes, macs, bytes_per_value):
    activations = 0 if isinstance(layer, _VIEWS) else sum(_size(s) for s in shapes)
    params = layer.count_params() if layer.built else 0
    biases = sum(math.prod(v.shape) for v in layer.weights if v.name in _NOT_WEIGHTS)
    return {
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": ", ".join("x".join("?" if n is None else str(n) for n in s) for s in shapes),
        "params": params,
        "weights": params - biases,
        "macs": macs,
        "activations": activations,
        "activation_bytes": activations * bytes_per_value,
    }


def _is_graph_model(layer):
    return isinstance(layer, keras.Model) and bool(getattr(layer, "inputs", None))


def _rows(model, bytes_per_value, nested):
    layers = model.layers
    if not nested and not any(isinstance(x, keras.layers.InputLayer) for x in layers):
        # Sequential.layers omits its InputLayer: recover it from the model's input tensors.
        inputs = [t._keras_history.operation for t in keras.tree.flatten(model.inputs)]
        layers = inputs + list(layers)
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            if not nested:
                yield _row(layer, _shapes(layer.output), 0, bytes_per_value)
        elif _is_graph_model(layer):
            yield from _rows(layer, bytes_per_value, nested=True)
        else:
            try:
                shapes = _shapes(layer.output)
            except (AttributeError, ValueError):  # never called symbolically
                shapes = []
            out_values = sum(_size(s) for s in shapes)
            macs = _macs(layer, out_values) if shapes else 0
            yield _row(layer, shapes, macs, bytes_per_value)


def layer_table(model, bytes_per_value=4):
    """Per-layer table of a built functional/Sequential Keras model (see the module docstring).

    Columns: name, type, output_shape, params, weights, macs, activations, activation_bytes.
    """
    table = pd.DataFrame(list(_rows(model, bytes_per_value, nested=False)),
                         columns=["name", "type", "output_shape"] + NUMERIC)
    return table.astype({c: "int64" for c in NUMERIC})


def trainable_params(model) -> int:
    """The parameters training changes (frozen layers and BN's moving statistics left out)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def totals(table):
    """Sums of the numeric columns (params, weights, macs, activations, activation_bytes)."""
    return table[NUMERIC].sum()


def group_totals(table, key):
    """Sum the numeric columns over groups key(name); rows keyed None are dropped; first-seen order."""
    groups = table["name"].map(key).rename("group")
    keep = groups.notna()
    return table.loc[keep, NUMERIC].groupby(groups[keep], sort=False).sum()
