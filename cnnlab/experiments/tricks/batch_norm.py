"""07's batch normalisation (Ioffe & Szegedy 2015): steps to the baseline's best, a higher rate, a deep sigmoid
net, the initial weights' scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnnlab import convergence, plots
from cnnlab.compare import above, below, paired_difference, paired_ratio, per_seed
from cnnlab.convergence import evidence
from cnnlab.experiments.tricks.common import (BN_NETS, CHANCE_ERROR, SIGMOID_NETS, SOURCE_BN, SOURCE_BN_STEPS,
                                              StopAtLevel, fit_curve, smoothed_best, test_error)
from cnnlab.models import conv_stack
from cnnlab.models.convnet import stages_layout
from cnnlab.rules import at_least
from cnnlab.train import compile_sgd, curves_table, run_steps, seed_everything, steps_to, trailing_mean


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
