"""Experiment 08: Yosinski et al.'s transfer grid (how transferable are the features of each layer?) on two
class splits of Fashion-MNIST, and the lecture's advice on freezing or fine-tuning as the target set grows.

Every net trains to its plateau: SGD with momentum at a constant learning rate, the accuracy on a held-out
split of its half's training images (never the test set) measured every few steps, stopping once it has not
improved by `min_delta` over `patience` measurements (or at a step cap, where the same test says whether it
was still improving). Each claim about the trained nets passes the evidence of every run behind it, and the
same claim computed on the weights at half of each run's length."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import keras
import numpy as np
import pandas as pd

from cnnlab import backend, data, plots
from cnnlab.compare import above, below, not_above, not_below, over_seeds, paired_difference, per_seed, summarise
from cnnlab.convergence import Plateau, evidence
from cnnlab.models.convnet import POOL, conv_stack
from cnnlab.train import compile_sgd, run_steps, runs_table
from cnnlab.transfer import plot_transfer, trained_run, transfer_builds

SOURCE = "Yosinski et al. 2014, Fig. 2"
ADVICE = "lecture seed 003: small data, freeze; medium, fine-tune"
IMAGE_SIZES = (14, 28)  # Fashion-MNIST's 28 x 28, or averaged over 2 x 2 blocks
# The columns of a run kept in the tables: its measures, then its convergence.
RUN_COLUMNS = ["seed", "accuracy", "half_accuracy", "stop", "at_plateau", "trained", "best_at", "last_gain",
               "half_at", "diverged_at_step"]


@dataclass(frozen=True)
class Protocol:
    """The seven-weight-layer net (five convs, a hidden dense layer, the classifier of one half's five classes)
    on `image_size` x `image_size` images, and how every net is trained: SGD with momentum at a constant
    learning rate until `plateau` on the held-out split, measured every `every` steps."""

    conv_filters: list
    fc_units: int
    learning_rate: float
    momentum: float
    batch_size: int
    image_size: int
    plateau: Plateau
    every: int

    def __post_init__(self):
        check_net(self.conv_filters, self.image_size)

    @property
    def layout(self) -> list:
        f = self.conv_filters
        return [f[0], f[1], POOL, f[2], f[3], POOL, f[4], POOL]

    def net(self, seed):
        """The net for one half, initialised from `seed`."""
        return conv_stack(self.layout, classes=5, input_shape=(self.image_size, self.image_size, 1),
                          dense=[self.fc_units], init="he_normal", seed=seed)

    def compiled(self, model):
        """SGD with momentum at a constant rate: a run stops where the held-out accuracy stops improving while
        the rate could still move the net, not where a schedule has frozen it."""
        return compile_sgd(model, self.learning_rate, self.momentum)

    def recipe(self, data_seed: int) -> dict:
        """Everything besides the seed, the data sizes and the stopping that decides a source net's weights."""
        return dict(layout=self.layout, dense=[self.fc_units], init="he_normal", optimizer="SGD",
                    learning_rate=self.learning_rate, schedule="constant", momentum=self.momentum,
                    image_size=self.image_size, data=data.fingerprint(), norm="raw", data_seed=data_seed)


def check_net(conv_filters, image_size: int) -> None:
    """The net's five conv layers and an image size it can take (ValueError naming what is wrong if not)."""
    if len(conv_filters) != 5:
        raise ValueError(f"conv_filters needs the five conv layers' filters, got {len(conv_filters)}: {conv_filters}")
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size {image_size} is not allowed (allowed: {', '.join(map(str, IMAGE_SIZES))})")


def check(params: dict) -> None:
    """The rules between the notebook's parameters that their declarations cannot state, which the runner
    applies before a kernel starts: five conv layers, an image size the net takes."""
    check_net(params["conv_filters"], params["image_size"])


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """NHWC images averaged over blocks down to `size` x `size` (28 -> 14: the mean of each 2 x 2 block)."""
    n, h, w, c = images.shape
    if h % size or w % size:
        raise ValueError(f"cannot average {h}x{w} images down to {size}x{size}")
    return images.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4), dtype=np.float32)


