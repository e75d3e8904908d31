"""Experiment 02: how the weight initialisation scales signals with depth (He et al. 2015; Glorot &
Bengio 2010), and whether a deep plain ReLU net trains from He's or Glorot's initialisation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cnnlab import init, plots, probe
from cnnlab.compare import above, below, over_seeds, paired_ratio, per_seed
from cnnlab.models.plain import plain_cnn, plain_mlp
from cnnlab.rules import at_least, at_most, between, within
from cnnlab.train import compile_sgd, curves_table, diverged_runs, run_steps, steps_to

# scheme: the rule on the activation std ratio deep in a ReLU net (expected: He et al.'s theory at that depth)
PROPAGATION_RULES = {
    "he_normal": between(0.5, 2, partial=(0.1, 10), why="partial: within 10x of layer 1"),
    "glorot_normal": at_most(1e-2),
    "lecun_normal": at_most(1e-2),
    "heuristic": at_most(1e-5),
}
SOURCE_FIG2, SOURCE_FIG3 = "He et al. 2015, Fig. 2; CLAIMS 02", "He et al. 2015, Fig. 3; CLAIMS 02"


def probed_nets(mlp_depth, mlp_width, cnn_depth, cnn_filters) -> dict:
    """net -> (depth, build(seed, scheme), (fan_in, fan_out) of a hidden layer) for the propagation probes."""
    return {
        "mlp": (mlp_depth, lambda s, scheme: plain_mlp(mlp_depth, width=mlp_width, activation="relu", init=scheme,
                                                       seed=s),
                (mlp_width, mlp_width)),
        "cnn": (cnn_depth, lambda s, scheme: plain_cnn(cnn_depth, filters=cnn_filters, activation="relu", init=scheme,
                                                       seed=s),
                (9 * cnn_filters, 9 * cnn_filters)),
    }


def propagate(nets: dict, schemes, seeds, x, y) -> dict:
    """net -> scheme -> `probe.propagation_over_seeds` of that net at init."""
    return {net: {scheme: probe.propagation_over_seeds(lambda s: build(s, scheme), seeds, x, y) for scheme in schemes}
            for net, (_, build, _) in nets.items()}


def propagation_table(curves: dict, nets: dict) -> pd.DataFrame:
    """Per net, scheme and depth (20 and the last): activation ratio beside the theory, the first layer's
    gradient over the last one's, and the zero fraction."""
    rows = []
    for net, (depth, _, fans) in nets.items():
        for scheme, frame in curves[net].items():
            for at in sorted({20, depth}):
                r = frame.set_index("depth").loc[at]
                rows.append(dict(net=net, scheme=scheme, depth=at, act_ratio=r.act_ratio,
                                 theory=init.relu_std_ratio(scheme, *fans, at),
                                 grad_ratio_first_to_last=1 / frame.grad_ratio.iloc[-1] if at == depth else np.nan,
                                 zero_fraction=r.zero_fraction))
    return pd.DataFrame(rows)


def plot_propagation(curves: dict, nets: dict):
    """Activation and gradient std against depth per net, theory dashed."""
    fig, axes = plots.new_figure(2 * len(nets))
    for i, (net, (depth, _, fans)) in enumerate(nets.items()):
        theory = {s: [init.relu_std_ratio(s, *fans, d) for d in frame.depth] for s, frame in curves[net].items()}
        probe.plot_std_vs_depth(axes[2 * i], curves[net], "act_ratio", theory,
                                f"{net}: activations (ReLU, {depth} layers)")
        probe.plot_std_vs_depth(axes[2 * i + 1], curves[net], "grad_ratio", None, f"{net}: back-propagated gradients")
    fig.tight_layout()
    return fig


