"""Seeded, deterministic training: by epochs (`fit`, and `run_seeds` for a set of configurations over
paired seeds) or by SGD steps with the error on a fixed subset measured every few steps (`fit_steps`),
stopping a run whose loss diverges, and, given a `cnnlab.convergence.Plateau`, one that has reached its
plateau on the held-out split; such a run records its convergence and its measures at half its length (or,
on a schedule that scales with the budget, those of a `HalfRun` branched off it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from cnnlab import backend, convergence, tasks
from cnnlab.batches import pipeline
from cnnlab.callbacks import EpochTimer, Snapshot, StopAtPlateau, StopBelowError, StopOnDivergence, restore

if backend.name() == "tensorflow":
    import tensorflow as tf

    # Experiments build many models in a loop on purpose: TensorFlow's retracing warnings are noise here.
    tf.get_logger().setLevel("ERROR")


def seed_everything(seed: int) -> None:
    """Start from a fresh Keras session (what earlier models held is released, so memory stays bounded
    however many models a notebook trains), seed Python, NumPy, the backend and Keras with deterministic
    kernels, and spread the models built next over every device when there are several
    (`backend.distribute`)."""
    backend.clear_session()
    backend.seed(seed)
    backend.distribute()


class TracedModels:
    """One model per configuration whose training, evaluation and prediction functions Keras has traced,
    trained again from each further seed instead of a fresh build whose functions would be traced anew (a
    56-layer net's tracing costs as much as four epochs on 1,000 images)."""

    def __init__(self):
        self._by_key = {}

    def build(self, key, build, seed: int):
        """`build(seed)`'s model: the configuration's traced model put into the state of a fresh build (its
        weights, random-seed states and untrained optimizer) where both match variable for variable and
        compile alike, else the fresh build itself, which becomes the one kept."""
        fresh = build(seed)
        traced = self._by_key.get(key)
        if traced is None or not _interchangeable(traced, fresh):
            self._by_key[key] = fresh
            return fresh
        fresh.optimizer.build(fresh.trainable_variables)
        for target, source in zip(traced.variables + traced.optimizer.variables,
                                  fresh.variables + fresh.optimizer.variables):
            target.assign(source)
        return traced


def _interchangeable(a, b) -> bool:
    """Whether two compiled models have the same variables (path, shape, dtype, trainable) in the same order,
    the same optimizer variables once built, and the same compile configuration."""
    def layout(variables):
        return [(v.path, tuple(v.shape), v.dtype, v.trainable) for v in variables]

    return (a.optimizer.built and layout(a.variables) == layout(b.variables)
            and a.get_compile_config() == b.get_compile_config())


@dataclass(frozen=True)
class HalfRun:
    """The run at half the budget where the schedule scales with the budget (He et al.'s steps: the full run's
    middle is still at the first rate). `builds` are the full run's, compiled for `steps` (half the budget). It
    branches off the full run after `branch_at` steps, a step up to which both schedules agree, and trains on
    to `steps` on the batches an unbroken run sees: the run from scratch at half the budget, for a quarter of
    its cost."""

    builds: dict
    steps: int
    branch_at: int
    traced: TracedModels = field(default_factory=TracedModels, compare=False)

    def train(self, key, seed: int, state, data, batch_size: int):
        """The half-budget model of configuration `key` and `seed`, from the full run's `state` at `branch_at`,
        and the step at which its loss diverged (None when it stayed finite)."""
        model = self.traced.build(key, self.builds[key], seed)
        restore(model, state)
        stop = StopOnDivergence()
        model.fit(pipeline(data.x_train, data.y_train, batch_size, shuffle_seed=seed, repeat=True,
                           start=self.branch_at), steps_per_epoch=self.steps - self.branch_at, epochs=1,
                  shuffle=False, verbose=0, callbacks=[stop])
        return model, stop.diverged_at_step and self.branch_at + stop.diverged_at_step


def fit(model, data, epochs: int, batch_size: int = 128, seed: int = 0, verbose: int = 2, callbacks=(),
        plateau: convergence.Plateau | None = None) -> dict:
    """Fit a compiled `model` on a `cnnlab.data.Dataset`, shuffled from `seed`, one line per epoch; with a
    `plateau`, stop early once the held-out split (`data.x_val`) stops improving.

    Returns the per-epoch history plus `epoch_s` (wall-clock seconds per epoch), `diverged_at_step` (None
    when the loss stayed finite) and, with a plateau, its `convergence` record and `half_weights`.
    """
    stop, timer = StopOnDivergence(), EpochTimer()
    watch = [] if plateau is None else [StopAtPlateau(plateau)]
    validation = None if data.x_val is None else pipeline(data.x_val, data.y_val, batch_size)
    history = model.fit(
        pipeline(data.x_train, data.y_train, batch_size, shuffle_seed=seed),
        validation_data=validation,
        epochs=epochs,
        shuffle=False,  # the pipeline shuffles from the seed
        verbose=verbose,
        callbacks=[stop, timer, *watch, *callbacks],
    )
    return dict(history.history, epoch_s=timer.seconds, diverged_at_step=stop.diverged_at_step,
                **_converged(watch, 1, epochs, stop))


def _converged(watch: list, every: int, cap: int, stop: StopOnDivergence) -> dict:
    """The `convergence` record and the weights at half the run (`half_weights`) of a run watched for its
    plateau; nothing for a run without one."""
    if not watch:
        return {}
    values, weights = watch[0].values, watch[0].weights
    record = convergence.record(values, watch[0].plateau, every, cap, stop.diverged_at_step is not None)
    half = weights[convergence.half_measurement(len(weights)) - 1] if weights else None
    return dict(convergence=record, half_weights=half)


def _measure_twice(model, history: dict, measure, half_model=None) -> dict:
    """`measure(model, at_half=False)` (a dict) on the trained model and, for a run watched for its plateau,
    `measure(..., at_half=True)` on its weights at half the run, or on the `half_model` of a `HalfRun` (each
    key prefixed `half_`), with the run's convergence record."""
    found = measure(model, False)
    if "convergence" not in history:
        return found
    if half_model is not None:
        found.update({f"half_{k}": v for k, v in measure(half_model, True).items()})
        return dict(found, **history["convergence"])
    final = model.get_weights()
    model.set_weights(history["half_weights"])
    found.update({f"half_{k}": v for k, v in measure(model, True).items()})
    model.set_weights(final)
    return dict(found, **history["convergence"])


def run_seeds(builds: dict, seeds, data, epochs: int, measures: dict, batch_size: int = 128, keys=("config",),
              describe=None, plateau: convergence.Plateau | None = None,
              workers: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Train every configuration of `builds` (key -> `build(seed)`, which returns a compiled model) by
    epochs from each seed, paired: one seed builds, initialises and feeds every configuration alike.
    `measures` maps a column name to (x, y), whose top-1 accuracy is measured after training. With a
    `plateau`, a run stops once `data.x_val` stops improving (`epochs` is then the cap). With `workers` > 1
    (default: what `cnnlab run --workers` set, else 1), that many runs at once in worker processes
    (`cnnlab.tasks`), with the same numbers.

    Returns one row per run (the key split into `keys`, seed, params, `describe(model, row)`'s entries, the
    measures, seconds per epoch after the first, diverged_at_step; with a plateau also the measures and
    `describe`'s entries at half the run, prefixed `half_`, and the convergence record) in key then seed
    order, and each run's Keras history by (key, seed). One line is printed per run."""
    traced = TracedModels()

    def run(item) -> tuple[dict, dict]:
        key, seed = item
        seed_everything(seed)
        model = traced.build(key, builds[key], seed)
        history = fit(model, data, epochs, batch_size, seed, verbose=0, plateau=plateau)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)), seed=seed, params=model.count_params())

        def measure(net, at_half):
            found = describe(net, dict(row, at_half=at_half)) if describe else {}
            return found | {name: accuracy(net, x, y) for name, (x, y) in measures.items()}

        row.update(_measure_twice(model, history, measure))
        row.update(s_per_epoch=float(np.median(history["epoch_s"][1:] or history["epoch_s"])),
                   diverged_at_step=history["diverged_at_step"])
        return row, {k: v for k, v in history.items() if k != "half_weights"}

    rows, histories = [], {}
    items = [(key, seed) for key in builds for seed in seeds]
    for (key, seed), (row, history) in zip(items, tasks.ordered(run, items, workers)):
        rows.append(row)
        histories[(key, seed)] = history
        label = " ".join(str(row[k]) for k in keys)
        measured = "".join(f", {name} {row[name]:.4f}" for name in measures)
        print(f"{label} seed {seed}: {row['params']:,} params{measured}, {row['s_per_epoch']:.1f} s/epoch"
              f"{_stop_text(row)}")
    return pd.DataFrame(rows), histories


