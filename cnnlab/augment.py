"""Data augmentation as layers in front of a model (active in training only, as Keras's preprocessing layers
are), and test-time flipping: the mean prediction of an image and its mirror image."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from cnnlab import backend


def augmented(model: keras.Model, flip: bool = True, shift: float = 0.1, seed: int | None = None) -> keras.Model:
    """`model` behind random horizontal flips (when `flip`) and random shifts of up to `shift` of the image
    height and width (a random crop of the padded image, with the border pixels repeated). In inference the
    images pass unchanged, so the model is evaluated on the images as they are."""
    if not 0 <= shift < 1:
        raise ValueError(f"shift must be a fraction of the image size in [0, 1), got {shift}")
    x = inputs = keras.Input(model.input_shape[1:])
    if flip:
        x = layers.RandomFlip("horizontal", seed=seed, name="random_flip")(x)
    if shift:
        x = layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed, name="random_shift")(x)
    return keras.Model(inputs, model(x), name=f"{model.name}_augmented")


def flip_averaged(model: keras.Model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities of a logits `model` averaged over each image and its horizontal mirror image."""
    def probabilities(images):
        return backend.numpy(keras.ops.softmax(model.predict(images, batch_size=batch_size, verbose=0)))

    return (probabilities(x) + probabilities(x[:, :, ::-1])) / 2
