"""What convolution and pooling do to a moved input (lecture seed 002: parameter sharing makes a conv layer
equivariant to translation, f(g(x)) = g(f(x)), but not to rotation or scale; pooling provides a form of
translation invariance).

- `transform_error`: how far a layer's maps of a transformed image are from the transformed maps, relative to
  the maps' size, inside a margin where neither the image border nor the filled-in pixels reach.
- `shift_change`: how much a layer's maps change, in place, when the image moves by a few pixels.
"""

from __future__ import annotations

import keras
import numpy as np

from cnnlab import backend


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The images (N x H x W x C) moved down by `dy` and right by `dx` pixels, zeros filling in."""
    moved = np.zeros_like(images)
    h, w = images.shape[1:3]
    moved[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return moved


def rotate(images: np.ndarray) -> np.ndarray:
    """The images turned by 90 degrees (counter-clockwise)."""
    return np.rot90(images, 1, axes=(1, 2)).copy()


def halve(images: np.ndarray) -> np.ndarray:
    """The images at half the size: each 2x2 block averaged."""
    n, h, w, c = images.shape
    return images[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


TRANSFORMS = {"shift by (3, 2) pixels": lambda x: shift(x, 3, 2), "rotation by 90 degrees": rotate,
              "scale by 1/2": halve}


def layer_maps(model, layer_name: str, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The output of the layer `layer_name` of the sequential conv stack `model` for the images, of any size, in
    inference mode, as NumPy: the layers up to it applied to a new input without a fixed size (the same weights)."""
    stack = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    inputs = keras.Input((None, None, images.shape[-1]))
    outputs = inputs
    for layer in stack[:[layer.name for layer in stack].index(layer_name) + 1]:
        outputs = layer(outputs)
    tapped = keras.Model(inputs, outputs)
    return np.concatenate([backend.numpy(tapped(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)])


def transform_error(model, layer_name: str, images: np.ndarray, transform, margin: int) -> float:
    """|f(g(x)) - g(f(x))| / |g(f(x))| (Frobenius norms over all images) for the layer's maps f and the image
    transform g, both cropped by `margin` pixels on every side: 0 up to rounding where f is equivariant to g."""
    ours, theirs = layer_maps(model, layer_name, transform(images)), transform(layer_maps(model, layer_name, images))
    inner = (slice(None), slice(margin, -margin or None), slice(margin, -margin or None))
    return float(np.linalg.norm(ours[inner] - theirs[inner]) / np.linalg.norm(theirs[inner]))


def shift_change(model, layer_name: str, images: np.ndarray, pixels: int = 1) -> float:
    """|f(shifted x) - f(x)| / |f(x)| for the layer's maps f where they are, averaged over moving the images
    `pixels` right and down: small where the layer is invariant to the shift."""
    still = layer_maps(model, layer_name, images)
    moved = [layer_maps(model, layer_name, shift(images, dy, dx)) for dy, dx in ((0, pixels), (pixels, 0))]
    return float(np.mean([np.linalg.norm(m - still) / np.linalg.norm(still) for m in moved]))
