"""The Keras callbacks of a training run (a diverging loss, the epochs' times, the plateau of a held-out
quantity, the error reaching a threshold, a snapshot of the run's state) and that state taken and put back."""

from __future__ import annotations

import math
import time

import keras

from cnnlab import convergence


class StopOnDivergence(keras.callbacks.Callback):
    """Stop training when the loss becomes NaN or inf, and remember at which step."""

    def __init__(self):
        super().__init__()
        self.diverged_at_step = None
        self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at_step = self._step
            self.model.stop_training = True


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class StopAtPlateau(keras.callbacks.Callback):
    """Stop once the monitored held-out quantity has reached its plateau (`cnnlab.convergence.reached`), and
    keep the weights after every measurement, so that a run can be measured again at half its length."""

    def __init__(self, plateau: convergence.Plateau):
        super().__init__()
        self.plateau = plateau
        self.values, self.weights = [], []

    def on_epoch_end(self, epoch, logs=None):
        if self.plateau.monitor not in (logs or {}):
            raise ValueError(f"the plateau monitors '{self.plateau.monitor}', which needs a held-out split")
        self.values.append(float(logs[self.plateau.monitor]))
        self.weights.append(self.model.get_weights())
        if self.plateau.stop_early and convergence.reached(self.values, self.plateau):
            self.model.stop_training = True


class Snapshot(keras.callbacks.Callback):
    """The `training_state` once `at` steps are done (at the end of a measurement every `every` steps)."""

    def __init__(self, at: int, every: int):
        super().__init__()
        if at < every or at % every:
            raise ValueError(f"a snapshot is taken at the end of a measurement: a multiple of {every} steps, got {at}")
        self.at, self.every, self.state = at, every, None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) * self.every == self.at:
            self.state = training_state(self.model)


def training_state(model) -> tuple[list, list]:
    """The variables of a trained `model` (weights, BN statistics, random-seed states) and of its optimizer
    (momenta, step count, rate), as arrays."""
    return ([keras.ops.convert_to_numpy(v) for v in model.variables],
            [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables])


def restore(model, state: tuple[list, list]) -> None:
    """Put `training_state`'s variables into `model` (compiled alike, trained or not)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for variables, values in zip((model.variables, model.optimizer.variables), state):
        if len(variables) != len(values):
            raise ValueError(f"the model has {len(variables)} variables here, the state {len(values)}")
        for variable, value in zip(variables, values):
            variable.assign(value)


class StopBelowError(keras.callbacks.Callback):
    """Stop once the error on the probe set (Keras's val_accuracy) drops to `threshold` or below."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        if 1.0 - (logs or {}).get("val_accuracy", 0.0) <= self.threshold:
            self.model.stop_training = True
