"""Experiment 08: Yosinski et al.'s transfer grid (how transferable are the features of each layer?) on two
class splits of Fashion-MNIST, and the lecture's advice on freezing or fine-tuning as the target set grows."""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np
import pandas as pd

from cnnlab import data, probe
from cnnlab.compare import above, below, not_above, not_below, over_seeds, paired_difference, per_seed, summarise
from cnnlab.models.convnet import POOL, conv_stack
from cnnlab.train import accuracy, compile_sgd, run_steps, runs_table
from cnnlab.transfer import check_variant, plot_transfer, trained_net, transfer_builds

SOURCE = "Yosinski et al. 2014, Fig. 2"
ADVICE = "lecture seed 003: small data, freeze; medium, fine-tune"


@dataclass(frozen=True)
class Protocol:
    """The seven-weight-layer net (five convs, a hidden dense layer, the classifier of one half's five classes)
    and how every net is trained: SGD with momentum, the rate decaying to 0 along a cosine."""

    conv_filters: list
    fc_units: int
    learning_rate: float
    momentum: float
    batch_size: int

    def __post_init__(self):
        if len(self.conv_filters) != 5:
            raise ValueError(f"conv_filters needs the five conv layers' filters, got {len(self.conv_filters)}: "
                             f"{self.conv_filters}")

    @property
    def layout(self) -> list:
        f = self.conv_filters
        return [f[0], f[1], POOL, f[2], f[3], POOL, f[4], POOL]

    def net(self, seed):
        """The net for one half, initialised from `seed`."""
        return conv_stack(self.layout, dense=[self.fc_units], init="he_normal", num_classes=5, seed=seed)

    def compiled(self, model, steps: int):
        """SGD with momentum, the learning rate decaying to 0 over `steps` along a cosine: the end of a short
        schedule does not leave the weights wherever the last noisy steps took them."""
        return compile_sgd(model, keras.optimizers.schedules.CosineDecay(self.learning_rate, steps), self.momentum)

    def recipe(self, data_seed: int) -> dict:
        """Everything besides the seed, data and steps that decides a source net's weights."""
        return dict(layout=self.layout, dense=[self.fc_units], init="he_normal", optimizer="SGD",
                    learning_rate=self.learning_rate, schedule="cosine decay to 0", momentum=self.momentum,
                    data=data.fingerprint(), norm="raw", data_seed=data_seed)


def check(variants, dissimilar_variants, transfer_layers) -> None:
    for variant in variants + dissimilar_variants:
        check_variant(variant)
    if max(transfer_layers) > 6:
        raise ValueError(f"transfer_layers go up to the 6 layers below the classifier, got {max(transfer_layers)}")


def source_nets(protocol: Protocol, halves: dict, source_sets: dict, target_sets: dict, seeds, data_seed: int,
                steps: dict) -> tuple[dict, pd.DataFrame]:
    """baseA and baseB of every split and seed, trained (or loaded when stored) for `steps[half]` steps:
    returns split -> half -> seed -> net, and their table (test accuracy on their own half, reused)."""
    sources, rows = {kind: {"A": {}, "B": {}} for kind in halves}, []
    for kind, (a, b) in halves.items():
        for half, classes, dataset in (("A", a, source_sets[kind]), ("B", b, target_sets[kind])):
            images = len(dataset.x_train)
            for s in seeds:
                model, reused = trained_net(f"base{half}-{kind}", dict(protocol.recipe(data_seed), classes=classes,
                                                                       images=images),
                                            lambda s, half=half: protocol.compiled(protocol.net(s), steps[half]),
                                            dataset, steps[half], s, protocol.batch_size)
                sources[kind][half][s] = model
                rows.append(dict(split=kind, net=f"base{half}", seed=s, train_images=images, steps=steps[half],
                                 test_acc=accuracy(model, dataset.x_test, dataset.y_test), reused=reused))
                print(f"{kind} base{half} seed {s}: test accuracy {rows[-1]['test_acc']:.4f}"
                      f"{' (stored net reused)' if reused else ''}")
    return sources, pd.DataFrame(rows)


def transfer_grid(protocol: Protocol, plan: dict, target_sets: dict, sources: dict, seeds, transfer_layers,
                  steps: int) -> pd.DataFrame:
    """Every variant of `plan` (split -> variants) at every n of `transfer_layers`, trained on B for `steps`
    from each seed: one row per run with its accuracy on B's test set."""
    frames = []
    for kind, kind_variants in plan.items():
        print(f"{kind} split:")
        target = target_sets[kind]
        builds = transfer_builds(protocol.net, lambda m: protocol.compiled(m, steps), sources[kind], transfer_layers,
                                 kind_variants)
        runs = run_steps(builds, seeds, target, steps, steps, (target.x_test, target.y_test), protocol.batch_size,
                         keys=("variant", "n"))
        frames.append(runs_table(runs).assign(split=kind, accuracy=lambda t: 1 - t.final_error))
    return pd.concat(frames, ignore_index=True)[["split", "variant", "n", "seed", "accuracy", "diverged_at_step"]]


