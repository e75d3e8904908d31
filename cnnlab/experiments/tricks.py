"""Experiment 07: the tricks of the trade. Batch normalisation (Ioffe & Szegedy 2015: the same accuracy in
fewer steps, a higher learning rate, a deep sigmoid net that trains only with it, less sensitivity to the
initial weights' scale, a regulariser), dropout and max-norm (Srivastava et al. 2014, with weight scaling
against Monte Carlo mask averaging), data augmentation with test-time flipping, and dividing the learning rate
by 10 after a plateau (lecture seed 000: a step down, and calmer errors)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from cnnlab import augment, convergence, data, plots
from cnnlab.batches import pipeline
from cnnlab.compare import above, below, not_above, paired_difference, paired_ratio, per_seed
from cnnlab.convergence import evidence
from cnnlab.models import conv_stack, plain_mlp
from cnnlab.models.convnet import stages_layout
from cnnlab.rules import at_least
from cnnlab.train import (StopAtPlateau, StopOnDivergence, accuracy, compile_adam, compile_sgd, curves_table, run_steps,
                          seed_everything, steps_to, trailing_mean)

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


# --- held-out images, levels and learning-rate drops ------------------------------------------------------------


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


# --- batch normalisation --------------------------------------------------------------------------------------


def bn_builds(stages, learning_rate: float, factor: float, sigmoid_depth: int, sigmoid_filters: int,
              sigmoid_learning_rate: float, momentum: float) -> dict:
    """net -> build(seed): the conv net of `stages` without BN, with BN at the same learning rate and with BN
    at `factor` times it; a `sigmoid_depth`-layer sigmoid conv net without and with BN (Glorot init, SGD)."""
    layout = stages_layout(stages)
    per_stage = -(-sigmoid_depth // 3)
    deep = stages_layout([[sigmoid_filters] * min(per_stage, sigmoid_depth - i * per_stage) for i in range(3)])

    def build(layout, activation, batch_norm, rate, seed):
        model = conv_stack(layout, activation=activation, batch_norm=batch_norm, seed=seed, init="glorot_uniform")
        return compile_sgd(model, rate, momentum)

    return {
        "baseline": lambda s: build(layout, "relu", False, learning_rate, s),
        "bn": lambda s: build(layout, "relu", True, learning_rate, s),
        "bn_x5": lambda s: build(layout, "relu", True, factor * learning_rate, s),
        "sigmoid": lambda s: build(deep, "sigmoid", False, sigmoid_learning_rate, s),
        "sigmoid_bn": lambda s: build(deep, "sigmoid", True, sigmoid_learning_rate, s),
    }


def bn_runs(builds: dict, seeds, ds, steps: int, every: int, batch_size: int, plateau: convergence.Plateau,
            smooth: int, test) -> list[dict]:
    """The runs of the BN comparison, one record per net and seed (`run_steps`' records), errors measured on the
    held-out `ds.x_val` every `every` steps, at most `steps` steps:

    - the baseline trains to its plateau; its best (`smoothed_best`) is its seed's `target_error`;
    - BN and BN-x5 train until they reach that target (`StopAtLevel`) or the cap;
    - the deep sigmoid nets, without and with BN, train to their plateau.

    Every ReLU run gets `best_error`, `target_error` and `steps_to_target` (None: never), every run its
    `test_error` at the end (and the plateau runs at half their length, `half_test_error`)."""
    probe_set, describe = (ds.x_val, ds.y_val), test_error(test)
    baseline = run_steps({"baseline": builds["baseline"]}, seeds, ds, steps, every, probe_set, batch_size,
                         keys=("net",), describe=describe, plateau=plateau)
    for r in baseline:
        r["best_error"] = r["target_error"] = smoothed_best(r["curve"]["error"], smooth)
    target = {r["seed"]: r["target_error"] for r in baseline}
    faster = []
    for net in ("bn", "bn_x5"):
        for seed in seeds:
            seed_everything(seed)
            model = builds[net](seed)
            curve = fit_curve(model, ds, steps, every, batch_size, seed, [StopAtLevel(target[seed], smooth)])
            faster.append(dict(net=net, seed=seed, curve=curve, final_error=curve["error"][-1],
                               final_loss=curve["loss"][-1], diverged_at_step=curve["diverged_at_step"],
                               trained=curve["step"][-1],
                               best_error=smoothed_best(curve["error"], smooth), target_error=target[seed],
                               **describe(model, {})))
            print(f"{net} seed {seed}: {curve['step'][-1]} steps, held-out error {curve['error'][-1]:.3f} "
                  f"(target {target[seed]:.3f})")
    for r in baseline + faster:
        r["steps_to_target"] = steps_to(r["curve"], r["target_error"], smooth=smooth)
    sigmoid = run_steps({net: builds[net] for net in SIGMOID_NETS}, seeds, ds, steps, every, probe_set, batch_size,
                        keys=("net",), describe=describe, plateau=plateau)
    return baseline + faster + sigmoid


def bn_claims(rec, runs: list[dict], steps: int, factor: float, min_speedup: float, margin_pp: float) -> None:
    """Ioffe & Szegedy: BN reaches the baseline's best accuracy in fewer steps, more so at a higher learning
    rate (claims about training: the baseline's runs, whose best is the target, must be at their plateau); a deep
    sigmoid net trains only with BN (claims about the trained nets, all at their plateau)."""
    def steps_of(net):
        return per_seed(runs, "steps_to_target", net=net)

    effect = dict(why=f"a speed-up of {min_speedup}x or more counts as the effect; a net that never reached the "
                      f"target counts as {steps} steps (a bound)")
    training = evidence(runs, about="training", net="baseline")
    rec.claim("tricks.bn.fewer_steps", "BN at the same learning rate reaches the baseline's best held-out error "
              "in fewer steps (baseline's steps to its best / BN's steps to it)",
              "2.3x (Inception 31.0M steps / BN-Baseline 13.3M)",
              paired_ratio(steps_of("baseline"), steps_of("bn"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS, evidence=training)
    rec.claim("tricks.bn.higher_rate", f"BN with a {factor:g}x learning rate reaches it in fewer steps still "
              "(baseline's steps / BN-x5's)",
              "14.8x (Inception 31.0M steps / BN-x5 2.1M; BN-x5 also has the accelerated-BN changes of Sec. 4.2.1)",
              paired_ratio(steps_of("baseline"), steps_of("bn_x5"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS, evidence=training)
    rec.claim("tricks.bn.higher_rate_helps", f"The {factor:g}x learning rate, which BN allows, is faster than BN at "
              "the baseline's rate (BN's steps / BN-x5's)", "> 1 (6.3x: BN-Baseline 13.3M steps / BN-x5 2.1M)",
              paired_ratio(steps_of("bn"), steps_of("bn_x5"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS, evidence=training,
              note="Inception: BN-Baseline 13.3M steps, BN-x5 2.1M to the same accuracy")
    sigmoid, half = per_seed(runs, "test_error", net="sigmoid"), per_seed(runs, "half_test_error", net="sigmoid")
    rec.claim("tricks.bn.sigmoid_without", "A deep sigmoid net without BN stays near chance (its lowest final test "
              f"error over the seeds; chance {CHANCE_ERROR})", "about 0.9 (accuracy < 0.1%)", min(sigmoid), "error",
              at_least(0.8, partial=0.6, why="near chance; partial: most of the way"), source=f"{SOURCE_BN}, Sec. "
              "4.2.2", note="per seed " + ", ".join(f"{e:.3f}" for e in sigmoid),
              evidence=evidence(runs, half=min(half), net="sigmoid"))
    rec.claim("tricks.bn.sigmoid_with", "With BN the same sigmoid net trains (final test error, BN minus without)",
              "< 0 (69.8% accuracy with BN)", paired_difference(per_seed(runs, "test_error", net="sigmoid_bn"),
                                                                sigmoid, scale=100), "pp",
              below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"), source=f"{SOURCE_BN}, Sec. 4.2.2",
              evidence=evidence(runs, net=list(SIGMOID_NETS), half=paired_difference(
                  per_seed(runs, "half_test_error", net="sigmoid_bn"), half, scale=100)))


def scaled_kernels(model, scale: float):
    """`model` with every kernel (conv and dense weights, not biases or BN's parameters) multiplied by `scale`:
    the same initialisation scheme at another scale."""
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * scale)
    return model


def init_scale_runs(builds: dict, scales, seeds, ds, steps: int, every: int, batch_size: int,
                    smooth: int) -> pd.DataFrame:
    """The baseline and the BN net (at the baseline's rate) from their initial weights scaled by each of
    `scales`, `steps` SGD steps each on the same batches: one row per net, scale and seed with the held-out
    error at the end (the trailing mean of `smooth` measurements, every `every` steps) and the step it
    diverged at (None when it did not)."""
    rows = []
    for net in ("baseline", "bn"):
        for scale in scales:
            for seed in seeds:
                seed_everything(seed)
                curve = fit_curve(scaled_kernels(builds[net](seed), scale), ds, steps, every, batch_size, seed)
                error = CHANCE_ERROR if curve["diverged_at_step"] else float(trailing_mean(curve["error"], smooth)[-1])
                rows.append(dict(net=net, scale=scale, seed=seed, error=error,
                                 diverged_at_step=curve["diverged_at_step"]))
    table = pd.DataFrame(rows)
    means = table.groupby(["net", "scale"], sort=False).error.mean().unstack()
    print(f"held-out error after {steps} steps, by initial scale (mean over seeds):\n{means.round(3)}")
    return table


def init_scale_claim(rec, table: pd.DataFrame, steps: int, margin_pp: float) -> None:
    """Ioffe & Szegedy, Sec. 3.3: with BN, training is less sensitive to the scale of the initial weights. Per
    seed, the spread of the held-out error after `steps` steps over the scales (highest minus lowest), without
    BN minus with it (a claim about early training, read at a fixed step)."""
    spread = {net: [float(np.ptp(group.error)) for _, group in table[table.net == net].groupby("seed")]
              for net in ("baseline", "bn")}
    scales = ", ".join(f"{s:g}" for s in dict.fromkeys(table.scale))
    diverged = table[table.diverged_at_step.notna()]
    rec.claim("tricks.bn.init_scale", f"BN makes training less sensitive to the initial weights' scale (x{scales}): "
              f"the spread of the held-out error after {steps} steps over the scales, without BN minus with it",
              "> 0", paired_difference(spread["baseline"], spread["bn"], scale=100), "pp",
              above(margin_pp, why=f"the minimum effect is {margin_pp} pp; a run that diverged counts at chance, "
                                   f"{CHANCE_ERROR}"),
              source=f"{SOURCE_BN}, Sec. 3.3 ('Batch Normalization also makes training more resilient to the "
                     "parameter scale'); lecture seed 001 ('Reduces sensitivity to initialisation')",
              note=f"{len(diverged)} of {len(table)} runs diverged" + (
                  f" ({', '.join(f'{r.net} x{r.scale:g} seed {r.seed}' for r in diverged.itertuples())})"
                  if len(diverged) else ""))


# --- dropout and max-norm --------------------------------------------------------------------------------------


def dropout_builds(depth: int, width: int, dropout: float, input_dropout: float, max_norm: float,
                   learning_rate: float) -> dict:
    """net -> build(seed): Srivastava et al.'s ReLU MLP without dropout, with dropout, with dropout and
    max-norm, and with BN instead (BN as a regulariser), trained by Adam (by SGD the dropout nets are still far
    from fitting their training images within a quick budget)."""
    def build(seed, **regularisers):
        return compile_adam(plain_mlp(depth, width, seed=seed, **regularisers), learning_rate)

    return {"plain": lambda s: build(s),
            "dropout": lambda s: build(s, dropout=dropout, input_dropout=input_dropout),
            "dropout_maxnorm": lambda s: build(s, dropout=dropout, input_dropout=input_dropout, max_norm=max_norm),
            "batch_norm": lambda s: build(s, batch_norm=True)}


def train_and_test_error(train, test):
    """`run_seeds`' describe hook: the error on the training images (in inference mode), on the test images,
    and the gap between them."""
    def describe(model, row):
        found = dict(train_error=1.0 - accuracy(model, *train), test_error=1.0 - accuracy(model, *test))
        return dict(found, gap=found["test_error"] - found["train_error"])

    return describe


def mask_averaged_error(model, test, masks: int) -> float:
    """The test error of the softmax averaged over `masks` random dropout masks (the net run in training mode:
    Monte Carlo model averaging)."""
    probabilities = np.mean([keras.ops.convert_to_numpy(keras.ops.softmax(model(test[0], training=True)))
                             for _ in range(masks)], axis=0)
    return float(np.mean(np.argmax(probabilities, -1) != test[1]))


def with_mask_averaging(train, test, masks: int):
    """`run_seeds`' describe hook: `train_and_test_error`'s, and for a net with dropout the test error of
    `masks` dropout masks averaged (`test_error_mc`) beside the one pass with every unit kept (`test_error`:
    Keras scales the kept units up in training, which is the paper's weight scaling at test time)."""
    errors = train_and_test_error(train, test)

    def describe(model, row):
        found = errors(model, row)
        if any(isinstance(layer, keras.layers.Dropout) for layer in model.layers):
            found["test_error_mc"] = mask_averaged_error(model, test, masks)
        return found

    return describe


def dropout_claims(rec, runs: pd.DataFrame, masks: int, margin_pp: float) -> None:
    """Srivastava et al.: dropout lowers the test error and the train-test gap; max-norm lowers it further;
    weight scaling at test time does as well as averaging `masks` dropout masks. Ioffe & Szegedy: BN
    regularises too (the train-test gap). Claims about the trained nets: every run at its plateau, the same
    verdict at half of each run."""
    def difference(a, b, column="test_error"):
        return paired_difference(per_seed(runs, column, net=a), per_seed(runs, column, net=b), scale=100)

    def trained(a, b, column="test_error"):
        return evidence(runs, half=difference(a, b, f"half_{column}"), net=[a, b])

    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    table = f"{SOURCE_DROPOUT}, Table 2 (MNIST)"
    rec.claim("tricks.dropout.test_error", "Dropout lowers the test error (dropout minus without, test error)",
              "< 0 (-0.35 pp between different nets: 1.60% -> 1.25%)", difference("dropout", "plain"), "pp",
              below(-DROPOUT_EFFECT_PP, why=f"the minimum effect is {DROPOUT_EFFECT_PP} pp, under the paper's 0.35"),
              source=f"{table}: standard NN 2x800 (Simard et al.) 1.60%, dropout NN 3x1024 logistic 1.35%, dropout NN "
                     "3x1024 ReLU 1.25%; the table has no 3x1024 ReLU net without dropout",
              evidence=trained("dropout", "plain"))
    rec.claim("tricks.dropout.gap", "Dropout narrows the gap between training and test error (gap with dropout "
              "minus without)", "< 0", difference("dropout", "plain", "gap"), "pp", below(-margin_pp, **effect),
              source=f"{SOURCE_DROPOUT}, Sec. 7.1", evidence=trained("dropout", "plain", "gap"))
    rec.claim("tricks.dropout.max_norm", "Max-norm on top of dropout lowers the test error further (with minus "
              "without max-norm)", "-0.19 pp (1.25% -> 1.06%)", difference("dropout_maxnorm", "dropout"), "pp",
              below(-MAX_NORM_EFFECT_PP, why=f"the minimum effect is {MAX_NORM_EFFECT_PP} pp, under the paper's 0.19"),
              source=f"{table}: dropout NN 3x1024 ReLU 1.25%, dropout + max-norm 3x1024 ReLU 1.06%",
              evidence=trained("dropout_maxnorm", "dropout"))
    scaled, averaged = (per_seed(runs, c, net="dropout") for c in ("test_error", "test_error_mc"))
    half = paired_difference(per_seed(runs, "half_test_error", net="dropout"),
                             per_seed(runs, "half_test_error_mc", net="dropout"), scale=100)
    rec.claim("tricks.dropout.weight_scaling", f"At test time, one pass with the weights scaled by the keep "
              f"probability does as well as averaging {masks} random dropout masks (test error, scaled minus "
              "averaged)", "about 0 ('around k = 50, the Monte-Carlo method becomes as good as the approximate "
              "method')", paired_difference(scaled, averaged, scale=100), "pp",
              not_above(margin_pp, why=f"up to {margin_pp} pp worse is within noise"),
              source=f"{SOURCE_DROPOUT}, Sec. 7.5 and Fig. 11 (MNIST); lecture seed 000 ('When applying the "
                     "trained network, multiply activations with the probability that the unit was set to zero "
                     "during training'; the paper multiplies by the probability p that a unit is retained)",
              evidence=evidence(runs, half=half, net="dropout"))
    rec.claim("tricks.bn.regulariser", "BN acts as a regulariser: it narrows the gap between training and test "
              "error (gap with BN minus without, the same MLP)", "< 0", difference("batch_norm", "plain", "gap"), "pp",
              below(-margin_pp, **effect), source=f"{SOURCE_BN}, Sec. 3.4 ('Batch Normalization regularizes the "
              "model'); lecture seed 001 ('Introduces stochasticity and acts as a regulariser')", evidence=trained("batch_norm", "plain", "gap"))


# --- augmentation ----------------------------------------------------------------------------------------------


def augment_builds(stages, shift: float, learning_rate: float, momentum: float) -> dict:
    """net -> build(seed): the conv net of `stages`, plain and behind random flips and shifts."""
    layout = stages_layout(stages)

    def build(seed, augmentation):
        model = conv_stack(layout, seed=seed, init="he_normal")
        model = augment.augmented(model, flip=True, shift=shift, seed=seed) if augmentation else model
        return compile_sgd(model, learning_rate, momentum)

    return {"plain": lambda s: build(s, False), "augmented": lambda s: build(s, True)}


def with_flip_averaging(train, test):
    """`run_seeds`' describe hook: `train_and_test_error`'s, and the test error of the predictions averaged over
    each test image and its mirror image."""
    errors = train_and_test_error(train, test)

    def describe(model, row):
        flipped = np.argmax(augment.flip_averaged(model, test[0]), -1) != test[1]
        return dict(errors(model, row), test_error_flip=float(np.mean(flipped)))

    return describe


def augment_claims(rec, runs: pd.DataFrame, n_train: int, margin_pp: float) -> None:
    """Seed 000: augmentation narrows the train-test gap without costing test accuracy; flipping the test images
    too helps (claims about the trained nets: every run at its plateau, the same verdict at half of each run)."""
    def difference(a, column_a, b, column_b, half=""):
        return paired_difference(per_seed(runs, half + column_a, net=a), per_seed(runs, half + column_b, net=b),
                                 scale=100)

    def both(a, column_a, b, column_b):
        trained = evidence(runs, half=difference(a, column_a, b, column_b, "half_"), net=[a, b])
        return dict(measured=difference(a, column_a, b, column_b), evidence=trained)

    source = f"{SOURCE_SEED}, 'Data augmentation'"
    gap, test = both("augmented", "gap", "plain", "gap"), both("augmented", "test_error", "plain", "test_error")
    flip = both("augmented", "test_error_flip", "augmented", "test_error")
    rec.claim("tricks.augment.gap", f"Random flips and shifts narrow the train-test gap on {n_train:,} training "
              "images (gap augmented minus plain)", "< 0", gap["measured"], "pp",
              below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"), source=source, evidence=gap["evidence"])
    rec.claim("tricks.augment.test_not_worse", "... without a higher test error (augmented minus plain)", "<= 0",
              test["measured"], "pp", not_above(margin_pp, why=f"up to {margin_pp} pp higher is within noise"),
              source=source, evidence=test["evidence"])
    rec.claim("tricks.augment.test_flip", "Flipping at test time too helps the augmented net (error averaged over "
              "the image and its mirror image minus the image's)", "< 0", flip["measured"], "pp",
              below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"),
              source=f"{SOURCE_SEED}, 'During testing'", evidence=flip["evidence"])


# --- learning-rate drop ----------------------------------------------------------------------------------------


def lr_build(stages, learning_rate: float, momentum: float):
    """build(seed): the conv net of `stages` (He init) by SGD at a constant `learning_rate`."""
    layout = stages_layout(stages)
    return lambda seed: compile_sgd(conv_stack(layout, seed=seed, init="he_normal"), learning_rate, momentum)


def _restore(model, state) -> None:
    """Put back the weights and the optimizer's variables (momenta, step count, rate) of `state`."""
    model.set_weights(state[0])
    for variable, value in zip(model.optimizer.variables, state[1]):
        variable.assign(value)


def lr_runs(build, seeds, ds, steps: int, every: int, batch_size: int, plateau: convergence.Plateau,
            factor: float, window: int, test) -> list[dict]:
    """Per seed, one net trained at its constant rate until its held-out error (`ds.x_val`, measured every
    `every` steps) reaches its plateau, at most `steps` steps; from there two branches fed the same batches:
    `drop` divides the rate by `factor` and trains until its plateau again (at most `steps` steps more),
    `constant` trains on at the same rate as many steps.

    One record per branch and seed: net, seed, the `curve` of both phases, `drop_at` (the step of the plateau),
    its convergence (stop, at_plateau: both phases of `drop`, the whole run of `constant`; best_at, last_gain,
    trained, half_at: half-way from the drop to the end), and test errors, each the mean over `window`
    measurements in a row (single measurements at a constant rate scatter): `plateau_error` (the last before
    the drop, the same for both branches), `end_error` (the last) and `half_end_error` (those up to `half_at`)."""
    runs = []
    for seed in seeds:
        seed_everything(seed)
        model = build(seed)
        first = StopAtPlateau(plateau)
        before = fit_curve(model, ds, steps, every, batch_size, seed, [first])
        start = convergence.record(first.values, plateau, every, steps, before["diverged_at_step"] is not None)
        drop_at, rate = before["step"][-1], float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        state = model.get_weights(), [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
        plateau_error = mean_test_error(model, first.weights[-window:], test)
        length = steps
        for net, new_rate in (("drop", rate / factor), ("constant", rate)):
            _restore(model, state)
            model.optimizer.learning_rate = new_rate
            watch = StopAtPlateau(plateau if net == "drop" else dataclasses.replace(plateau, stop_early=False))
            after = fit_curve(model, ds, length, every, batch_size, SECOND_PHASE_SEED + seed, [watch])
            length = after["step"][-1]  # the constant branch trains as long as the drop branch
            diverged = before["diverged_at_step"] is not None or after["diverged_at_step"] is not None
            whole = convergence.record(first.values + watch.values, plateau, every, drop_at + length, diverged)
            if net == "drop":
                second = convergence.record(watch.values, plateau, every, steps, diverged)
                whole.update(stop=second["stop"] if start["at_plateau"] else "cap",
                             at_plateau=start["at_plateau"] and second["at_plateau"], last_gain=second["last_gain"])
            half = convergence.half_measurement(len(watch.weights))
            curve = dict(step=before["step"] + [drop_at + step for step in after["step"]],
                         error=before["error"] + after["error"], loss=before["loss"] + after["loss"])
            runs.append(dict(
                net=net, seed=seed, curve=curve, final_error=after["error"][-1],
                diverged_at_step=before["diverged_at_step"] or (after["diverged_at_step"] and
                                                                drop_at + after["diverged_at_step"]),
                drop_at=drop_at, **dict(whole, half_at=drop_at + half * every),
                plateau_error=plateau_error, end_error=mean_test_error(model, watch.weights[-window:], test),
                half_end_error=mean_test_error(model, watch.weights[max(0, half - window):half], test)))
            r = runs[-1]
            print(f"{net} seed {seed}: plateau at step {drop_at}, {r['trained']} steps ({r['stop']}, at plateau "
                  f"{r['at_plateau']}; best at {r['best_at']}), test error {plateau_error:.3f} -> {r['end_error']:.3f}")
    return runs


def fluctuation(run: dict) -> float | None:
    """The held-out error's step-to-step spread after the learning-rate drop: the standard deviation of the
    differences between successive measurements over the second half of the phase after it (at least its
    last 3 measurements), where the drop's own step down is over; None with fewer than 3 measurements."""
    after = [e for step, e in zip(run["curve"]["step"], run["curve"]["error"]) if step > run["drop_at"]]
    tail = after[len(after) // 2:] if len(after) >= 6 else after[-3:]
    return float(np.std(np.diff(tail))) if len(tail) >= 3 else None


def lr_claims(rec, runs: list[dict], window: int, margin_pp: float, min_calming: float) -> None:
    """Seed 000: dividing the learning rate by 10 after a plateau gives a last step down in error, which
    training on at the same rate does not (claims about the trained nets: every run at its plateau, the same
    verdict half-way from the drop to the end), and the held-out error fluctuates less after it (a claim about
    training, on the same steps of both branches)."""
    def difference(a, column_a, b, column_b):
        return paired_difference(per_seed(runs, column_a, net=a), per_seed(runs, column_b, net=b), scale=100)

    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    source = f"{SOURCE_SEED}, 'Reducing the learning rate'"
    rec.claim("tricks.lr_drop.step_down", f"Dividing the learning rate by 10 after the held-out error's plateau "
              f"lowers the test error (mean of {window} measurements, at the next plateau minus before the drop)",
              "< 0", difference("drop", "end_error", "drop", "plateau_error"), "pp", below(-margin_pp, **effect),
              source=source, evidence=evidence(runs, half=difference("drop", "half_end_error", "drop", "plateau_error"),
                                               net="drop"))
    rec.claim("tricks.lr_drop.beats_constant", "... more than training on at the same rate as long does (end of "
              "training, dropped minus constant rate)", "< 0", difference("drop", "end_error", "constant", "end_error"),
              "pp", below(-margin_pp, **effect), source=source,
              evidence=evidence(runs, half=difference("drop", "half_end_error", "constant", "half_end_error"),
                                net=["drop", "constant"]))
    spread = {net: [fluctuation(r) for r in runs if r["net"] == net] for net in ("constant", "drop")}
    measured = None if None in spread["drop"] else paired_ratio(spread["constant"], spread["drop"])
    rec.claim("tricks.lr_drop.calmer", "Lowering the learning rate reduces the random fluctuations of the error "
              "(step-to-step spread of the held-out error after the drop, constant rate over dropped, the same steps)",
              "> 1", measured, "x",
              above(min_calming, why=f"the minimum effect is {min_calming:g}x"),
              source=f"{SOURCE_SEED} ('Turning down the learning rate will reduce the random fluctuations in the "
                     "error due to different gradients on different minibatches')",
              evidence=evidence(runs, about="training", net=["drop", "constant"]))


# --- figures ---------------------------------------------------------------------------------------------------


def plot_bn(runs: list[dict], scale_table: pd.DataFrame):
    """Held-out error per step: the ReLU nets without BN, with BN and with BN at the higher rate (the baseline's
    best as a line), and the deep sigmoid net without and with BN; the held-out error after a few steps against
    the initial weights' scale, without and with BN."""
    fig, axes = plots.new_figure(3)
    curves = curves_table(runs, ("net",))
    for ax, nets, title in ((axes[0], BN_NETS, "ReLU conv net"), (axes[1], SIGMOID_NETS, "deep sigmoid conv net")):
        plots.plot_runs(ax, curves[curves.net.isin(nets)], "step", "net", "error")
        ax.set(title=title, xlabel="step", ylabel="held-out error")
        ax.legend(fontsize=8)
    target = np.mean([r["target_error"] for r in runs if r["net"] == "baseline"])
    axes[0].axhline(target, color="grey", linestyle=":", linewidth=1)
    axes[1].axhline(CHANCE_ERROR, color="grey", linestyle=":", linewidth=1)
    for net, group in scale_table.groupby("net", sort=False):
        means = group.groupby("scale").error.mean()
        axes[2].semilogx(means.index, means.values, "o-", label=net)
        axes[2].plot(group.scale, group.error, "k.", markersize=4)
    axes[2].set(title="initial weights scaled", xlabel="scale of the initial weights", ylabel="held-out error")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_regularisers(dropout_runs: pd.DataFrame, augment_runs: pd.DataFrame, lr_runs: list[dict]):
    """Training and test error of the dropout nets and of the augmentation nets (with the flip-averaged test
    error), means over seeds as bars and the seeds as points; the held-out error per step at a constant rate and
    with the drop (each seed's drop as a line)."""
    fig, axes = plots.new_figure(3)
    errors = ["train_error", "test_error"]
    for ax, runs, columns, title in (
            (axes[0], dropout_runs, errors, "dropout and max-norm (MLP)"),
            (axes[1], augment_runs, [*errors, "test_error_flip"], "augmentation (conv net, small training set)")):
        nets = list(dict.fromkeys(runs.net))
        width = 0.8 / len(columns)
        for i, column in enumerate(columns):
            offset = (i - (len(columns) - 1) / 2) * width
            means = runs.groupby("net", sort=False)[column].mean().reindex(nets)
            ax.bar(np.arange(len(nets)) + offset, 100 * means, width=width, alpha=0.7,
                   label=column.replace("_", " ").replace("flip", "(flip-averaged)"))
            ax.plot([nets.index(n) + offset for n in runs.net], 100 * runs[column], "k.", markersize=4)
        ax.set_xticks(range(len(nets)), nets)
        ax.set(title=title, ylabel="error (%)")
        ax.legend(fontsize=8)
    plots.plot_runs(axes[2], curves_table(lr_runs, ("net",)), "step", "net", "error")
    for step in sorted({r["drop_at"] for r in lr_runs}):
        axes[2].axvline(step, color="grey", linestyle=":", linewidth=1)
    axes[2].set(title="learning rate / 10 after the plateau", xlabel="step", ylabel="held-out error")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
