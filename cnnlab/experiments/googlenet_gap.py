"""Experiment 05: GoogLeNet's global average pooling instead of fully connected layers (Szegedy et al. 2015,
Section 5; Lin et al. 2014): the parameters a GAP head saves, and whether it is as accurate and overfits less."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from cnnlab import backend, plots, sweep
from cnnlab.compare import above, not_below, paired_difference, per_seed, summarise
from cnnlab.convergence import evidence
from cnnlab.models.convnet import conv_stack, stages_layout
from cnnlab.models.googlenet import googlenet, mini_googlenet
from cnnlab.models.heads import HEADS, formula_params, head_params, with_head
from cnnlab.rules import at_least, exact
from cnnlab.train import compile_adam, histories_table, run_seeds

SOURCES = "Szegedy et al. 2015, Section 5; Lin et al. 2014, Sec. 4.6 (text, conventional CNN on CIFAR-10)"


def backbones(widths, deeper_widths, googlenet_divisor: int) -> dict:
    """name -> build(): the small conv backbone, a deeper one and the mini-GoogLeNet, each ending in a feature map."""
    return {
        "convnet": lambda: convnet(widths),
        "convnet_deeper": lambda: convnet(deeper_widths),
        "mini_googlenet": lambda: mini_googlenet(divisor=googlenet_divisor),
    }


def convnet(widths) -> keras.Model:
    """The conv backbone: one 3x3 conv per width, a 2x2 pool between them, ending in the last feature map."""
    return conv_stack(stages_layout(widths, pool_after_last=False), include_top=False, name="convnet")


def head_table(backbones: dict, head_args: dict) -> pd.DataFrame:
    """Every head on every backbone: its parameters counted by Keras beside the formula's, and the model's."""
    rows = []
    for name, build in backbones.items():
        backbone = build()
        h, w, c = backbone.output.shape[1:]
        for head in HEADS:
            model = with_head(backbone, head, **head_args)
            rows.append(dict(backbone=name, feature_map=f"{h}x{w}x{c}", head=head, head_params=head_params(model),
                             formula=formula_params(head, h, w, c, head_args["classes"], head_args["fc_units"]),
                             model_params=model.count_params()))
        backend.clear_session()
    return pd.DataFrame(rows)


def parameter_claims(rec, table: pd.DataFrame, fc_units: int) -> None:
    """The formulas hold; the GAP head is hundreds of times smaller; at full size an FC head would hold most
    of GoogLeNet's parameters. The full-size FC head (210M weights) is counted by the formula checked here,
    not built."""
    rec.claim("gap.head_params.formula", "Every head's parameter count equals its formula", 0,
              int((table.head_params != table.formula).sum()), "mismatches", exact(0, why="counted by Keras"),
              source="Szegedy et al. 2015; Lin et al. 2014")
    main = table[table.backbone == "convnet"].set_index("head")
    rec.claim("gap.head_params.ratio", "The GAP head has hundreds of times fewer parameters than the FC head "
              f"({main.feature_map['fc']} feature map, FC {fc_units})", "> 100",
              main.head_params["fc"] / main.head_params["gap"], "x", at_least(100, why="hundreds of times"),
              source="Szegedy et al. 2015, Section 5",
              note=f"FC head {main.head_params['fc']:,}, GAP head {main.head_params['gap']:,}")
    rec.metric("whole_model_ratio_convnet", main.model_params["fc"] / main.model_params["gap"])
    full = googlenet()
    h, w, c = full.get_layer("inception_5b_concat").output.shape[1:]
    gap_params = full.count_params()
    fc_head = formula_params("fc", h, w, c, 1000, 4096)
    with_fc = gap_params - formula_params("gap", h, w, c, 1000) + fc_head
    del full
    backend.clear_session()
    rec.metric("googlenet_params", dict(gap_head=gap_params, fc_head=with_fc))
    rec.claim("gap.googlenet.fc_share", "At full size, an FC head would hold most of GoogLeNet's parameters: the "
              "reduction comes from dropping the FC layers (FC head's share of an FC-head GoogLeNet)", "> 0.5",
              fc_head / with_fc, "share", at_least(0.5, why="most of the parameters"), source="lecture seed 003",
              note=f"GoogLeNet {gap_params:,} parameters with its GAP-linear head, {with_fc:,} with "
              f"Flatten-FC(4096)-FC(1000) ({with_fc / gap_params:.0f}x)")


def builds(plan, backbones: dict, head_args: dict, learning_rate: float) -> dict:
    """(backbone, head) -> build(seed): the head on the backbone, compiled with Adam on logits."""

    def trainable(backbone, head):
        return compile_adam(with_head(backbones[backbone](), head, **head_args), learning_rate)

    return {(b, h): lambda seed, b=b, h=h: trainable(b, h) for b, h in plan}


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per backbone and head: parameters, mean and sd of train and test accuracy and their gap, the epochs
    trained (mean), the runs at plateau, s per epoch."""
    trained = summarise(runs, ["backbone", "head"], ["train_acc", "test_acc", "train_test_gap"],
                        first=["head_params", "params"])
    by_net = runs.groupby(["backbone", "head"], sort=False)
    trained["epochs"] = by_net.trained.mean().to_numpy()
    trained["at_plateau"] = by_net.at_plateau.sum().to_numpy()
    trained["s_per_epoch"] = by_net.s_per_epoch.mean().to_numpy()
    return trained