def plot_grid(grid: pd.DataFrame, source_table: pd.DataFrame, halves: dict):
    """Yosinski et al.'s Fig. 2 per split: accuracy on B against n, baseB at n = 0."""
    names = data.FASHION_MNIST_CLASSES
    splits = list(dict.fromkeys(grid.split))
    fig, axes = probe.new_figure(len(splits), width=6.0, height=4.2)
    for ax, kind in zip(axes, splits):
        base = source_table[(source_table.split == kind) & (source_table.net == "baseB")]
        plot_transfer(ax, grid[grid.split == kind], dict(zip(base.seed, base.test_acc)),
                      f"{kind} split: B = {', '.join(names[c] for c in halves[kind][1])}")
    fig.tight_layout()
    return fig


def grid_claims(rec, grid: pd.DataFrame, source_table: pd.DataFrame, transfer_layers, margin_pp: float,
                steps_note: str) -> None:
    """Yosinski et al.'s findings on the grid, per-seed differences in percentage points."""
    plan = {kind: set(grid[grid.split == kind].variant) for kind in dict.fromkeys(grid.split)}
    variants, dissimilar = plan.get("random", set()), plan.get("dissimilar", set())

    def acc(kind, variant, n):
        """Per-seed accuracy of a variant at n copied layers, in seed order (baseB for n = 0)."""
        if variant == "baseB":
            return np.array(per_seed(source_table, "test_acc", split=kind, net="baseB"))
        return np.array(per_seed(grid, "accuracy", split=kind, variant=variant, n=n))

    def mean_over_n(variant, ns, reference="baseB"):
        """Per seed, the mean over ns of the variant's accuracy minus the reference's at the same n (baseB's:
        n = 0), in pp. A mean, not a minimum: the lowest of several noisy differences is biased downwards."""
        ref = {n: acc("random", reference, 0 if reference == "baseB" else n) for n in ns}
        return over_seeds(np.mean([100 * (acc("random", variant, n) - ref[n]) for n in ns], axis=0))

    def per_n(variant, ns, reference):
        """The mean over seeds at each n of the variant minus the reference, for the notes."""
        return ", ".join(f"n={n}: {100 * np.mean(acc('random', variant, n) - acc('random', reference, n)):+.1f}"
                         for n in ns)

    bottom, top = min(transfer_layers), max(transfer_layers)
    tolerated = not_below(-margin_pp, why=f"a loss of up to {margin_pp} pp is within noise")
    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    if "AnB" in variants:
        layers_transfer = f"{bottom} layers transfer" if bottom > 1 else "layer transfers"
        rec.claim(f"transfer.random.anb.n{bottom}", f"The first {layers_transfer} almost perfectly: AnB at n = "
                  f"{bottom} minus baseB", "about 0",
                  paired_difference(acc("random", "AnB", bottom), acc("random", "baseB", 0), scale=100), "pp",
                  tolerated, source=SOURCE, note=steps_note)
        if top > bottom:
            rec.claim("transfer.random.anb.falls", f"AnB falls as n grows: AnB at n = {top} minus AnB at n = {bottom}",
                      "< 0 (from n = 3 on)",
                      paired_difference(acc("random", "AnB", top), acc("random", "AnB", bottom), scale=100), "pp",
                      below(-margin_pp, **effect), source=SOURCE)
    if {"AnB", "AnB+"} <= variants:
        rec.claim("transfer.random.fine_tuning_recovers", "Fine-tuning recovers what freezing loses: AnB+ minus AnB, "
                  "the mean over n", ">= 0 at every n", mean_over_n("AnB+", transfer_layers, "AnB"), "pp",
                  tolerated, source=SOURCE, note=f"mean over seeds at each n: {per_n('AnB+', transfer_layers, 'AnB')}")
    if "AnB+" in variants:
        rec.claim("transfer.random.anb_plus_beats_base", "Transfer helps generalisation: AnB+ minus baseB, the mean "
                  "over n", "+1.6 to +2.1 pp", mean_over_n("AnB+", transfer_layers), "pp", above(margin_pp, **effect),
                  source=SOURCE, note=steps_note)
    if "BnB" in variants and top - bottom >= 2:
        middle = [n for n in transfer_layers if bottom < n < top]
        rec.claim("transfer.random.bnb_dip", f"Co-adaptation: BnB dips at middle n (BnB minus baseB, the mean over "
                  f"n = {', '.join(map(str, middle))})", "about -2 pp (n = 3-5)", mean_over_n("BnB", middle), "pp",
                  below(-margin_pp, **effect), source=SOURCE)
    if "AnB" in variants and "AnB" in dissimilar:
        drop = {kind: acc(kind, "AnB", top) - acc(kind, "baseB", 0) for kind in plan}
        rec.claim("transfer.dissimilar.drop_larger", f"The drop at the top layer is larger between dissimilar halves: "
                  f"(AnB at n = {top} minus baseB) on the dissimilar split minus the same on the random split", "< 0",
                  paired_difference(drop["dissimilar"], drop["random"], scale=100), "pp", below(-margin_pp, **effect),
                  source="Yosinski et al. 2014, Fig. 5")
    diverged = grid[grid.diverged_at_step.notna()]
    rec.metric("diverged_runs", diverged[["split", "variant", "n", "seed"]].to_dict("records"))


