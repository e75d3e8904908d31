"""07's shared pieces: its sources, held-out images, a level held (a trailing mean) and the callback that
stops there, a run's curve with callbacks of one's own, the mean test error over a few measurements."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab import data
from cnnlab.batches import pipeline
from cnnlab.callbacks import StopOnDivergence
from cnnlab.train import accuracy, trailing_mean

SOURCE_BN = "Ioffe & Szegedy 2015"
SOURCE_DROPOUT = "Srivastava et al. 2014"
SOURCE_SEED = "lecture seed 000"
SOURCE_BN_STEPS = f"{SOURCE_BN}, Fig. 3 (steps to Inception's 72.2%: Inception 31.0M, BN-Baseline 13.3M, BN-x5 2.1M)"
# the minimum effects of the dropout claims on the test error: under Srivastava et al.'s own (Table 2: 0.35 pp for
# dropout, 0.19 pp for max-norm), so that an effect of the paper's size can reproduce
DROPOUT_EFFECT_PP, MAX_NORM_EFFECT_PP = 0.2, 0.1
BN_NETS = ("baseline", "bn", "bn_x5")
SIGMOID_NETS = ("sigmoid", "sigmoid_bn")
CHANCE_ERROR = 0.9
SECOND_PHASE_SEED = 10_000  # + the seed: the order of the batches after the learning-rate drop, both branches alike


def held_out(n_train: int, n_val: int, seed: int):
    """`n_train` training images and `n_val` more of Fashion-MNIST's training images held out (`x_val`, where
    plateaus and levels are measured; the test images stay for the claims), standardised by the training
    part's statistics."""
    return data.prepare(norm="standard", n_train=n_train + n_val, val_fraction=n_val / (n_train + n_val), seed=seed)


def test_error(test):
    """A `describe` hook: the error on the `test` images (x, y)."""
    def describe(model, run):
        return dict(test_error=1.0 - accuracy(model, *test))

    return describe


def smoothed_best(errors, smooth: int) -> float:
    """The lowest trailing mean of `smooth` measured errors: a level held, not one lucky measurement."""
    return float(trailing_mean(errors, smooth).min())


class StopAtLevel(keras.callbacks.Callback):
    """Stop once the trailing mean of the last `smooth` held-out errors (1 - val_accuracy) is at or below
    `level` (`steps_to`'s reading of a curve, so a run stops at the step it reaches the level)."""

    def __init__(self, level: float, smooth: int):
        super().__init__()
        self.level, self.smooth, self.errors = level, smooth, []

    def on_epoch_end(self, epoch, logs=None):
        self.errors.append(1.0 - float((logs or {})["val_accuracy"]))
        if trailing_mean(self.errors, self.smooth)[-1] <= self.level:
            self.model.stop_training = True


def fit_curve(model, ds, steps: int, every: int, batch_size: int, shuffle_seed: int, callbacks=()) -> dict:
    """`train.fit_steps` with callbacks of one's own: up to `steps` SGD steps on `ds.x_train` (shuffled from
    `shuffle_seed`), the error on the held-out `ds.x_val` every `every` steps. Returns `step`, `error`, `loss`
    (mean training loss of the last `every` steps) and `diverged_at_step`."""
    stop = StopOnDivergence()
    history = model.fit(pipeline(ds.x_train, ds.y_train, batch_size, shuffle_seed=shuffle_seed, repeat=True),
                        validation_data=pipeline(ds.x_val, ds.y_val, 1000), steps_per_epoch=every,
                        epochs=-(-steps // every), shuffle=False, verbose=0, callbacks=[stop, *callbacks]).history
    return dict(step=[every * (i + 1) for i in range(len(history["loss"]))],
                error=[1.0 - a for a in history["val_accuracy"]], loss=history["loss"],
                diverged_at_step=stop.diverged_at_step)


def mean_test_error(model, weights: list, test) -> float:
    """The mean test error of `model` with each of `weights` (a few measurements in a row: the level of a run
    at a constant rate, whose single measurements scatter); the model keeps its own weights."""
    own = model.get_weights()
    errors = []
    for w in weights:
        model.set_weights(w)
        errors.append(1.0 - accuracy(model, *test))
    model.set_weights(own)
    return float(np.mean(errors))
