"""Experiment 04: VGG's depth table (Simonyan & Zisserman 2015, Table 3) at a reduced width on Fashion-MNIST:
does depth help, does LRN, do 1x1 convs, does one 5x5 do as well as two 3x3? And model averaging: do the
seeds' nets of one configuration, their class probabilities averaged, beat a single net?"""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from cnnlab import backend, data, plots, sweep
from cnnlab.compare import above, below, not_above, not_below, over_seeds, paired_difference, per_seed, summarise
from cnnlab.convergence import evidence
from cnnlab.models.vgg import PAPER_TOP1_ERROR, vgg, weight_layers
from cnnlab.train import compile_adam, histories_table, run_seeds

SOURCE = "Simonyan & Zisserman 2015, Table 3"


def builds(configs, width_divisor: int, fc_units: int, dropout: float, init: str, learning_rate: float) -> dict:
    """config -> build(seed): the VGG configuration for 32x32x1 inputs and 10 classes (logits), compiled with
    Adam (the seed acts through `seed_everything`, which `run_seeds` calls before each build)."""

    def trainable(config):
        return compile_adam(vgg(config, classes=10, classifier_activation=None, input_shape=(32, 32, 1),
                                width_divisor=width_divisor, fc_units=fc_units, dropout=dropout, init=init),
                            learning_rate)

    return {c: lambda seed, c=c: trainable(c) for c in configs}


def check(params: dict) -> None:
    """The rules between the notebook's parameters, which the runner applies before a kernel starts."""
    if "A" not in params["sweep_configs"]:
        raise ValueError(f"sweep_configs must hold A, the net the deeper ones are compared with; got "
                         f"{params['sweep_configs']}")


