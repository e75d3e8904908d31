"""Batches of in-memory arrays for Keras's `fit` and `evaluate`, shuffled from a seed: a tf.data pipeline on
the TensorFlow backend, a Keras `PyDataset` on the others."""

from __future__ import annotations

import keras
import numpy as np


def pipeline(x: np.ndarray, y: np.ndarray, batch_size: int = 128, shuffle_seed: int | None = None,
             repeat: bool = False, start: int = 0):
    """Batches of in-memory arrays for Keras's `fit` and `evaluate`, shuffled from a seed when given (each pass
    in another order), endless when `repeat`, then from its batch `start` on (a run that goes on from a step
    sees the batches an unbroken run sees there): a prefetched tf.data pipeline on the TensorFlow backend with one
    device, an `ArrayBatches` on the other backends and on several devices (Keras draws a batch to build a
    distributed model before training, which would move tf.data's reshuffling on by a pass; the order of
    `ArrayBatches` follows from the pass alone).

    The tf.data pipeline shuffles the indices and gathers each batch from one copy of the arrays: the same
    batches as shuffling the images themselves, without a second and third copy in a shuffle buffer and a cache."""
    if start and not repeat:
        raise ValueError(f"only an endless pipeline starts at a later batch, got start={start} without repeat")
    if keras.backend.backend() != "tensorflow":
        return ArrayBatches(x, y, batch_size, shuffle_seed, repeat, start)
    import tensorflow as tf

    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return ArrayBatches(x, y, batch_size, shuffle_seed, repeat, start)

    images, labels = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.repeat().skip(start) if repeat else ds


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays as a Keras `PyDataset`, for backends without tf.data. Pass p is in the order
    of a permutation drawn from (`seed`, p), or in the arrays' order without a seed. One pass per epoch (an
    epoch that did not draw every batch, such as Keras's look at the first batch before training, does not
    count), or endless when `repeat` (the pass then follows from the batch's index, so a step budget that
    splits passes into several Keras epochs still sees every image once per pass; its batch 0 is the endless
    sequence's batch `start`). Fit it with shuffle=False: Keras would otherwise shuffle the order of the
    batches too."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None = None, repeat: bool = False,
                 start: int = 0):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed, self.repeat, self.start = x, y, batch_size, seed, repeat, start
        self.per_pass = -(-len(x) // batch_size)
        self._epoch = 0
        self._drawn = set()  # the batches of this epoch drawn so far
        self._order = (None, None)  # (pass, its permutation)

    @property
    def num_batches(self):
        return None if self.repeat else self.per_pass

    def __len__(self):
        return self.per_pass

    def __getitem__(self, index):
        pass_, position = divmod(self.start + index, self.per_pass) if self.repeat else (self._epoch, index)
        self._drawn.add(index)
        batch = self._indices(pass_)[position * self.batch_size:(position + 1) * self.batch_size]
        return self.x[batch], self.y[batch]

    def on_epoch_end(self):
        if len(self._drawn) == self.per_pass:
            self._epoch += 1
        self._drawn.clear()

    def _indices(self, pass_: int) -> np.ndarray:
        if self.seed is None:
            return np.arange(len(self.x))
        if self._order[0] != pass_:
            self._order = (pass_, np.random.default_rng([self.seed, pass_]).permutation(len(self.x)))
        return self._order[1]
