"""Visualising what a trained CNN learned, each picture with a number that could have come out otherwise.

- First-layer filters (`first_layer_kernels`, `neighbour_correlation`): trained filters are smooth, oriented
  patterns, so adjacent weights correlate; i.i.d. initial weights do not.
- Activation maps (`activation_maps`) and the top image patches per unit (Zeiler & Fergus 2014): each unit's
  strongest responses over a set of images, cropped to the unit's receptive field (`receptive_field_box`), and
  `class_purity`, the share of a unit's top patches that come from its most frequent class (`chance_purity`
  for random labels: 0.29 for nine patches of ten classes).
- Occlusion sensitivity (Zeiler & Fergus Fig. 7, `occlusion_map`): the drop of the true class's probability
  while a square of `fill` covers each place; saliency (Simonyan et al. 2014, `saliency`): |d score / d input|.
- Class-model images (Simonyan et al. 2014, `class_model_images`): gradient ascent on a class score from noise,
  with an L2 penalty on the image.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from cnnlab import backend
from cnnlab.models.fcn import PASS_THROUGH, POOLS, kernel_and_stride


def first_layer_kernels(model) -> np.ndarray:
    """The kernel of the model's first Conv2D: (k, k, channels in, filters)."""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            return ops.convert_to_numpy(layer.kernel)
    raise ValueError(f"model '{model.name}' has no Conv2D layer")


def neighbour_correlation(kernels: np.ndarray) -> float:
    """The correlation of horizontally and vertically adjacent weights within each filter, every filter and
    input channel pooled, each k x k slice centred on its own mean: below 0 for i.i.d. weights (centring makes
    it about -1/(k^2 - 1)), well above 0 for smooth, structured filters."""
    w = np.moveaxis(np.asarray(kernels, dtype=np.float64), (0, 1), (-2, -1))  # (cin, cout, k, k)
    w = w - w.mean(axis=(-2, -1), keepdims=True)
    a = np.concatenate([w[..., :, :-1].ravel(), w[..., :-1, :].ravel()])
    b = np.concatenate([w[..., :, 1:].ravel(), w[..., 1:, :].ravel()])
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _layer_geometry(layer) -> tuple[int, int, int]:
    """(kernel, stride, left padding) of a conv or pool layer with square kernels and strides."""
    k, s = kernel_and_stride(layer)
    if layer.padding == "valid":
        return k, s, 0
    if s != 1:
        raise ValueError(f"layer '{layer.name}' has 'same' padding with stride {s}; allowed: stride 1 or 'valid'")
    return k, s, (k - 1) // 2


def receptive_field_box(model, layer_name: str) -> tuple[int, int, float]:
    """(size, jump, start) of `layer_name`'s units in input pixels: the unit at (i, j) sees the size x size
    input square centred at (start + i * jump, start + j * jump). Convs, pools and per-pixel layers only."""
    if layer_name not in [layer.name for layer in model.layers]:
        raise ValueError(f"model '{model.name}' has no layer '{layer_name}'")
    size, jump, start = 1, 1, 0.0
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        if isinstance(layer, (layers.Conv2D, *POOLS)):
            k, s, left = _layer_geometry(layer)
            start += ((k - 1) / 2 - left) * jump
            size += (k - 1) * jump
            jump *= s
        elif not isinstance(layer, PASS_THROUGH):
            raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) lies below '{layer_name}'; allowed: "
                             "Conv2D, pooling, BatchNormalization, Activation, ReLU, Dropout")
        if layer.name == layer_name:
            return size, jump, start


def activation_maps(model, image: np.ndarray, layer_names) -> dict:
    """layer name -> its output for one image (H x W x C)."""
    tapped = keras.Model(model.inputs[0], [model.get_layer(name).output for name in layer_names])
    outputs = tapped(image[None], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: backend.numpy(out)[0] for name, out in zip(layer_names, outputs)}