def _stop_text(run: dict) -> str:
    if "stop" not in run:
        return ""
    return (f", stopped at {run['trained']} ({run['stop']}; best at {run['best_at']}, last gain "
            f"{run['last_gain']:.3g})")


def histories_table(histories: dict, keys, column: str) -> pd.DataFrame:
    """`column` of `run_seeds`' histories as a tidy table: one row per run and epoch with the run's `keys`,
    seed, epoch (from 1) and the value, for `plots.plot_runs`."""
    rows = []
    for (key, seed), history in histories.items():
        named = dict(zip(keys, key if isinstance(key, tuple) else (key,)), seed=seed)
        rows += [{**named, "epoch": epoch, column: value} for epoch, value in enumerate(history[column], 1)]
    return pd.DataFrame(rows)


def accuracy(model, x, y, batch_size: int = 1000) -> float:
    """Top-1 accuracy of `model` (logits or probabilities) on (x, y), in inference mode."""
    predicted = np.argmax(backend.numpy(model.predict(x, batch_size=batch_size, verbose=0)), axis=-1)
    return float(np.mean(predicted == np.asarray(y)))


def compile_sgd(model, learning_rate, momentum: float = 0.9, steps_per_execution: int = 1):
    """Compile for plain SGD with momentum (`learning_rate` a number or a schedule), softmax cross-entropy on
    logits, and accuracy; `steps_per_execution` steps per call of the compiled training function."""
    return _compile(model, keras.optimizers.SGD(learning_rate, momentum=momentum), steps_per_execution)