def depth_helps_rule(margin_pp: float):
    """The rule of "depth helps" (the deeper net's error minus A's), for the main comparison and the sweep."""
    return below(-margin_pp, why=f"the minimum effect is {margin_pp} pp")


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: weight layers, parameters, mean and sd of train and test accuracy, the test error
    in percent beside the paper's ImageNet top-1 error, the epochs trained (mean), the runs at plateau and the
    seconds per epoch."""
    trained = summarise(runs, "config", ["train_acc", "test_acc"], first=["weight_layers", "params"])
    trained["test_error_pct"] = 100 * (1 - trained.test_acc)
    by_config = runs.groupby("config", sort=False)
    trained["epochs"] = by_config.trained.mean().to_numpy()
    trained["at_plateau"] = by_config.at_plateau.sum().to_numpy()
    trained["s_per_epoch"] = by_config.s_per_epoch.mean().to_numpy()
    trained["paper_top1_error_pct"] = trained.config.map(PAPER_TOP1_ERROR)
    return trained


def claims(rec, runs: pd.DataFrame, margin_pp: float) -> None:
    """Table 3's comparisons on the per-seed test errors of the trained nets, each decided with a margin of
    `margin_pp`, at plateau and at half of each run."""
    configs = set(runs.config)

    def difference(a, b, column="test_acc"):
        """Per seed, the test error of `a` minus that of `b`, in percentage points."""
        error_a, error_b = (1.0 - np.array(per_seed(runs, column, config=c)) for c in (a, b))
        return paired_difference(error_a, error_b, scale=100)

    def trained(a, b):
        return evidence(runs, half=difference(a, b, "half_test_acc"), config=[a, b])

    def paper_diff(a, b):
        return round(PAPER_TOP1_ERROR[a] - PAPER_TOP1_ERROR[b], 1)

    if {"A", "A-LRN"} <= configs:
        rec.claim("vgg.lrn_no_help", "Local response normalisation does not improve A (A-LRN's error minus A's)",
                  paper_diff("A-LRN", "A"), difference("A-LRN", "A"), "pp",
                  not_below(-margin_pp, why=f"an improvement of more than {margin_pp} pp would count"), source=SOURCE,
                  evidence=trained("A-LRN", "A"))
    for deep in ("D", "E"):
        if {"A", deep} <= configs:
            rec.claim(f"vgg.depth_not_worse.{deep}", f"Depth does not hurt: {deep} ({weight_layers(deep)} layers) is "
                      f"not worse than A ({weight_layers('A')}) ({deep}'s error minus A's)", paper_diff(deep, "A"),
                      difference(deep, "A"), "pp",
                      not_above(margin_pp, why=f"a harm of up to {margin_pp} pp is tolerated"), source=SOURCE,
                      evidence=trained(deep, "A"))
            rec.claim(f"vgg.depth_better.{deep}", f"Depth helps: {deep} has a lower error than A ({deep}'s error "
                      "minus A's)", paper_diff(deep, "A"), difference(deep, "A"), "pp",
                      depth_helps_rule(margin_pp), source=SOURCE, evidence=trained(deep, "A"))
    for worse, better, what in [("C", "D", "1x1 convs (C) vs 3x3 in the same places (D)"),
                                ("E", "D", "19 layers (E) vs 16 (D)")]:
        if {worse, better} <= configs:
            rec.claim(f"vgg.{worse}_vs_{better}", f"{what}: {worse}'s error minus {better}'s",
                      paper_diff(worse, better), difference(worse, better), "pp", None, source=SOURCE,
                      note="reported, not judged", evidence=trained(worse, better))
    if {"B", "B-5x5"} <= configs:
        params = runs.groupby("config").params.first()
        rec.claim("vgg.shallow_5x5_worse", "B with each pair of 3x3 convs replaced by one 5x5 has a higher error "
                  "than B (B-5x5's error minus B's)", "> 0 (paper: 7% higher top-1)", difference("B-5x5", "B"), "pp",
                  above(margin_pp, why=f"the minimum effect is {margin_pp} pp"),
                  source="Simonyan & Zisserman 2015, Section 4.1", evidence=trained("B-5x5", "B"),
                  note=f"B-5x5 has {weight_layers('B-5x5')} weight layers and {int(params['B-5x5']):,} parameters at "
                  f"this width, B {int(params['B']):,}")
    diverged = runs[runs.diverged_at_step.notna()]
    rec.metric("diverged_runs", diverged[["config", "seed", "diverged_at_step"]].to_dict("records"))


class Posteriors:
    """`run_seeds`' describe hook: the test accuracy (`test_acc`) of each run and its class probabilities on the
    test images (`posteriors`), which `keep` takes out of the runs table by (config, seed, at half the run) for
    model averaging. The hook itself keeps nothing: it may run in a worker process (`cnnlab.tasks`)."""

    def __init__(self, x_test, y_test):
        self.x, self.y, self.kept = x_test, np.asarray(y_test), {}

    def __call__(self, model, row) -> dict:
        probabilities = backend.numpy(keras.ops.softmax(model.predict(self.x, batch_size=1000, verbose=0)))
        return dict(test_acc=float(np.mean(np.argmax(probabilities, -1) == self.y)), posteriors=probabilities)

    def keep(self, runs: pd.DataFrame) -> pd.DataFrame:
        """`runs` (`run_seeds`' rows) without their `posteriors` columns, whose arrays are kept here (a run
        without a measurement at half its length has none there)."""
        columns = [c for c in ("posteriors", "half_posteriors") if c in runs]
        for row in runs.to_dict("records"):
            for column in columns:
                if isinstance(row[column], np.ndarray):
                    self.kept[(row["config"], row["seed"], column.startswith("half_"))] = row[column]
        return runs.drop(columns=columns)

    def averaged(self, at_half: bool = False) -> pd.DataFrame:
        """Per configuration and seed, the single net's test error and that of its configuration's nets of
        every seed with their class probabilities averaged (`ensemble_error`), in percent."""
        rows = []
        for config in dict.fromkeys(c for c, _, half in self.kept if half == at_half):
            kept = {seed: p for (c, seed, half), p in self.kept.items() if c == config and half == at_half}
            ensemble = np.mean(list(kept.values()), axis=0)
            ensemble_error = 100 * float(np.mean(np.argmax(ensemble, -1) != self.y))
            rows += [dict(config=config, seed=seed, nets=len(kept), single_error=100 * float(
                np.mean(np.argmax(p, -1) != self.y)), ensemble_error=ensemble_error) for seed, p in kept.items()]
        return pd.DataFrame(rows)


def averaging_claim(rec, runs: pd.DataFrame, posteriors: Posteriors, margin_pp: float) -> pd.DataFrame:
    """Model averaging over random initialisations: per seed, the averaged nets' test error minus that seed's
    single net, the mean over the configurations (a claim about the trained nets: at plateau, and again at half
    of each run). Returns the per-configuration table."""
    def per_seed_gain(table):
        return over_seeds((table.ensemble_error - table.single_error).groupby(table.seed, sort=False).mean().to_numpy())

    full, half = posteriors.averaged(), posteriors.averaged(at_half=True)
    table = full.groupby("config", sort=False).agg(nets=("nets", "first"), ensemble_error=("ensemble_error", "first"),
                                                   mean_single_error=("single_error", "mean"),
                                                   best_single_error=("single_error", "min")).reset_index()
    rec.claim("vgg.model_averaging", f"Model averaging helps: the {int(table.nets.iloc[0])} nets of one configuration "
              "(random initialisations), their class probabilities averaged, have a lower test error than a single "
              "net (averaged nets minus the seed's net, mean over the configurations)", "< 0",
              per_seed_gain(full), "pp", below(-margin_pp, why=f"the minimum effect is {margin_pp} pp"),
              source="lecture seed 002, Clarifai ('Model averaging leads to improvement (random initialization).'); "
                     "Zeiler & Fergus 2014, Table 2; Simonyan & Zisserman 2015, Sec. 4.4",
              note=f"over {len(table)} configurations; the averaged nets beat the configuration's best single net in "
                   f"{int((table.ensemble_error < table.best_single_error).sum())} of them",
              evidence=evidence(runs, half=per_seed_gain(half)))
    return table


def plot(trained: pd.DataFrame, histories: dict):
    """Test error against weight layers beside the paper's top-1 error, and every run's training loss."""
    fig, axes = plots.new_figure(2)
    ax = axes[0]
    ax.errorbar(trained.weight_layers, trained.test_error_pct, yerr=100 * trained.test_acc_sd, fmt="o", color="C0",
                capsize=3, label="Fashion-MNIST (this run)")
    for r in trained.itertuples():
        ax.annotate(r.config, (r.weight_layers, r.test_error_pct), textcoords="offset points", xytext=(5, 3),
                    fontsize=8)
    ax.set(xlabel="weight layers", title="error vs depth")
    ax.set_ylabel("test error, Fashion-MNIST (%)", color="C0")
    paper = trained.dropna(subset=["paper_top1_error_pct"])
    twin = ax.twinx()
    twin.plot(paper.weight_layers, paper.paper_top1_error_pct, "s", color="C1", label="ImageNet top-1 (paper)")
    twin.set_ylabel("ImageNet top-1 error, paper (%)", color="C1")
    plots.plot_runs(axes[1], histories_table(histories, ("config",), "loss"), "epoch", "config", "loss")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set(xlabel="epoch", ylabel="training loss", title="training loss")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- the sweep: at which budget does depth start to help? -----------------------------------------------------


def monitored(n_train: int, test_images: int, seed: int):
    """Fashion-MNIST as the experiment prepares it with `n_train` training images, `test_images` test images
    measured after every epoch (the sweep's budget axis)."""
    fmnist = data.prepare(n_train=n_train, pad=32, norm="standard", seed=seed)
    x_test, y_test = data.subset(fmnist.x_test, fmnist.y_test, test_images, seed)
    return replace(fmnist, x_val=x_test, y_val=y_test)


def sweep_budget(builds: dict, sizes, seeds, epochs: int, test_images: int, batch_size: int,
                 margin_pp: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A against every deeper configuration of `builds` (config -> build(seed)) over the training-set sizes
    `sizes` and every epoch up to `epochs`: per condition, the deeper net's test error minus A's, decided by
    the rule of "depth helps". Returns the sweep table and the test-accuracy curves."""
    rows, curves = [], []
    for i, n_train in enumerate(sizes, 1):
        print(f"condition {i} of {len(sizes)}: {n_train} training images, {epochs} epochs")
        fmnist = monitored(n_train, test_images, seeds[0])
        _, histories = run_seeds(builds, seeds, fmnist, epochs, {}, batch_size)
        curve = histories_table(histories, ("config",), "val_accuracy").assign(n_train=n_train)
        curves.append(curve)
        steps_per_epoch = -(-n_train // batch_size)
        for deep in [c for c in builds if c != "A"]:
            for row in sweep.by_epoch(curve, "config", "A", deep, dict(config=deep, n_train=n_train),
                                      depth_helps_rule(margin_pp)):
                rows.append(dict(row, steps=row["epochs"] * steps_per_epoch))
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("epochs") + 1, "steps", table.pop("steps"))
    return table, pd.concat(curves, ignore_index=True)


def sweep_claims(rec, table: pd.DataFrame, margin_pp: float) -> None:
    """Per deeper configuration: the budgets (training images x epochs) at which it beats A, and how its error
    minus A's moves with the epochs and with the training images."""
    for deep, rows in table.groupby("config", sort=False):
        sweep.holds_claim(rec, f"vgg.holds_under.depth_better.{deep}", f"Budgets (training images x epochs) at "
                          f"which {deep} has a lower error than A", rows, ["n_train", "epochs"],
                          depth_helps_rule(margin_pp), "pp",
                          source=SOURCE, main=f"vgg.depth_better.{deep} (margin {margin_pp} pp)")
        for axis, what in [("epochs", "epoch"), ("n_train", "training-set size")]:
            sweep.trend_claim(rec, f"vgg.trend.{deep}.{axis}", f"{deep}'s error minus A's at the last swept {what} "
                              "minus at the first", rows, axis, "pp", source="CLAIMS 04")