def gap_rule(margin_pp: float):
    """The rule of "the GAP head is at least as accurate as the FC head" (GAP minus FC), for the main
    comparison and the sweep."""
    return not_below(-margin_pp, why=f"a loss of up to {margin_pp} pp is tolerated")


def accuracy_claims(rec, runs: pd.DataFrame, margin_pp: float, budget: str) -> None:
    """GAP (and NiN) at least as accurate as FC; FC overfits more; dropout helps FC: per-seed differences
    in percentage points with a margin of `margin_pp`, on nets trained to their plateau and at half of
    each run."""
    trained = set(zip(runs.backbone, runs["head"]))

    def difference(backbone, a, b, column):
        """Per seed, `column` of head a minus head b on `backbone`, in percentage points."""
        return paired_difference(per_seed(runs, column, backbone=backbone, head=a),
                                 per_seed(runs, column, backbone=backbone, head=b), scale=100)

    def at_plateau(backbone, a, b, column):
        return evidence(runs, half=difference(backbone, a, b, f"half_{column}"), backbone=backbone, head=[a, b])

    def accuracies(head):
        """Mean train and test accuracy of a head, for the notes: a small train-test gap can be underfitting."""
        rows = runs[(runs.backbone == "convnet") & (runs["head"] == head)]
        return f"{head}: train {rows.train_acc.mean():.3f}, test {rows.test_acc.mean():.3f}"

    for backbone, head in [("convnet", "gap"), ("convnet", "nin"), ("convnet_deeper", "gap"),
                          ("mini_googlenet", "gap")]:
        if {(backbone, head), (backbone, "fc")} <= trained:
            rec.claim(f"gap.accuracy.{backbone}.{head}", f"{backbone}: the {head} head is at least as accurate as the "
                      f"FC head (test accuracy, {head} minus FC)", "+0.6 pp (GoogLeNet)",
                      difference(backbone, head, "fc", "test_acc"), "pp",
                      gap_rule(margin_pp), source=SOURCES,
                      note=budget, evidence=at_plateau(backbone, head, "fc", "test_acc"))
    effect = above(margin_pp, why=f"the minimum effect is {margin_pp} pp")
    if {("convnet", "fc"), ("convnet", "gap")} <= trained:
        rec.claim("gap.fc_overfits_more", "The FC head overfits more: its train-test gap minus the GAP head's", "> 0",
                  difference("convnet", "fc", "gap", "train_test_gap"), "pp", effect,
                  source="Szegedy et al. 2015, Section 5", note=f"{accuracies('fc')}; {accuracies('gap')}",
                  evidence=at_plateau("convnet", "fc", "gap", "train_test_gap"))
    if {("convnet", "fc"), ("convnet", "fc_dropout")} <= trained:
        rec.claim("gap.dropout_helps_fc", "Dropout helps the FC head (test accuracy, FC + dropout minus FC)",
                  "+1.57 pp (conventional CNN on CIFAR-10: 17.56% -> 15.99% error)",
                  difference("convnet", "fc_dropout", "fc", "test_acc"), "pp", effect,
                  source=SOURCES, evidence=at_plateau("convnet", "fc_dropout", "fc", "test_acc"))
        rec.claim("gap.dropout_narrows_fc_gap", "Dropout narrows the FC head's train-test gap (FC's gap minus FC + "
                  "dropout's)", "> 0", difference("convnet", "fc", "fc_dropout", "train_test_gap"), "pp", effect,
                  source="Lin et al. 2014, Section 4", note=f"{accuracies('fc')}; {accuracies('fc_dropout')}",
                  evidence=at_plateau("convnet", "fc", "fc_dropout", "train_test_gap"))
    rec.metric("diverged_runs", runs[runs.diverged_at_step.notna()][["backbone", "head", "seed"]].to_dict("records"))


