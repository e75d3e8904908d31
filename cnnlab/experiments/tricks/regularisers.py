"""07's regularisers: dropout and max-norm on Srivastava et al.'s MLP (weight scaling against averaged dropout
masks, BN as a regulariser), augmentation with test-time flipping; the figure of the regularisers and the
learning-rate drop."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import augment, plots
from cnnlab.compare import below, not_above, paired_difference, per_seed
from cnnlab.convergence import evidence
from cnnlab.experiments.tricks.common import (DROPOUT_EFFECT_PP, MAX_NORM_EFFECT_PP, SOURCE_BN, SOURCE_DROPOUT,
                                              SOURCE_SEED)
from cnnlab.models import conv_stack, plain_mlp
from cnnlab.models.convnet import stages_layout
from cnnlab.train import accuracy, compile_adam, compile_sgd, curves_table, run_seeds


def dropout_builds(depth: int, width: int, dropout: float, input_dropout: float, max_norm: float,
                   learning_rate: float) -> dict:
    """net -> build(seed): Srivastava et al.'s ReLU MLP without dropout, with dropout, with dropout and
    max-norm, and with BN instead (BN as a regulariser), trained by Adam (by SGD the dropout nets are still far
    from fitting their training images within a quick budget)."""
    def build(seed, **regularisers):
        return compile_adam(plain_mlp(depth, width=width, seed=seed, **regularisers), learning_rate)

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


def dropout_runs(seeds, ds, test, width: int, dropout: float, input_dropout: float, max_norm: float,
                 learning_rate: float, epochs: int, batch_size: int, masks: int, plateau) -> pd.DataFrame:
    """Every net of `dropout_builds` (three hidden layers of `width`) from each seed, trained on `ds` to its
    plateau (at most `epochs`), described by `with_mask_averaging`: one row per run (`run_seeds`')."""
    runs, _ = run_seeds(dropout_builds(3, width, dropout, input_dropout, max_norm, learning_rate), seeds, ds, epochs,
                        {}, batch_size, keys=("net",),
                        describe=with_mask_averaging((ds.x_train, ds.y_train), test, masks), plateau=plateau)
    return runs


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


def augment_runs(seeds, ds, test, stages, shift: float, learning_rate: float, momentum: float, epochs: int,
                 batch_size: int, plateau) -> pd.DataFrame:
    """The plain and the augmented conv net from each seed, trained on `ds` to their plateau (at most `epochs`),
    described by `with_flip_averaging`: one row per run (`run_seeds`')."""
    runs, _ = run_seeds(augment_builds(stages, shift, learning_rate, momentum), seeds, ds, epochs, {}, batch_size,
                        keys=("net",), describe=with_flip_averaging((ds.x_train, ds.y_train), test), plateau=plateau)
    return runs


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