def propagation_claims(rec, table: pd.DataFrame, curves: dict, nets: dict, probe_seeds: int, cnn_filters: int) -> None:
    """The activation std deep in a ReLU net per scheme (He keeps it, the others shrink it), and the gradients."""
    for _, r in table[table.scheme.isin(list(PROPAGATION_RULES))].iterrows():
        rec.claim(f"init.prop.{r.net}.{r.scheme}.L{r.depth}",
                  f"{r.net.upper()} ReLU, {r.scheme}: activation std at layer {r.depth} over layer 1",
                  _two_digits(r.theory), r.act_ratio, "ratio", PROPAGATION_RULES[r.scheme],
                  source="He et al. 2015, eq. 10; CLAIMS 02",
                  note=f"theory {r.theory:.2g}; geometric mean of {probe_seeds} seeds")
    for net, (depth, _, fans) in nets.items():
        for scheme, frame in curves[net].items():
            rec.claim(f"init.prop.{net}.{scheme}.grad", f"{net.upper()} ReLU, {scheme}: gradient std at layer 1 "
                      f"over layer {depth} (the gradients show the same pattern)",
                      _two_digits(init.relu_std_ratio(scheme, *fans, depth)), 1 / frame.grad_ratio.iloc[-1], "ratio",
                      PROPAGATION_RULES[scheme], source="Glorot & Bengio 2010; He et al. 2015, eq. 10 (square layers)")
    cnn = curves.get("cnn", {})
    if "he_normal" in cnn and "glorot_normal" in cnn:
        he, glorot = cnn["he_normal"].act_ratio.iloc[-1], cnn["glorot_normal"].act_ratio.iloc[-1]
        if not 0.5 <= he <= 2 and glorot:
            rec.add_note(f"init.prop.cnn.he_normal.L{nets['cnn'][0]}",
                         f"with {cnn_filters} channels the per-layer gain fluctuates from seed to seed and its product "
                         f"drifts from 1 (a finite-width effect); {he / glorot:.0f}x Glorot's ratio at the same depth")


SOURCE_SATURATION = "lecture seed 004 (sigma'(.) < 1/4 per layer: 'Deeper the network, gradients vanish quickly')"


def saturation_curves(depth: int, width: int, seeds, x, y) -> dict:
    """`probe.propagation_over_seeds` of the same MLP with saturating units (sigmoid, Glorot's init, whose scale
    keeps each weight matrix's gain at 1) and with ReLU (He's init, the same for ReLU)."""
    return {"sigmoid, glorot_normal": probe.propagation_over_seeds(
                lambda s: plain_mlp(depth, width=width, activation="sigmoid", init="glorot_normal", seed=s),
                seeds, x, y),
            "relu, he_normal": probe.propagation_over_seeds(
                lambda s: plain_mlp(depth, width=width, activation="relu", init="he_normal", seed=s), seeds, x, y)}


def saturation_table(curves: dict) -> pd.DataFrame:
    """Per layer: each net's back-propagated gradient std over layer 1's (geometric mean over the seeds)."""
    return pd.DataFrame({"depth": next(iter(curves.values())).depth,
                         **{f"{name.split(',')[0]}_grad_ratio": frame.grad_ratio for name, frame in curves.items()}})


def saturation_claims(rec, curves: dict, probe_seeds: int) -> None:
    """Saturating units make gradients vanish: the sigmoid MLP's gradient std shrinks by sigma' < 1/4 per layer
    on its way back, to well under 1% of ReLU's at layer 1."""
    depth = int(curves["sigmoid, glorot_normal"].depth.iloc[-1])
    first_to_last = {name: 1 / frame.grad_ratio.iloc[-1] for name, frame in curves.items()}
    per_layer = first_to_last["sigmoid, glorot_normal"] ** (1 / (depth - 1))
    note = (f"layer 1 over layer {depth}: sigmoid {first_to_last['sigmoid, glorot_normal']:.2g}, ReLU "
            f"{first_to_last['relu, he_normal']:.2g}; geometric mean of {probe_seeds} seeds")
    rec.claim("init.saturation.sigmoid.per_layer", f"MLP sigmoid, glorot_normal: each of {depth - 1} layers scales "
              "the back-propagated gradient std by less than 1/4 (sigma' <= 1/4, Glorot's weights keep the rest "
              f"at 1): layer 1 over layer {depth}, to the power 1/{depth - 1}", "< 0.25", per_layer, "per layer",
              at_most(0.25), source=SOURCE_SATURATION, note=note)
    rec.claim("init.saturation.sigmoid_vs_relu", f"With saturating units the gradient vanishes with depth, with ReLU "
              f"it does not: the gradient std at layer 1 over layer {depth}, sigmoid over ReLU", "< 0.01",
              first_to_last["sigmoid, glorot_normal"] / first_to_last["relu, he_normal"], "ratio",
              at_most(0.01, why="under 1% of ReLU's: the first layer barely learns"), source=SOURCE_SATURATION,
              note=note)