def closing_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per backbone with both heads, at half of each run and at its end: mean test accuracy over seeds of FC
    and GAP and their difference."""
    rows = []
    for backbone in dict.fromkeys(runs.backbone):
        if {(backbone, "fc"), (backbone, "gap")} <= set(zip(runs.backbone, runs["head"])):
            for at, column in (("half", "half_test_acc"), ("end", "test_acc")):
                f, g = (np.mean(per_seed(runs, column, backbone=backbone, head=h)) for h in ("fc", "gap"))
                rows.append(dict(backbone=backbone, at=at, fc_test_acc=f, gap_test_acc=g, gap_minus_fc=g - f))
    return pd.DataFrame(rows)


def closing_claims(rec, trend: pd.DataFrame) -> None:
    """GAP minus FC at the end of the runs, reported with its value at half of them: is the gap closing?"""
    for backbone, t in trend.groupby("backbone", sort=False):
        half, end = t.gap_minus_fc.iloc[0], t.gap_minus_fc.iloc[-1]
        rec.claim(f"gap.closing.{backbone}", f"{backbone}: GAP minus FC test accuracy at the end of training (at half "
                  "of it in the note)", None, round(100 * end, 3), "pp", None, source="CLAIMS 05",
                  note=f"at half of each run: {100 * half:+.2f} pp, at its end: {100 * end:+.2f} pp; "
                  f"{'closing' if abs(end) < abs(half) else 'not closing'}")


def plot(curves: pd.DataFrame, trained: pd.DataFrame):
    """Accuracy on the held-out training images per epoch of every run (per backbone and head), and the
    train-test gap per head."""
    fig, axes = plots.new_figure(2)
    curves = curves.assign(model=curves.backbone + " " + curves["head"])
    styles = {model: (f"C{i}", "o", "-" if model.startswith("convnet ") else "--")
              for i, model in enumerate(dict.fromkeys(curves.model))}
    plots.plot_runs(axes[0], curves, "epoch", "model", "val_accuracy", styles)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set(xlabel="epoch", ylabel="held-out accuracy", title="held-out accuracy per epoch")
    axes[0].legend(fontsize=7)
    axes[1].bar(range(len(trained)), trained.train_test_gap, yerr=trained.train_test_gap_sd, capsize=3,
                color=[f"C{i}" for i in range(len(trained))])
    axes[1].set_xticks(range(len(trained)), [f"{r.backbone}\n{r.head}" for r in trained.itertuples()], fontsize=7,
                       rotation=45, ha="right")
    axes[1].set(ylabel="train accuracy - test accuracy", title="overfitting by head")
    fig.tight_layout()
    return fig


# --- the sweep: how deep, how wide and how long must the backbone train for GAP to match FC? ---------------------


def swept_backbones(names, widths, deeper_widths) -> dict:
    """name -> conv widths of the swept backbones: "convnet" (`widths`) and "convnet_deeper" (`deeper_widths`)."""
    known = {"convnet": widths, "convnet_deeper": deeper_widths}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown sweep backbones {unknown}; choose from {list(known)}")
    return {n: known[n] for n in names}


def sweep_gap_vs_fc(backbone_widths: dict, last_widths, head_args: dict, seeds, data, epochs: int,
                    learning_rate: float, batch_size: int, margin_pp: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FC vs GAP head on each conv backbone of `backbone_widths` (name -> widths) with its last stage
    `last_widths` wide, trained from the same seeds on `data` (its validation images measured after every
    epoch): per backbone, width and epoch, GAP minus FC test accuracy decided by the rule of the main GAP claim.
    Returns the sweep table and the curves."""
    rows, curves = [], []
    conditions = sweep.grid(dict(backbone=list(backbone_widths), width=last_widths))
    for i, condition in enumerate(conditions, 1):
        print(f"condition {i} of {len(conditions)}: {sweep.describe(condition)}, {epochs} epochs")
        name, width = condition["backbone"], condition["width"]
        backbone = {name: lambda name=name, width=width: convnet([*backbone_widths[name][:-1], width])}
        _, histories = run_seeds(builds([(name, "fc"), (name, "gap")], backbone, head_args, learning_rate),
                                 seeds, data, epochs, {}, batch_size, keys=("backbone", "head"))
        curve = histories_table(histories, ("backbone", "head"), "val_accuracy").assign(width=width)
        curves.append(curve)
        rows += sweep.by_epoch(curve, "head", "gap", "fc", condition, gap_rule(margin_pp))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def sweep_claims(rec, table: pd.DataFrame, margin_pp: float, budget: str) -> None:
    """Where the GAP head is within the margin of FC (or better), and how GAP minus FC moves with the epochs,
    the width of the last stage and the backbone's depth."""
    sweep.holds_claim(rec, "gap.holds_under.accuracy", "Conditions (backbone x width of the last stage x epochs) "
                      f"under which the GAP head is at least as accurate as the FC head ({budget})", table,
                      ["backbone", "width", "epochs"], gap_rule(margin_pp), "pp", source=SOURCES,
                      main=f"gap.accuracy.convnet.gap (margin {margin_pp} pp)")
    for axis, what in [("epochs", "epoch"), ("width", "width"), ("backbone", "backbone (the deeper one last)")]:
        sweep.trend_claim(rec, f"gap.trend.{axis}", f"GAP minus FC test accuracy at the last swept {what} minus at "
                          "the first", table, axis, "pp", source="CLAIMS 05")