def compile_adam(model, learning_rate):
    """Compile for Adam, softmax cross-entropy on logits (per pixel too), and accuracy."""
    return _compile(model, keras.optimizers.Adam(learning_rate))


def _compile(model, optimizer, steps_per_execution: int = 1):
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model


def fit_steps(model, data, steps: int, every: int, probe, batch_size: int = 128, seed: int = 0,
              stop_below: float | None = None, verbose: int = 2, plateau: convergence.Plateau | None = None,
              snapshot_at: int | None = None) -> dict:
    """Train a compiled model (with an accuracy metric) for up to `steps` steps; every `every` steps
    measure the error on the fixed `probe` = (x, y) set (None: no probe), one line per measurement. With a
    `plateau` (monitored on the probe set, which must then be held-out training images), stop once it has
    reached its plateau. With `snapshot_at`, keep the `callbacks.training_state` after that many steps.

    Returns `step`, `error` (on the probe set; None without one), `loss` (mean training loss of the last
    `every` steps), `diverged_at_step` (None when the loss stayed finite), with a plateau its `convergence`
    record and `half_weights`, and with `snapshot_at` the `snapshot` (None when the run stopped before).
    """
    stop = StopOnDivergence()
    watch = [] if plateau is None else [StopAtPlateau(plateau)]
    snapshot = [] if snapshot_at is None else [Snapshot(snapshot_at, every)]
    callbacks = [stop, *watch, *snapshot] + ([StopBelowError(stop_below)] if stop_below is not None else [])
    train = pipeline(data.x_train, data.y_train, batch_size, shuffle_seed=seed, repeat=True)
    history = model.fit(
        train,
        validation_data=None if probe is None else pipeline(probe[0], probe[1], 1000),
        steps_per_epoch=every,
        epochs=-(-steps // every),
        shuffle=False,
        verbose=verbose,
        callbacks=callbacks,
    ).history
    n = len(history["loss"])
    return dict(
        step=[every * (i + 1) for i in range(n)],
        error=None if probe is None else [1.0 - a for a in history["val_accuracy"]],
        loss=history["loss"],
        diverged_at_step=stop.diverged_at_step,
        **_converged(watch, every, steps, stop),
        **({"snapshot": snapshot[0].state} if snapshot else {}),
    )


def run_steps(builds: dict, seeds, data, steps: int, every: int, probe, batch_size: int = 128,
              stop_below: float | None = None, keys=("config",), describe=None,
              plateau: convergence.Plateau | None = None, half_run: HalfRun | None = None,
              workers: int | None = None) -> list[dict]:
    """Train every configuration of `builds` (key -> `build(seed)`, which returns a compiled model with an
    accuracy metric) by steps from each seed, paired like `run_seeds`, with `fit_steps` (the error on the
    fixed `probe` set every `every` steps, stopping early at `stop_below`, or at the `plateau` of the probe
    set, which must then be held-out training images). With a `half_run`, the half-budget measures are
    those of its branch, not of the run's own middle. With `workers` > 1 (default: what `cnnlab run
    --workers` set, else 1), that many runs at once in worker processes (`cnnlab.tasks`), with the same numbers.

    Returns one record per run, in key then seed order: the key split into `keys`, seed, the `curve`,
    final error and loss, diverged_at_step and `describe(model, run)`'s entries; with a plateau also
    `describe`'s entries at half the budget, prefixed `half_`, and the convergence record (with a `half_run`,
    `half_at` is its length and `half_diverged_at_step` its divergence). One line per run."""
    if half_run is not None and plateau is None:
        raise ValueError("a half-budget run checks a run judged at its plateau: give the plateau too")
    traced = TracedModels()

    def run_one(item) -> dict:
        key, seed = item
        seed_everything(seed)
        model = traced.build(key, builds[key], seed)
        curve = fit_steps(model, data, steps, every, probe, batch_size, seed, stop_below, verbose=0,
                          plateau=plateau, snapshot_at=half_run and half_run.branch_at)
        run = dict(zip(keys, key if isinstance(key, tuple) else (key,)), seed=seed,
                   curve={k: v for k, v in curve.items() if k not in ("half_weights", "snapshot")},
                   final_error=curve["error"][-1], final_loss=curve["loss"][-1],
                   diverged_at_step=curve["diverged_at_step"])

        def measure(net, at_half):
            return describe(net, dict(run, at_half=at_half)) if describe else {}

        half_model = None
        if half_run is not None and curve["snapshot"] is not None:
            half_model, half_diverged = half_run.train(key, seed, curve["snapshot"], data, batch_size)
            curve["convergence"].update(half_at=half_run.steps, half_diverged_at_step=half_diverged)
        return run | _measure_twice(model, curve, measure, half_model)

    runs = []
    for run in tasks.ordered(run_one, [(key, seed) for key in builds for seed in seeds], workers):
        runs.append(run)
        diverged = f", diverged at step {run['diverged_at_step']}" if run["diverged_at_step"] else ""
        print(f"{' '.join(str(run[k]) for k in keys)} seed {run['seed']}: {run['curve']['step'][-1]} steps, error "
              f"{run['final_error']:.3f}, loss {run['final_loss']:.3f}{diverged}{_stop_text(run)}")
    return runs


def runs_table(runs) -> pd.DataFrame:
    """The runs of `run_steps` (records) or `run_seeds` (a table) as a table of their scalar columns: one row
    per run, without the curves, arrays and other objects."""
    records = runs.to_dict("records") if hasattr(runs, "to_dict") else runs
    return pd.DataFrame([{k: v for k, v in r.items() if pd.api.types.is_scalar(v)} for r in records])


def curves_table(runs: list[dict], keys) -> pd.DataFrame:
    """The curves of `run_steps` records as a tidy table: one row per run and measured step with the run's
    `keys`, seed, step, error (NaN without a probe set) and loss, for `plots.plot_runs`."""
    rows = []
    for r in runs:
        curve = r["curve"]
        errors = curve["error"] or [None] * len(curve["step"])
        for step, error, loss in zip(curve["step"], errors, curve["loss"]):
            rows.append({**{k: r[k] for k in keys}, "seed": r["seed"], "step": step, "error": error, "loss": loss})
    return pd.DataFrame(rows)


def diverged_runs(runs: list[dict], keys) -> list[dict]:
    """The `run_steps` records that diverged: their `keys`, seed and the step, for the record's metrics."""
    return [{**{k: r[k] for k in keys}, "seed": r["seed"], "step": r["diverged_at_step"]}
            for r in runs if r["diverged_at_step"]]


def steps_to(curve: dict, threshold: float, on: str = "error", smooth: int = 1) -> int | None:
    """The first measured step at which the curve's `on` ("error" on the probe set, or the training
    "loss"), as a `trailing_mean` over `smooth` measurements, is at or below `threshold`; None if never."""
    for step, value in zip(curve["step"], trailing_mean(curve[on], smooth)):
        if value <= threshold:
            return step
    return None


def trailing_mean(values, window: int) -> np.ndarray:
    """Each value replaced by the mean of it and the `window - 1` values before it (fewer at the start): a
    curve whose single lucky measurement does not count as a level reached."""
    if window < 1:
        raise ValueError(f"the window must be at least 1 measurement, got {window}")
    sums = np.cumsum(np.asarray(values, dtype=float))
    counts = np.minimum(np.arange(1, len(sums) + 1), window)
    return (sums - np.concatenate([np.zeros(window), sums])[: len(sums)]) / counts