def plot_saturation(curves: dict):
    """The gradient std against depth, sigmoid against ReLU."""
    fig, axes = plots.new_figure(1)
    probe.plot_std_vs_depth(axes[0], curves, "grad_ratio", None, "back-propagated gradients: sigmoid vs ReLU")
    fig.tight_layout()
    return fig


def _two_digits(value: float) -> float:
    """A theoretical value as the slides round it."""
    return float(f"{value:.2g}")


def tanh_statistics(schemes, depth: int, width: int, seed: int, x, y) -> tuple[pd.DataFrame, dict]:
    """Glorot & Bengio's 5-layer tanh net per scheme: per-layer activation and gradient std ratios (geometric
    means) and the share of activations near 0 at the first and last layer; and the arrays per layer."""
    rows, arrays = [], {}
    for scheme in schemes:
        model = plain_mlp(depth, width=width, activation="tanh", init=scheme, seed=seed)
        pairs = probe.activations_and_gradients(model, x, y)
        arrays[scheme] = pairs
        act = np.array([a.std() for a, _ in pairs])
        grad = np.array([g.std() for _, g in pairs])
        rows.append(dict(
            scheme=scheme,
            act_per_layer=float(np.exp(np.mean(np.log(act[1:] / act[:-1])))),
            grad_per_layer_backward=float(np.exp(np.mean(np.log(grad[:-1] / grad[1:])))),
            near_zero_first=float((np.abs(pairs[0][0]) < 0.05).mean()),
            near_zero_last=float((np.abs(pairs[-1][0]) < 0.05).mean()),
        ))
    return pd.DataFrame(rows), arrays


def tanh_claims(rec, table: pd.DataFrame) -> None:
    """Fig. 6/7 of Glorot & Bengio: the heuristic shrinks tanh activations per layer, the normalised init less."""
    t = table.set_index("scheme")
    if "heuristic" in t.index:
        rec.claim("init.tanh.heuristic.act_per_layer", "Heuristic init, tanh: each layer shrinks the activation std "
                  "(ratio about 0.5)", 0.5, t.loc["heuristic", "act_per_layer"], "ratio per layer",
                  within(0.5, 0.1, why="read off Fig. 6"), source="Glorot & Bengio 2010, Fig. 6")
        rec.claim("init.tanh.heuristic.zero_peak", "Heuristic init: the peak at 0 grows with depth (share of |a| < "
                  "0.05, last layer over first)", 1,
                  t.loc["heuristic", "near_zero_last"] / t.loc["heuristic", "near_zero_first"], "ratio",
                  at_least(1.5, why="'grows'"), source="Glorot & Bengio 2010, Fig. 6")
    if "glorot_normal" in t.index:
        rec.claim("init.tanh.glorot.act_per_layer", "Normalised init, tanh: activation std ratio about 0.8 per layer",
                  0.8, t.loc["glorot_normal", "act_per_layer"], "ratio per layer",
                  within(0.8, 0.1, why="read off Fig. 6"), source="Glorot & Bengio 2010, Fig. 6")
        rec.claim("init.tanh.glorot.grad_per_layer", "Normalised init: the back-propagated gradient keeps its "
                  "variance (std ratio per layer, backwards)", 1.0, t.loc["glorot_normal", "grad_per_layer_backward"],
                  "ratio per layer", within(1.0, 0.2), source="Glorot & Bengio 2010, Fig. 7")


def plot_tanh(arrays: dict):
    """Per scheme, the distributions of the activations and of the gradients per layer."""
    fig, axes = plots.new_figure(2 * len(arrays), width=4)
    for i, (scheme, pairs) in enumerate(arrays.items()):
        layers = list(range(1, len(pairs) + 1))
        probe.plot_histograms(axes[2 * i], [a for a, _ in pairs], layers, f"{scheme}: activations")
        grads = [g for _, g in pairs]
        probe.plot_histograms(axes[2 * i + 1], grads, layers, f"{scheme}: gradients",
                              clip=float(np.abs(grads[-1]).max()))
    fig.tight_layout()
    return fig