def size_sweep(protocol: Protocol, sources: dict, full_b, seeds, top_layer: int, sizes_per_class, steps: int,
               data_seed: int) -> pd.DataFrame:
    """From scratch, frozen (AnB) and fine-tuned (AnB+) at `top_layer` on `sizes_per_class` images per class of
    B, `steps` each from every seed: one row per run with its accuracy on B's test set."""
    transferred = transfer_builds(protocol.net, lambda m: protocol.compiled(m, steps), sources, [top_layer],
                                  ["AnB", "AnB+"])
    methods = {"scratch": lambda s: protocol.compiled(protocol.net(s), steps),
               "frozen": transferred[("AnB", top_layer)], "fine-tuned": transferred[("AnB+", top_layer)]}
    frames = []
    for per_class in sizes_per_class:
        x, y = data.per_class_subset(full_b.x_train, full_b.y_train, per_class, data_seed)
        print(f"{per_class} images per class ({len(x)} in all):")
        runs = run_steps(methods, seeds, replace(full_b, x_train=x, y_train=y), steps, steps,
                         (full_b.x_test, full_b.y_test), min(protocol.batch_size, len(x)), keys=("method",))
        frames.append(runs_table(runs).assign(per_class=per_class, accuracy=lambda t: 1 - t.final_error))
    return pd.concat(frames, ignore_index=True)[["per_class", "method", "seed", "accuracy", "diverged_at_step"]]


def plot_sweep(sweep: pd.DataFrame):
    fig, axes = probe.new_figure(1, width=6.0, height=4.2)
    probe.plot_runs(axes[0], sweep, "per_class", "method", "accuracy")
    axes[0].set(xscale="log", xlabel="target training images per class", ylabel="top-1 accuracy on B's test set",
                title="from scratch, frozen features or fine-tuning")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_claims(rec, sweep: pd.DataFrame, margin_pp: float, steps: int) -> pd.Series:
    """Small data: freeze; more data: fine-tune. Returns fine-tuned minus frozen per size (pp, mean over seeds)."""

    def sweep_acc(per_class, method):
        return per_seed(sweep, "accuracy", per_class=per_class, method=method)

    smallest, largest = sweep.per_class.min(), sweep.per_class.max()
    effect = above(margin_pp, why=f"the minimum effect is {margin_pp} pp")
    rec.claim("transfer.sweep.small.frozen_beats_scratch", f"With {smallest} images per class, frozen pretrained "
              "features beat training from scratch (frozen minus scratch)", "> 0",
              paired_difference(sweep_acc(smallest, "frozen"), sweep_acc(smallest, "scratch"), scale=100), "pp",
              effect, source=ADVICE, note=f"{steps} steps each")
    rec.claim("transfer.sweep.small.freezing_suffices", f"With {smallest} images per class, fine-tuning gains nothing "
              "over the frozen extractor (fine-tuned minus frozen)", "<= 0",
              paired_difference(sweep_acc(smallest, "fine-tuned"), sweep_acc(smallest, "frozen"), scale=100), "pp",
              not_above(margin_pp, why=f"a gain of up to {margin_pp} pp is within noise"), source=ADVICE)
    if largest > smallest:
        rec.claim("transfer.sweep.large.fine_tuning_wins", f"With {largest} images per class, fine-tuning beats the "
                  "frozen extractor (fine-tuned minus frozen)", "> 0",
                  paired_difference(sweep_acc(largest, "fine-tuned"), sweep_acc(largest, "frozen"), scale=100), "pp",
                  effect, source=ADVICE)
    gain = summarise(sweep, ["per_class", "method"], ["accuracy"]).pivot(index="per_class", columns="method",
                                                                         values="accuracy")
    ahead = (gain["fine-tuned"] - gain["frozen"]) * 100
    overtakes = [size for size in ahead.index if (ahead.loc[size:] > margin_pp).all()]
    rec.metric("fine_tuning_overtakes_at_per_class", overtakes[0] if overtakes else None)
    return ahead
