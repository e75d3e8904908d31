"""Experiment 03: ReLU vs tanh (Krizhevsky et al. 2012, Fig. 1) by steps to a training-error threshold, the
other activations of the lecture beside them, and what the units do (ReLUs that never fire, ELU's mean)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cnnlab import plots, probe, sweep
from cnnlab.compare import above, below, paired_ratio, per_seed
from cnnlab.init import check_scheme
from cnnlab.models.convnet import conv_stack, stages_layout
from cnnlab.rules import at_least
from cnnlab.train import compile_sgd, curves_table, run_steps, steps_to

ANCHOR = 6.0  # Krizhevsky et al. 2012, Fig. 1: ReLU reached 25% six times faster than tanh
RECTIFIERS = ("relu", "leaky_relu", "elu")  # the units whose activity (never firing, mean) is probed
SOURCE = "Krizhevsky et al. 2012, Fig. 1"


def speed_rule():
    """The rule of the 2012 claim (tanh's steps over ReLU's), for the main comparison and every swept condition:
    reproduced at half the anchor or more, partial when ReLU is faster by less."""
    return above(ANCHOR / 2, why="reproduced at half the anchor or more")


def pct(threshold: float) -> int:
    return round(100 * threshold)


def steps_column(threshold: float) -> str:
    return f"steps_to_{pct(threshold)}"


@dataclass(frozen=True)
class Protocol:
    """What every run of the experiment shares: data, the conv stack, SGD momentum, the thresholds and how
    often the error is measured, and the images the unit activity is measured on."""

    data: object
    probe_set: tuple
    stages: list
    kernel_size: int
    momentum: float
    thresholds: list
    every: int
    batch_size: int
    activity_x: np.ndarray

    def train(self, rates: dict, init: str, seeds, stop_below: float, cap: int, probed_seeds=()) -> list[dict]:
        """SGD runs of the conv stack for each activation -> learning rates in `rates` and each seed, until the
        error reaches `stop_below` or `cap` steps, with the steps to each threshold on the way; for rectifier
        nets of `probed_seeds`, the hidden units' activity."""

        def trainable(activation, lr, seed):
            model = conv_stack(stages_layout(self.stages), kernel_size=self.kernel_size, activation=activation,
                               init=init, seed=seed)
            return compile_sgd(model, lr, self.momentum)

        def units(model, run):
            wanted = run["activation"] in RECTIFIERS and run["seed"] in probed_seeds
            return {"activity": probe.unit_activity(model, self.activity_x)} if wanted else {}

        builds = {(a, init, lr): lambda s, a=a, lr=lr: trainable(a, lr, s) for a, lrs in rates.items() for lr in lrs}
        runs = run_steps(builds, seeds, self.data, cap, self.every, self.probe_set, self.batch_size, stop_below,
                         keys=("activation", "init", "lr"), describe=units)
        for r in runs:
            r.update(cap=cap, **{steps_column(t): steps_to(r["curve"], t) for t in self.thresholds if t >= stop_below})
        return runs


def best_learning_rates(search: list[dict], threshold: float, never: int) -> dict:
    """Per activation, the learning rate of the run that reached `threshold` in the fewest steps (`never`
    for a run that did not), ties broken by the final error; diverged runs are left out."""
    best = {}
    for activation in dict.fromkeys(r["activation"] for r in search):
        candidates = [r for r in search if r["activation"] == activation and not r["diverged_at_step"]]
        best[activation] = min(candidates, key=lambda r: (r[steps_column(threshold)] or never, r["final_error"]))["lr"]
    return best


def speed_claims(rec, runs: list[dict], thresholds, best_lr: dict, cap: int, every: int) -> pd.DataFrame:
    """Per threshold, tanh's steps over ReLU's (the 2012 claim) and the share of seeds where ReLU got there
    first; returns the table of per-seed steps."""
    rows = []
    for t in thresholds:
        relu = per_seed(runs, steps_column(t), activation="relu")
        tanh = per_seed(runs, steps_column(t), activation="tanh")
        ratio = paired_ratio(tanh, relu, cap=cap)
        both = [(r, h) for r, h in zip(relu, tanh) if r is not None or h is not None]
        rows.append(dict(threshold=t, relu_steps=relu, tanh_steps=tanh,
                         ratio_tanh_over_relu=None if ratio is None else ratio.mean,
                         relu_faster_seeds=sum((h or cap + 1) > (r or cap + 1) for r, h in both),
                         decided_seeds=len(both)))
        rec.claim(f"act.relu_faster.t{pct(t)}", f"ReLU reaches {pct(t)}% training error faster than tanh (tanh's "
                  "steps over ReLU's)", ANCHOR, ratio, "x",
                  speed_rule(), source=SOURCE,
                  note=f"learning rates {best_lr}; steps every {every}, cap {cap}; per seed ReLU {relu}, tanh "
                  f"{tanh} (None: never within the cap)")
        rec.claim(f"act.relu_faster_seeds.t{pct(t)}", f"ReLU needs fewer steps to {pct(t)}% than tanh in most seeds "
                  "(share of the seeds where at least one got there)", "> 0.5",
                  rows[-1]["relu_faster_seeds"] / len(both) if both else None, "share of seeds",
                  at_least(0.51, why="most seeds"), source="CLAIMS 03",
                  note=f"{len(both)} of {len(relu)} seeds decided")
    return pd.DataFrame(rows)


