"""Experiment 07: the tricks of the trade. Batch normalisation (Ioffe & Szegedy 2015: the same accuracy in
fewer steps, a higher learning rate, and a deep sigmoid net that trains only with it), dropout and max-norm
(Srivastava et al. 2014), data augmentation with test-time flipping, and dividing the learning rate by 10
after a plateau (lecture seed 000)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import augment, probe
from cnnlab.compare import above, below, not_above, paired_difference, paired_ratio, per_seed
from cnnlab.models import conv_stack, plain_mlp
from cnnlab.models.convnet import stages_layout
from cnnlab.rules import at_least
from cnnlab.train import accuracy, compile_adam, compile_sgd, curves_table, steps_to, trailing_mean

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


def steps_to_baseline_best(runs: list[dict], smooth: int) -> None:
    """Add to every ReLU run `best_error` (the lowest of its test errors, each the trailing mean of `smooth`
    measurements, so that one lucky measurement is no level reached), `target_error` (the baseline's best of its
    seed) and `steps_to_target` (the first step at which its smoothed error reached the target; None: never)."""
    relu = [r for r in runs if r["net"] in BN_NETS]
    for r in relu:
        r["best_error"] = float(trailing_mean(r["curve"]["error"], smooth).min())
    best = {r["seed"]: r["best_error"] for r in relu if r["net"] == "baseline"}
    for r in relu:
        r.update(target_error=best[r["seed"]], steps_to_target=steps_to(r["curve"], best[r["seed"]], smooth=smooth))


def bn_claims(rec, runs: list[dict], steps: int, factor: float, min_speedup: float, margin_pp: float) -> None:
    """Ioffe & Szegedy: BN reaches the baseline's best accuracy in fewer steps, more so at a higher learning
    rate; a deep sigmoid net trains only with BN."""
    def steps_of(net):
        return per_seed(runs, "steps_to_target", net=net)

    effect = dict(why=f"a speed-up of {min_speedup}x or more counts as the effect; a net that never reached the "
                      f"target counts as {steps} steps (a bound)")
    rec.claim("tricks.bn.fewer_steps", "BN at the same learning rate reaches the baseline's best test error in "
              "fewer steps (baseline's steps to its best / BN's steps to it)",
              "2.3x (Inception 31.0M steps / BN-Baseline 13.3M)",
              paired_ratio(steps_of("baseline"), steps_of("bn"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS)
    rec.claim("tricks.bn.higher_rate", f"BN with a {factor:g}x learning rate reaches it in fewer steps still "
              "(baseline's steps / BN-x5's)",
              "14.8x (Inception 31.0M steps / BN-x5 2.1M; BN-x5 also has the accelerated-BN changes of Sec. 4.2.1)",
              paired_ratio(steps_of("baseline"), steps_of("bn_x5"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS)
    rec.claim("tricks.bn.higher_rate_helps", f"The {factor:g}x learning rate, which BN allows, is faster than BN at "
              "the baseline's rate (BN's steps / BN-x5's)", "> 1 (6.3x: BN-Baseline 13.3M steps / BN-x5 2.1M)",
              paired_ratio(steps_of("bn"), steps_of("bn_x5"), cap=steps), "x", above(min_speedup, **effect),
              source=SOURCE_BN_STEPS,
              note="Inception: BN-Baseline 13.3M steps, BN-x5 2.1M to the same accuracy")
    sigmoid = per_seed(runs, "final_error", net="sigmoid")
    rec.claim("tricks.bn.sigmoid_without", "A deep sigmoid net without BN stays near chance (its lowest final test "
              f"error over the seeds; chance {CHANCE_ERROR})", "about 0.9 (accuracy < 0.1%)", min(sigmoid), "error",
              at_least(0.8, partial=0.6, why="near chance; partial: most of the way"), source=f"{SOURCE_BN}, Sec. "
              "4.2.2", note="per seed " + ", ".join(f"{e:.3f}" for e in sigmoid))
    rec.claim("tricks.bn.sigmoid_with", "With BN the same sigmoid net trains (final test error, BN minus without)",
              "< 0 (69.8% accuracy with BN)", paired_difference(per_seed(runs, "final_error", net="sigmoid_bn"),
                                                                sigmoid, scale=100), "pp",
              below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"), source=f"{SOURCE_BN}, Sec. 4.2.2")


# --- dropout and max-norm --------------------------------------------------------------------------------------


def dropout_builds(depth: int, width: int, dropout: float, input_dropout: float, max_norm: float,
                   learning_rate: float) -> dict:
    """net -> build(seed): Srivastava et al.'s ReLU MLP without dropout, with dropout, and with dropout and
    max-norm, trained by Adam (by SGD the dropout nets are still far from fitting their training images within
    a quick budget)."""
    def build(seed, **regularisers):
        return compile_adam(plain_mlp(depth, width, seed=seed, **regularisers), learning_rate)

    return {"plain": lambda s: build(s),
            "dropout": lambda s: build(s, dropout=dropout, input_dropout=input_dropout),
            "dropout_maxnorm": lambda s: build(s, dropout=dropout, input_dropout=input_dropout, max_norm=max_norm)}


def train_and_test_error(train, test):
    """`run_seeds`' describe hook: the error on the training images (in inference mode), on the test images,
    and the gap between them."""
    def describe(model, row):
        found = dict(train_error=1.0 - accuracy(model, *train), test_error=1.0 - accuracy(model, *test))
        return dict(found, gap=found["test_error"] - found["train_error"])

    return describe


def dropout_claims(rec, runs: pd.DataFrame, margin_pp: float) -> None:
    """Srivastava et al.: dropout lowers the test error and the train-test gap; max-norm lowers it further."""
    def difference(a, b, column="test_error"):
        return paired_difference(per_seed(runs, column, net=a), per_seed(runs, column, net=b), scale=100)

    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    table = f"{SOURCE_DROPOUT}, Table 2 (MNIST)"
    rec.claim("tricks.dropout.test_error", "Dropout lowers the test error (dropout minus without, test error)",
              "< 0 (-0.35 pp between different nets: 1.60% -> 1.25%)", difference("dropout", "plain"), "pp",
              below(-DROPOUT_EFFECT_PP, why=f"the minimum effect is {DROPOUT_EFFECT_PP} pp, under the paper's 0.35"),
              source=f"{table}: standard NN 2x800 (Simard et al.) 1.60%, dropout NN 3x1024 logistic 1.35%, dropout NN "
                     "3x1024 ReLU 1.25%; the table has no 3x1024 ReLU net without dropout")
    rec.claim("tricks.dropout.gap", "Dropout narrows the gap between training and test error (gap with dropout "
              "minus without)", "< 0", difference("dropout", "plain", "gap"), "pp", below(-margin_pp, **effect),
              source=f"{SOURCE_DROPOUT}, Sec. 7.1")
    rec.claim("tricks.dropout.max_norm", "Max-norm on top of dropout lowers the test error further (with minus "
              "without max-norm)", "-0.19 pp (1.25% -> 1.06%)", difference("dropout_maxnorm", "dropout"), "pp",
              below(-MAX_NORM_EFFECT_PP, why=f"the minimum effect is {MAX_NORM_EFFECT_PP} pp, under the paper's 0.19"),
              source=f"{table}: dropout NN 3x1024 ReLU 1.25%, dropout + max-norm 3x1024 ReLU 1.06%")


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
    too helps."""
    def column(net, name):
        return per_seed(runs, name, net=net)

    source = f"{SOURCE_SEED}, 'Data augmentation'"
    rec.claim("tricks.augment.gap", f"Random flips and shifts narrow the train-test gap on {n_train:,} training "
              "images (gap augmented minus plain)", "< 0",
              paired_difference(column("augmented", "gap"), column("plain", "gap"), scale=100), "pp",
              below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"), source=source)
    rec.claim("tricks.augment.test_not_worse", "... without a higher test error (augmented minus plain)", "<= 0",
              paired_difference(column("augmented", "test_error"), column("plain", "test_error"), scale=100), "pp",
              not_above(margin_pp, why=f"up to {margin_pp} pp higher is within noise"), source=source)
    rec.claim("tricks.augment.test_flip", "Flipping at test time too helps the augmented net (error averaged over "
              "the image and its mirror image minus the image's)", "< 0",
              paired_difference(column("augmented", "test_error_flip"), column("augmented", "test_error"), scale=100),
              "pp", below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"),
              source=f"{SOURCE_SEED}, 'During testing'")


# --- learning-rate drop ----------------------------------------------------------------------------------------


def lr_builds(stages, learning_rate: float, drop_step: int, momentum: float) -> dict:
    """net -> build(seed): the conv net of `stages` by SGD at a constant rate, and the same with the rate divided
    by 10 from `drop_step` on."""
    layout = stages_layout(stages)
    dropped = keras.optimizers.schedules.PiecewiseConstantDecay([drop_step], [learning_rate, learning_rate / 10])

    def build(seed, rate):
        return compile_sgd(conv_stack(layout, seed=seed, init="he_normal"), rate, momentum)

    return {"constant": lambda s: build(s, learning_rate), "drop": lambda s: build(s, dropped)}


def plateau_and_end(runs: list[dict], drop_step: int, window: int) -> None:
    """Add to every run the mean test error of its last `window` measurements up to `drop_step` (the plateau)
    and of its last `window` measurements (the end)."""
    for r in runs:
        steps, errors = np.asarray(r["curve"]["step"]), np.asarray(r["curve"]["error"])
        r.update(plateau_error=float(errors[steps <= drop_step][-window:].mean()),
                 end_error=float(errors[-window:].mean()))


def lr_claims(rec, runs: list[dict], window: int, margin_pp: float) -> None:
    """Seed 000: dividing the learning rate by 10 after a plateau gives a last step down in error, which
    training on at the same rate does not."""
    def column(net, name):
        return per_seed(runs, name, net=net)

    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    source = f"{SOURCE_SEED}, 'Reducing the learning rate'"
    rec.claim("tricks.lr_drop.step_down", f"Dividing the learning rate by 10 after the plateau lowers the test "
              f"error (mean of the last {window} measurements, after minus before the drop)", "< 0",
              paired_difference(column("drop", "end_error"), column("drop", "plateau_error"), scale=100), "pp",
              below(-margin_pp, **effect), source=source)
    rec.claim("tricks.lr_drop.beats_constant", "... more than training on at the same rate does (end of training, "
              "dropped minus constant rate)", "< 0",
              paired_difference(column("drop", "end_error"), column("constant", "end_error"), scale=100), "pp",
              below(-margin_pp, **effect), source=source)


# --- figures ---------------------------------------------------------------------------------------------------


def plot_bn(runs: list[dict]):
    """Test error per step: the ReLU nets without BN, with BN and with BN at the higher rate (the baseline's
    best as a line), and the deep sigmoid net without and with BN."""
    fig, axes = probe.new_figure(2)
    curves = curves_table(runs, ("net",))
    for ax, nets, title in ((axes[0], BN_NETS, "ReLU conv net"), (axes[1], SIGMOID_NETS, "deep sigmoid conv net")):
        probe.plot_runs(ax, curves[curves.net.isin(nets)], "step", "net", "error")
        ax.set(title=title, xlabel="step", ylabel="test error")
        ax.legend(fontsize=8)
    target = np.mean([r["target_error"] for r in runs if r["net"] == "baseline"])
    axes[0].axhline(target, color="grey", linestyle=":", linewidth=1)
    axes[1].axhline(CHANCE_ERROR, color="grey", linestyle=":", linewidth=1)
    fig.tight_layout()
    return fig


def plot_regularisers(dropout_runs: pd.DataFrame, augment_runs: pd.DataFrame, lr_runs: list[dict], drop_step: int):
    """Training and test error of the dropout nets and of the augmentation nets (with the flip-averaged test
    error), means over seeds as bars and the seeds as points; the test error per step at a constant rate and
    with the drop."""
    fig, axes = probe.new_figure(3)
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
    probe.plot_runs(axes[2], curves_table(lr_runs, ("net",)), "step", "net", "error")
    axes[2].axvline(drop_step, color="grey", linestyle=":", linewidth=1)
    axes[2].set(title="learning rate / 10 after the plateau", xlabel="step", ylabel="test error")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