def half_data(classes, val_images: int, n_test: int, image_size: int, seed: int) -> data.Dataset:
    """One half's images: all its training images but `val_images` held out (x_val: never trained on, where
    every run's plateau is measured), `n_test` test images, at `image_size`, drawn from `seed`."""
    ds = data.prepare(classes=classes, n_test=n_test, seed=seed)
    (x, y), (x_val, y_val) = data.split_validation(ds.x_train, ds.y_train, val_images / len(ds.x_train), seed)
    if len(x_val) != val_images:
        raise ValueError(f"{val_images} held-out images asked, {len(x_val)} drawn")
    return replace(ds, x_train=shrink(x, image_size), y_train=y, x_val=shrink(x_val, image_size), y_val=y_val,
                   x_test=shrink(ds.x_test, image_size))


def training_subset(ds: data.Dataset, n: int, seed: int) -> data.Dataset:
    """`ds` with `n` of its training images (the held-out and test images unchanged)."""
    x, y = data.subset(ds.x_train, ds.y_train, n, seed)
    return replace(ds, x_train=x, y_train=y)


def test_accuracy(model, x, y, batch: int = 1000) -> float:
    """Top-1 accuracy in inference mode, by direct calls (no traced predict function per net)."""
    logits = [backend.numpy(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return float(np.mean(np.argmax(np.concatenate(logits), axis=-1) == np.asarray(y)))


def _measured_on_test(ds: data.Dataset):
    """`run_steps`' describe: the accuracy on `ds`'s test set (and, by run_steps, at half the run)."""
    return lambda model, run: {"accuracy": test_accuracy(model, ds.x_test, ds.y_test)}


def _timed(label: str, runs: list, seconds: float) -> None:
    steps = sum(r["trained"] for r in runs)
    print(f"{label}: {len(runs)} runs, {steps:,} steps in {seconds:.0f} s ({1000 * seconds / max(steps, 1):.1f} ms "
          f"per step, runs' overheads included); {sum(r['at_plateau'] for r in runs)} of {len(runs)} at plateau")


def source_nets(protocol: Protocol, halves: dict, source_sets: dict, target_sets: dict, seeds, data_seed: int,
                caps: dict) -> tuple[dict, pd.DataFrame]:
    """baseA and baseB of every split and seed, trained to their plateau (cap `caps[half]` steps) or loaded
    when stored: returns split -> half -> seed -> net, and their table (accuracy on their own half's test set,
    at the end and at half the run, and the run's convergence)."""
    sources, rows = {kind: {"A": {}, "B": {}} for kind in halves}, []
    start = time.perf_counter()
    for kind, (a, b) in halves.items():
        for half, classes, ds in (("A", a, source_sets[kind]), ("B", b, target_sets[kind])):
            for s in seeds:
                run = trained_run(f"base{half}-{kind}", dict(protocol.recipe(data_seed), classes=classes),
                                  lambda s: protocol.compiled(protocol.net(s)), ds, caps[half], protocol.every,
                                  protocol.plateau, s, protocol.batch_size)
                sources[kind][half][s] = run.model
                rows.append(dict(split=kind, net=f"base{half}", variant=f"base{half}", n=0, seed=s,
                                 train_images=len(ds.x_train),
                                 accuracy=test_accuracy(run.model, ds.x_test, ds.y_test),
                                 half_accuracy=test_accuracy(run.half, ds.x_test, ds.y_test),
                                 **{k: run.record[k] for k in RUN_COLUMNS[3:]}, reused=run.reused))
                r = rows[-1]
                print(f"{kind} base{half} seed {s}: test accuracy {r['accuracy']:.4f} (at half: "
                      f"{r['half_accuracy']:.4f}), {r['trained']} steps ({r['stop']}; best at {r['best_at']})"
                      f"{' (stored net reused)' if run.reused else ''}")
    table = pd.DataFrame(rows)
    _timed("source nets", rows, time.perf_counter() - start)
    return sources, table[["split", "net", "variant", "n", "train_images"] + RUN_COLUMNS + ["reused"]]


def transfer_grid(protocol: Protocol, plan: dict, target_sets: dict, sources: dict, seeds, cap: int) -> pd.DataFrame:
    """Every variant of `plan` (split -> (variants, numbers n of copied layers)) at each of its n, trained on B
    from each seed to its plateau on B's held-out images (at most `cap` steps): one row per run with its
    accuracy on B's test set, at the end and at half the run, and its convergence."""
    frames = []
    for kind, (kind_variants, layers) in plan.items():
        print(f"{kind} split:")
        target = target_sets[kind]
        builds = transfer_builds(protocol.net, protocol.compiled, sources[kind], layers, kind_variants)
        start = time.perf_counter()
        runs = run_steps(builds, seeds, target, cap, protocol.every, (target.x_val, target.y_val),
                         protocol.batch_size, keys=("variant", "n"), describe=_measured_on_test(target),
                         plateau=protocol.plateau)
        _timed(f"{kind} split's transfer grid", runs, time.perf_counter() - start)
        frames.append(runs_table(runs).assign(split=kind))
    return pd.concat(frames, ignore_index=True)[["split", "variant", "n"] + RUN_COLUMNS]


def plot_grid(grid: pd.DataFrame, source_table: pd.DataFrame, halves: dict):
    """Yosinski et al.'s Fig. 2 per split: accuracy on B against n, baseB at n = 0."""
    names = data.FASHION_MNIST_CLASSES
    splits = list(dict.fromkeys(grid.split))
    fig, axes = plots.new_figure(len(splits), width=6.0, height=4.2)
    for ax, kind in zip(axes, splits):
        base = source_table[(source_table.split == kind) & (source_table.net == "baseB")]
        plot_transfer(ax, grid[grid.split == kind], dict(zip(base.seed, base.accuracy)),
                      f"{kind} split: B = {', '.join(names[c] for c in halves[kind][1])}")
    fig.tight_layout()
    return fig


class Cells:
    """The runs behind the claims, by cell: (split, variant, n) for the grid with baseB at n = 0, or
    (per_class, method) for the sweep. `values(cell, column)` is the cell's per-seed column in seed order;
    `evidence(cells, half)` the evidence of every run in those cells (about trained nets), with `half` the
    claim's estimate on the weights at half of each run."""

    def __init__(self, runs: pd.DataFrame, keys):
        self.runs, self.keys = runs, tuple(keys)

    def values(self, cell, column: str) -> np.ndarray:
        return np.array(per_seed(self.runs, column, **dict(zip(self.keys, cell))))

    def evidence(self, cells, half):
        wanted = {tuple(cell) for cell in cells}
        chosen = [r for r in self.runs.to_dict("records") if tuple(r[k] for k in self.keys) in wanted]
        return evidence(chosen, about="trained", half=half)


def grid_runs(grid: pd.DataFrame, source_table: pd.DataFrame) -> Cells:
    """The grid's runs and baseB's (variant "baseB", n = 0) as cells (split, variant, n)."""
    base = source_table[source_table.net == "baseB"]
    columns = ["split", "variant", "n"] + RUN_COLUMNS
    return Cells(pd.concat([grid[columns], base[columns]], ignore_index=True), ("split", "variant", "n"))


def grid_claims(rec, grid: pd.DataFrame, source_table: pd.DataFrame, transfer_layers, margin_pp: float,
                setting: str) -> None:
    """Yosinski et al.'s findings on the grid, per-seed differences in percentage points; each claim decided
    on trained nets (every run behind it at plateau, the same verdict on the weights at half of each run)."""
    plan = {kind: set(grid[grid.split == kind].variant) for kind in dict.fromkeys(grid.split)}
    variants = plan.get("random", set())
    cells = grid_runs(grid, source_table)
    base = ("random", "baseB", 0)

    def difference(a, b):
        """(column -> paired a minus b in pp, the cells behind it) for cells a and b."""
        return (lambda column: paired_difference(cells.values(a, column), cells.values(b, column), scale=100)), [a, b]

    def mean_over_n(variant, ns, reference="baseB"):
        """Per seed, the mean over ns of the variant's accuracy minus the reference's at the same n (baseB's:
        n = 0), in pp. A mean, not a minimum: the lowest of several noisy differences is biased downwards."""
        def ref(n):
            return base if reference == "baseB" else ("random", reference, n)

        def estimate(column):
            return over_seeds(np.mean([100 * (cells.values(("random", variant, n), column)
                                              - cells.values(ref(n), column)) for n in ns], axis=0))
        return estimate, [("random", variant, n) for n in ns] + [ref(n) for n in ns]

    def per_n(variant, ns, reference):
        """The mean over seeds at each n of the variant minus the reference, for the notes."""
        def ref(n):
            return base if reference == "baseB" else ("random", reference, n)
        return ", ".join(f"n={n}: {100 * np.mean(cells.values(('random', variant, n), 'accuracy') - cells.values(ref(n), 'accuracy')):+.1f}"
                         for n in ns)

    def claim(id, statement, expected, measured, rule, source=SOURCE, note=""):
        estimate, behind = measured
        rec.claim(id, statement, expected, estimate("accuracy"), "pp", rule, source=source, note=note,
                  evidence=cells.evidence(behind, estimate("half_accuracy")))

    bottom, top = min(transfer_layers), max(transfer_layers)
    tolerated = not_below(-margin_pp, why=f"a loss of up to {margin_pp} pp is within noise")
    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    if "AnB" in variants:
        layers_transfer = f"{bottom} layers transfer" if bottom > 1 else "layer transfers"
        claim(f"transfer.random.anb.n{bottom}", f"The first {layers_transfer} almost perfectly: AnB at n = "
              f"{bottom} minus baseB", "about 0", difference(("random", "AnB", bottom), base), tolerated, note=setting)
        if top > bottom:
            claim("transfer.random.anb.falls", f"AnB falls as n grows: AnB at n = {top} minus AnB at n = {bottom}",
                  "< 0 (from n = 3 on)", difference(("random", "AnB", top), ("random", "AnB", bottom)),
                  below(-margin_pp, **effect))
    if {"AnB", "AnB+"} <= variants:
        claim("transfer.random.fine_tuning_recovers", "Fine-tuning recovers what freezing loses: AnB+ minus AnB, "
              "the mean over n", ">= 0 at every n", mean_over_n("AnB+", transfer_layers, "AnB"), tolerated,
              note=f"mean over seeds at each n: {per_n('AnB+', transfer_layers, 'AnB')}")
    if "AnB+" in variants:
        control = ""
        if "BnB+" in variants:
            control = (f"; its control BnB+ (the same copying and fine-tuning from baseB itself) minus baseB, mean "
                       f"over seeds at each n: {per_n('BnB+', transfer_layers, 'baseB')}")
        claim("transfer.random.anb_plus_beats_base", "Transfer helps generalisation: AnB+ minus baseB, the mean "
              "over n", "+1.6 to +2.1 pp", mean_over_n("AnB+", transfer_layers), above(margin_pp, **effect),
              note=setting + control)
    if {"AnB+", "BnB+"} <= variants:
        claim("transfer.random.anb_plus_beats_bnb_plus", "The gain is transfer's, not extra training's: AnB+ minus "
              "BnB+ (its control: the same copying and fine-tuning, from baseB), the mean over n",
              "> 0 (BnB+ stays at baseB's level, AnB+ above it)", mean_over_n("AnB+", transfer_layers, "BnB+"),
              above(margin_pp, **effect), source="Yosinski et al. 2014, Fig. 2 and Sec. 4.1",
              note=f"mean over seeds at each n: {per_n('AnB+', transfer_layers, 'BnB+')}")
    if "BnB" in variants and top - bottom >= 2:
        middle = [n for n in transfer_layers if bottom < n < top]
        claim("transfer.random.bnb_dip", f"Co-adaptation: BnB dips at middle n (BnB minus baseB, the mean over "
              f"n = {', '.join(map(str, middle))})", "about -2 pp (n = 3-5)", mean_over_n("BnB", middle),
              below(-margin_pp, **effect), note=f"mean over seeds at each n: {per_n('BnB', transfer_layers, 'baseB')}")
    if "AnB" in variants and top in set(grid[(grid.split == "dissimilar") & (grid.variant == "AnB")].n):
        def drop(column):
            d = {kind: cells.values((kind, "AnB", top), column) - cells.values((kind, "baseB", 0), column)
                 for kind in ("random", "dissimilar")}
            return paired_difference(d["dissimilar"], d["random"], scale=100)
        claim("transfer.dissimilar.drop_larger", f"The drop at the top layer is larger between dissimilar halves: "
              f"(AnB at n = {top} minus baseB) on the dissimilar split minus the same on the random split", "< 0",
              (drop, [(kind, v, n) for kind in ("random", "dissimilar") for v, n in (("AnB", top), ("baseB", 0))]),
              below(-margin_pp, **effect), source="Yosinski et al. 2014, Fig. 5")
    diverged = grid[grid.diverged_at_step.notna()]
    rec.metric("diverged_runs", diverged[["split", "variant", "n", "seed"]].to_dict("records"))


def size_sweep(protocol: Protocol, sources: dict, full_b: data.Dataset, seeds, top_layer: int, sizes_per_class,
               cap: int, data_seed: int) -> pd.DataFrame:
    """From scratch, frozen (AnB) and fine-tuned (AnB+) at `top_layer` on `sizes_per_class` images per class of
    B's training images (the held-out ones excluded), from every seed to the plateau on B's held-out images (at
    most `cap` steps): one row per run with its accuracy on B's test set, at the end and at half the run."""
    transferred = transfer_builds(protocol.net, protocol.compiled, sources, [top_layer], ["AnB", "AnB+"])
    methods = {"scratch": lambda s: protocol.compiled(protocol.net(s)),
               "frozen": transferred[("AnB", top_layer)], "fine-tuned": transferred[("AnB+", top_layer)]}
    frames = []
    for per_class in sizes_per_class:
        x, y = data.per_class_subset(full_b.x_train, full_b.y_train, per_class, data_seed)
        print(f"{per_class} images per class ({len(x)} in all):")
        start = time.perf_counter()
        runs = run_steps(methods, seeds, replace(full_b, x_train=x, y_train=y), cap, protocol.every,
                         (full_b.x_val, full_b.y_val), min(protocol.batch_size, len(x)), keys=("method",),
                         describe=_measured_on_test(full_b), plateau=protocol.plateau)
        _timed(f"{per_class} per class", runs, time.perf_counter() - start)
        frames.append(runs_table(runs).assign(per_class=per_class))
    return pd.concat(frames, ignore_index=True)[["per_class", "method"] + RUN_COLUMNS]


def plot_sweep(sweep: pd.DataFrame):
    fig, axes = plots.new_figure(1, width=6.0, height=4.2)
    plots.plot_runs(axes[0], sweep, "per_class", "method", "accuracy")
    axes[0].set(xscale="log", xlabel="target training images per class", ylabel="top-1 accuracy on B's test set",
                title="from scratch, frozen features or fine-tuning")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_claims(rec, sweep: pd.DataFrame, margin_pp: float, setting: str) -> pd.Series:
    """Small data: freeze; more data: fine-tune, on trained nets. Returns fine-tuned minus frozen per size (pp,
    mean over seeds)."""
    cells = Cells(sweep, ("per_class", "method"))

    def claim(id, statement, expected, a, b, rule, note=""):
        def estimate(column):
            return paired_difference(cells.values(a, column), cells.values(b, column), scale=100)
        rec.claim(id, statement, expected, estimate("accuracy"), "pp", rule, source=ADVICE, note=note,
                  evidence=cells.evidence([a, b], estimate("half_accuracy")))

    smallest, largest = int(sweep.per_class.min()), int(sweep.per_class.max())
    effect = above(margin_pp, why=f"the minimum effect is {margin_pp} pp")
    claim("transfer.sweep.small.frozen_beats_scratch", f"With {smallest} images per class, frozen pretrained "
          "features beat training from scratch (frozen minus scratch)", "> 0", (smallest, "frozen"),
          (smallest, "scratch"), effect, note=setting)
    claim("transfer.sweep.small.freezing_suffices", f"With {smallest} images per class, fine-tuning gains nothing "
          "over the frozen extractor (fine-tuned minus frozen)", "<= 0", (smallest, "fine-tuned"),
          (smallest, "frozen"), not_above(margin_pp, why=f"a gain of up to {margin_pp} pp is within noise"))
    if largest > smallest:
        claim("transfer.sweep.large.fine_tuning_wins", f"With {largest} images per class, fine-tuning beats the "
              "frozen extractor (fine-tuned minus frozen)", "> 0", (largest, "fine-tuned"), (largest, "frozen"),
              effect)
    gain = summarise(sweep, ["per_class", "method"], ["accuracy"]).pivot(index="per_class", columns="method",
                                                                         values="accuracy")
    ahead = (gain["fine-tuned"] - gain["frozen"]) * 100
    overtakes = [size for size in ahead.index if (ahead.loc[size:] > margin_pp).all()]
    rec.metric("fine_tuning_overtakes_at_per_class", int(overtakes[0]) if overtakes else None)
    return ahead