def contrast_claim(rec, runs: list[dict], threshold: float, cap: int) -> None:
    """The same ratio from Glorot init: reported, not judged, to show what the initialisation changes."""
    column = steps_column(threshold)
    rec.claim(f"act.glorot.ratio.t{pct(threshold)}", f"With Glorot init: tanh's steps to {pct(threshold)}% over "
              "ReLU's", ANCHOR,
              paired_ratio(per_seed(runs, column, activation="tanh"), per_seed(runs, column, activation="relu"),
                           cap=cap),
              "x", None, source="CLAIMS 03",
              note=f"reported beside act.relu_faster.t{pct(threshold)} to show what the initialisation changes; cap "
              f"{cap}")


def sigmoid_claim(rec, runs: list[dict], threshold: float, cap: int, setting: str) -> None:
    """Sigmoid (not zero-centred, saturating) is slower than tanh."""
    column = steps_column(threshold)
    rec.claim("act.sigmoid_slower_than_tanh", f"Sigmoid units (not zero-centred, saturating) need more steps to "
              f"{pct(threshold)}% than tanh (sigmoid's steps over tanh's)", "> 1",
              paired_ratio(per_seed(runs, column, activation="sigmoid"), per_seed(runs, column, activation="tanh"),
                           cap=cap),
              "x", above(1.05, why="5% margin"), source="lecture seed 000", note=f"{setting}; cap {cap}")


def plot_error(ax, runs: list[dict], thresholds, title: str) -> None:
    """The training error of every run per activation against steps (means over seeds as lines)."""
    table = curves_table(runs, ("activation", "lr"))
    table["activation"] = [f"{a} (lr {lr:g})" for a, lr in zip(table.activation, table.lr)]
    plots.plot_runs(ax, table, "step", "activation", "error")
    for t in thresholds:
        ax.axhline(t, color="grey", linestyle=":")
    ax.set(title=title, xlabel="step", ylabel="training error")
    ax.legend(fontsize=8)


def activity_table(settings: dict) -> pd.DataFrame:
    """The unit activity of every probed run: setting name -> runs; one row per run and hidden layer."""
    frames = []
    for setting, runs in settings.items():
        for r in runs:
            if "activity" in r:
                frames.append(r["activity"].assign(activation=r["activation"], setting=setting, seed=r["seed"]))
    table = pd.concat(frames, ignore_index=True)
    return table[["activation", "setting", "seed", *frames[0].columns.drop(["activation", "setting", "seed"])]]


def activity_claims(rec, activity: pd.DataFrame, settings: dict, seed: int, images: int, modern: str) -> None:
    """Dead ReLUs (reported) in each setting (tag -> setting name), and ELU's mean closer to 0 than ReLU's in
    the setting tagged `modern`."""
    for tag, setting in settings.items():
        rows = activity[(activity.activation == "relu") & (activity.setting == setting) & (activity.seed == seed)]
        if len(rows):
            rec.claim(f"act.relu.never_fire.{tag}", f"Some ReLU units never fire on the training set ({setting}, "
                      f"seed {seed})", None, float((rows.never_fire * rows.units).sum() / rows.units.sum()),
                      "share of units", None, source="lecture seed 000",
                      note=f"{images} images; dead channels per layer {rows.dead_channels.round(3).tolist()}")
    modern = activity[activity.setting == settings.get(modern)]
    if {"relu", "elu"} <= set(modern.activation):
        mean_per_seed = modern.groupby(["activation", "seed"]).mean_activation.mean()
        relu_mean, elu_mean = mean_per_seed["relu"].to_numpy(), mean_per_seed["elu"].to_numpy()
        rec.claim("act.elu.mean_closer_to_zero", "ELU's mean activation is closer to 0 than ReLU's (|ELU mean| over "
                  "ReLU mean)", "< 1", paired_ratio(np.abs(elu_mean), relu_mean), "ratio",
                  below(1.0, why="closer to 0 than ReLU"), source="Clevert et al. 2016; lecture seed 000",
                  note=f"mean over the hidden layers, per seed: ReLU {np.round(relu_mean, 3).tolist()}, ELU "
                  f"{np.round(elu_mean, 3).tolist()}")


# --- the sweep: under which conditions does ReLU train faster? ------------------------------------------------