def train_plain(depths, schemes, seeds, data, probe_set, width, steps, every, learning_rate, momentum, batch_size,
                plateau_loss, loss_threshold) -> pd.DataFrame:
    """Plain ReLU MLPs of each depth and scheme trained by SGD from each seed: one row per run with the final
    loss and training accuracy and the steps until the loss fell below `plateau_loss` and `loss_threshold`."""
    def trainable(depth, scheme, seed):
        model = plain_mlp(depth, width=width, activation="relu", init=scheme, seed=seed)
        return compile_sgd(model, learning_rate, momentum)

    builds = {(d, sc): lambda s, d=d, sc=sc: trainable(d, sc, s) for d in depths for sc in schemes}
    runs = run_steps(builds, seeds, data, steps, every, probe_set, batch_size, keys=("depth", "scheme"))
    for r in runs:
        r.update(final_train_acc=1 - r["final_error"], steps_to_escape=steps_to(r["curve"], plateau_loss, on="loss"),
                 steps_to_loss=steps_to(r["curve"], loss_threshold, on="loss"))
    return runs


def plot_training(runs: list[dict]):
    """The training loss of every run per depth, one colour per scheme, chance (ln 10) dotted."""
    table = curves_table(runs, ("depth", "scheme"))
    depths = list(dict.fromkeys(table.depth))
    fig, axes = plots.new_figure(len(depths))
    for ax, depth in zip(axes, depths):
        plots.plot_runs(ax, table[table.depth == depth], "step", "scheme", "loss")
        ax.axhline(math.log(10), color="grey", linestyle=":", label="ln 10 (chance)")
        ax.set(title=f"{depth}-layer plain ReLU net", xlabel="step", ylabel="training loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_claims(rec, runs: list[dict], budget: int, plateau_loss: float, loss_threshold: float) -> None:
    """He et al. Fig. 2/3: at the greater depth Glorot stays at ln 10 while He trains; at the smaller both
    converge, He earlier."""
    deep, shallow = max(r["depth"] for r in runs), min(r["depth"] for r in runs)

    rec.metric("train_steps_budget", budget)
    rec.claim(f"init.train.d{deep}.glorot_stays_at_ln10", f"{deep} layers, Glorot init: the training loss stays near "
              f"ln 10 = 2.303 (final loss, per seed)", 2.303,
              over_seeds(per_seed(runs, "final_loss", depth=deep, scheme="glorot_normal"), null=plateau_loss),
              "loss",
              above(plateau_loss, why=f"near ln 10 means above {plateau_loss} to the end"), source=SOURCE_FIG3,
              note=f"after {budget} steps")
    rec.claim(f"init.train.d{deep}.he_trains", f"{deep} layers, He init: the net reaches 90% training accuracy",
              0.9, over_seeds(per_seed(runs, "final_train_acc", depth=deep, scheme="he_normal"), null=0.1),
              "accuracy",
              above(0.9, why="no effect is chance (0.1); partial: above chance, short of 90% in this budget"),
              source=SOURCE_FIG3, note=f"after {budget} steps")
    rec.claim(f"init.train.d{deep}.he_leaves_plateau_first", f"{deep} layers: He leaves the ln 10 plateau before "
              f"Glorot (steps until the loss drops below {plateau_loss}, Glorot's over He's)", "> 1",
              paired_ratio(per_seed(runs, "steps_to_escape", depth=deep, scheme="glorot_normal"),
                           per_seed(runs, "steps_to_escape", depth=deep, scheme="he_normal"), cap=budget),
              "x", above(3.0, why="'far longer': 3x or more"), source=SOURCE_FIG3,
              note=f"a run that never gets below {plateau_loss} within {budget} steps enters at {budget} (a bound)")
    rec.claim(f"init.train.d{shallow}.he_earlier", f"{shallow} layers: He gets below loss {loss_threshold} earlier "
              "than Glorot (Glorot's steps over He's)", "> 1",
              paired_ratio(per_seed(runs, "steps_to_loss", depth=shallow, scheme="glorot_normal"),
                           per_seed(runs, "steps_to_loss", depth=shallow, scheme="he_normal"), cap=budget),
              "x", above(1.5, why="'starts earlier': 1.5x or more"), source=SOURCE_FIG2,
              note=f"a run that never gets below {loss_threshold} within {budget} steps enters at {budget} (a bound)")
    rec.claim(f"init.train.d{shallow}.glorot_converges", f"{shallow} layers: Glorot init converges too (final loss "
              f"below {loss_threshold})", f"< {loss_threshold}",
              over_seeds(per_seed(runs, "final_loss", depth=shallow, scheme="glorot_normal"), null=loss_threshold),
              "loss",
              below(loss_threshold), source=SOURCE_FIG2, note=f"after {budget} steps")
    rec.metric("diverged_runs", diverged_runs(runs, ("depth", "scheme")))