def top_patches(model, layer_name: str, x: np.ndarray, top: int = 9, batch_size: int = 500):
    """Per unit (channel) of `layer_name`: the `top` images where it responds most (its maximum over
    positions), as crops of its receptive field around the strongest position, zero-padded at the border.
    Returns (patches units x top x size x size x C, image indices units x top, responses units x top)."""
    tapped = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    peaks, places = [], []
    for start in range(0, len(x), batch_size):
        out = backend.numpy(tapped(x[start:start + batch_size], training=False))
        flat = out.reshape(len(out), -1, out.shape[-1])
        peaks.append(flat.max(axis=1))
        places.append(flat.argmax(axis=1))
    peaks, places, width = np.concatenate(peaks), np.concatenate(places), out.shape[2]
    size, jump, start = receptive_field_box(model, layer_name)
    half = (size - 1) / 2
    pad = size
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    order = np.argsort(-peaks, axis=0, kind="stable")[:top].T  # units x top
    patches = np.zeros((order.shape[0], top, size, size, x.shape[-1]), x.dtype)
    for unit, images in enumerate(order):
        for rank, index in enumerate(images):
            i, j = divmod(int(places[index, unit]), width)
            row, col = int(round(start + i * jump - half)) + pad, int(round(start + j * jump - half)) + pad
            patches[unit, rank] = padded[index, row:row + size, col:col + size]
    return patches, order, np.take_along_axis(peaks.T, order, axis=1)


def class_purity(labels: np.ndarray) -> np.ndarray:
    """Per row of labels (a unit's top patches), the share that come from its most frequent class."""
    labels = np.asarray(labels)
    return np.array([np.bincount(row).max() / len(row) for row in labels])


def chance_purity(top: int, classes: int = 10) -> float:
    """The expected class purity of `top` labels drawn uniformly from `classes`: E[max count] / top, exactly
    (sequences with every count <= m are top! [x^top] (sum_{k<=m} x^k / k!)^classes)."""
    from fractions import Fraction
    from math import factorial

    def at_most(m):
        poly = [Fraction(1)]
        term = [Fraction(1, factorial(k)) for k in range(m + 1)]
        for _ in range(classes):
            poly = [sum(poly[i] * term[n - i] for i in range(len(poly)) if 0 <= n - i <= m)
                    for n in range(min(len(poly) + m, top + 1))]
        return poly[top] * factorial(top) / Fraction(classes) ** top if top < len(poly) else Fraction(0)

    expected = sum(1 - at_most(m - 1) for m in range(1, top + 1))  # E[max] = sum over m of P(max >= m)
    return float(expected / top)


def occlusion_map(model, image: np.ndarray, label: int, size: int, stride: int, fill: float = 0.0) -> np.ndarray:
    """The drop of the true class's probability (softmax of the model's logits) when a size x size square of
    `fill` covers the image at each place of a `stride` grid: a (rows, cols) map, rows = (H - size) // stride + 1."""
    h, w = image.shape[:2]
    tops, lefts = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    covered = np.repeat(image[None], len(tops) * len(lefts), axis=0)
    for n, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        covered[n, top:top + size, left:left + size] = fill
    batch = np.concatenate([image[None], covered])
    probs = backend.numpy(keras.ops.softmax(model.predict(batch, batch_size=256, verbose=0)))[:, label]
    return (probs[0] - probs[1:]).reshape(len(tops), len(lefts))


def saliency(model, images: np.ndarray, labels) -> np.ndarray:
    """|d logit of the true class / d input|, the maximum over channels: one map per image (N x H x W)."""
    wanted = np.asarray(labels)[:, None]

    def chosen(x):
        return ops.sum(ops.take_along_axis(model(x, training=False), wanted, axis=1))

    _, (grad,) = backend.gradients(chosen, np.asarray(images))
    return np.abs(grad).max(axis=-1)


def class_model_images(model, classes, steps: int = 200, learning_rate: float = 0.1, l2: float = 0.01,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per class, an image that maximises its logit minus l2 * ||image||^2, by gradient ascent (Adam) from
    small noise (Simonyan et al. 2014); returns the images and the softmax probability of their class."""
    shape = (len(classes), *model.inputs[0].shape[1:])
    x = keras.Variable(np.random.default_rng(seed).normal(0, 0.01, shape).astype(np.float32), trainable=True)
    optimizer = keras.optimizers.Adam(learning_rate)
    wanted = np.asarray(classes)

    def objective(image):
        scores = ops.cast(ops.take_along_axis(model(image, training=False), wanted[:, None], axis=1), "float32")
        return ops.sum(scores) - l2 * ops.sum(ops.square(image))

    for _ in range(steps):
        _, (grad,) = backend.gradients(objective, ops.convert_to_numpy(x.value))
        optimizer.apply_gradients([(ops.convert_to_tensor(-grad), x)])
    images = ops.convert_to_numpy(x.value)
    probs = backend.numpy(ops.softmax(model(images, training=False)))[np.arange(len(wanted)), wanted]
    return images, probs