def depth_stages(stages, weight_layers: int) -> list[list[int]]:
    """Conv stages holding `weight_layers - 1` convs (the classifier is the last weight layer), spread over the
    stages of `stages` as evenly as possible with later stages taking the extra ones, each conv at its stage's
    first width: [[16], [16], [32]] at 8 weight layers -> [[16, 16], [16, 16], [32, 32, 32]]."""
    n, convs = len(stages), weight_layers - 1
    if convs < n:
        raise ValueError(f"{weight_layers} weight layers cannot hold {n} conv stages and the classifier; "
                         f"allowed: at least {n + 1}")
    widths = [stage[0] if isinstance(stage, (list, tuple)) else stage for stage in stages]
    return [[width] * (convs // n + (i >= n - convs % n)) for i, width in enumerate(widths)]


def init_per_activation(setting: str) -> dict:
    """A swept initialisation: one `cnnlab.init` scheme for ReLU and tanh alike ("glorot_uniform"), or ReLU's
    and tanh's apart ("he_normal/glorot_uniform": He for ReLU, its proper init, Glorot for tanh)."""
    schemes = [check_scheme(s) for s in setting.split("/")]
    if len(schemes) > 2:
        raise ValueError(f"init setting '{setting}': allowed are one scheme or 'relu_scheme/tanh_scheme'")
    return dict(zip(("relu", "tanh"), schemes * (3 - len(schemes))))


def check_sweep(stages, depths, inits) -> None:
    """Every swept depth and initialisation setting is one the sweep can build (ValueError naming it if not)."""
    for depth in depths:
        depth_stages(stages, depth)
    for setting in inits:
        init_per_activation(setting)


def check(params: dict) -> None:
    """The rules between the notebook's parameters, which the runner applies before a kernel starts."""
    check_sweep(params["stages"], params["sweep_depths"], params["sweep_inits"])


def sweep_speed(protocol: Protocol, depths, inits, lr_grid, seeds, thresholds, cap: int,
                kernel_size: int) -> tuple[pd.DataFrame, list[dict]]:
    """The 2012 comparison over depth x initialisation, conv kernels `kernel_size`: per condition the learning
    rate is chosen per activation on the first seed as in the main comparison (that run is the seed's), the
    other seeds train at it, each up to the hardest threshold or `cap` steps. Returns one row per condition and
    threshold (tanh's steps over ReLU's, decided by the 2012 claim's rule) and the runs."""
    check_sweep(protocol.stages, depths, inits)
    rows, runs = [], []
    conditions = sweep.grid(dict(depth=depths, init=inits))
    for i, condition in enumerate(conditions, 1):
        print(f"condition {i} of {len(conditions)}: {sweep.describe(condition)}")
        net = replace(protocol, stages=depth_stages(protocol.stages, condition["depth"]), kernel_size=kernel_size,
                      thresholds=thresholds)
        schemes = init_per_activation(condition["init"])
        search = [r for a, scheme in schemes.items()
                  for r in net.train({a: lr_grid}, scheme, seeds[:1], min(thresholds), cap)]
        best = best_learning_rates(search, thresholds[0], never=cap + protocol.every)
        chosen = [r for r in search if r["lr"] == best[r["activation"]]]
        chosen += [r for a, scheme in schemes.items()
                   for r in net.train({a: [best[a]]}, scheme, seeds[1:], min(thresholds), cap)]
        for r in chosen:
            r.update(depth=condition["depth"], init_setting=condition["init"])
        runs += chosen
        for t in thresholds:
            ratio = paired_ratio(per_seed(chosen, steps_column(t), activation="tanh"),
                                 per_seed(chosen, steps_column(t), activation="relu"), cap=cap)
            rows.append(sweep.decided(dict(condition, threshold=t, relu_lr=best["relu"], tanh_lr=best["tanh"]),
                                      ratio, speed_rule()))
    return pd.DataFrame(rows), runs


def sweep_claims(rec, table: pd.DataFrame, cap: int, kernel_size: int) -> None:
    """Where ReLU is faster (the 2012 claim holds under its rule), and how tanh's steps over ReLU's move with
    depth and with a harder threshold."""
    setting = f"{kernel_size}x{kernel_size} convs, cap {cap} steps"
    sweep.holds_claim(rec, "act.holds_under.relu_faster", "Conditions (depth x initialisation x threshold) under "
                      f"which ReLU reaches the threshold faster than tanh ({setting})", table,
                      ["depth", "init", "threshold"], speed_rule(), "x", source=SOURCE, main="act.relu_faster")
    for axis, what in [("depth", "deeper"), ("threshold", "at a harder threshold")]:
        sweep.trend_claim(rec, f"act.trend.{axis}", f"tanh's steps over ReLU's {what}: the ratio at the last swept "
                          f"{axis} over the first", table, axis, "x", source="CLAIMS 03", log=True)
