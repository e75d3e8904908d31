"""Experiment 06: ResNet (He et al. 2016): the exact parameters of the CIFAR nets, degradation of a deep plain
net and the residual fix, and lesions (Veit et al. 2016: a ResNet behaves like an ensemble of shallower nets)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import arith, backend, lesions, plots
from cnnlab.compare import above, below, not_above, paired_difference, paired_ratio, per_seed
from cnnlab.convergence import Plateau, evidence
from cnnlab.models.cifar_resnet import PAPER_PARAMS_M, cifar_resnet, step_schedule
from cnnlab.rules import at_least, at_most, exact, within
from cnnlab.train import HalfRun, compile_sgd, curves_table, seed_everything

SOURCE_HE = "He et al. 2016"
SOURCE_VEIT = "Veit, Wilber & Belongie 2016"
SOURCE_SLIDES = "lecture seeds 000 and 003 (ResNet: 'Better propagation of gradients to the deeper layers')"


def parameter_table(depths) -> pd.DataFrame:
    """Per depth at full width (32x32x3, 10 classes): the trained parameters of ResNet (option A and B) and of
    the plain net, beside the paper's Table 6."""
    rows = []
    for depth in depths:
        counts = {}
        for label, residual, shortcut in (("resnet_a", True, "A"), ("resnet_b", True, "B"), ("plain", False, "A")):
            counts[label] = arith.trainable_params(cifar_resnet(depth, residual=residual, shortcut=shortcut))
            backend.clear_session()
        rows.append(dict(depth=depth, **counts, paper_m=PAPER_PARAMS_M.get(depth)))
    return pd.DataFrame(rows)


def parameter_claims(rec, table: pd.DataFrame) -> None:
    for r in table.dropna(subset=["paper_m"]).itertuples():
        decimals = len(f"{r.paper_m}".split(".")[1])
        rec.claim(f"resnet.params.{r.depth}", f"ResNet-{r.depth} (CIFAR-10, option A) has {r.paper_m}M parameters",
                  r.paper_m, r.resnet_a / 1e6, "M", within(r.paper_m, 0.5 * 10**-decimals, why="the table rounds"),
                  source=f"{SOURCE_HE}, Table 6", note=f"{r.resnet_a:,} trained parameters")
    rec.claim("resnet.params.plain_equals_residual", "With option A shortcuts a plain net and its ResNet have the "
              "same parameters (depths with a different count)", 0, int((table.plain != table.resnet_a).sum()),
              "depths", exact(0, why="option A is parameter-free"), source=f"{SOURCE_HE}, Sec. 4.1",
              note=f"option B's projections add {int((table.resnet_b - table.resnet_a).iloc[0]):,} at every depth")


def builds(depths, width_divisor: int, weight_decay: float, steps: int, learning_rate: float, warmup_steps: int,
           momentum: float) -> dict:
    """(net, depth) -> build(seed): plain and residual nets for 28x28x1, SGD with momentum on He et al.'s
    schedule (a warm-up at a tenth of the rate, then /10 at 50% and 75% of the steps)."""

    def build(residual, depth, seed):
        model = cifar_resnet(depth, input_shape=(28, 28, 1), residual=residual, width_divisor=width_divisor,
                             weight_decay=weight_decay, seed=seed)
        return compile_sgd(model, step_schedule(steps, learning_rate, warmup_steps, learning_rate / 10), momentum)

    return {(net, d): lambda s, net=net, d=d: build(net == "resnet", d, s) for net in ("plain", "resnet")
            for d in depths}


def half_budget(depths, width_divisor: int, weight_decay: float, steps: int, learning_rate: float,
                warmup_steps: int, momentum: float, every: int) -> HalfRun:
    """The runs at half the budget: He et al.'s schedule scaled to half the steps (the full run's own middle is
    still at the first rate). Each branches off its full run at the last measurement before the half
    schedule's first drop (a quarter of the full steps), up to which both schedules agree."""
    half = steps // 2
    return HalfRun(builds(depths, width_divisor, weight_decay, half, learning_rate, warmup_steps, momentum), half,
                   half // 2 // every * every)


def check(params: dict) -> None:
    """The rules between the notebook's parameters, which the runner applies before a kernel starts."""
    every = -(-params["n_train"] // params["batch_size"])
    if not params["warmup_epochs"] * every < params["epochs"] * every // 2 // 2:
        raise ValueError(f"warmup_epochs must end before a quarter of the {params['epochs']} epochs (the half-budget "
                         f"run's first drop), got {params['warmup_epochs']}")


def last_phase_plateau(epochs: int, min_delta: float, patience: int) -> Plateau:
    """The plateau of a run on He et al.'s schedule, judged inside its last phase (the last quarter, at the final
    rate): the best held-out cross-entropy of the last `patience` epochs against the best before them, with at
    least one epoch at the final rate before that window, so that the gain of the last rate drop itself is not
    counted as the net still improving. The run goes on to the end of the schedule either way."""
    last_phase = epochs - -(-3 * epochs // 4)
    if not 1 <= patience < last_phase:
        raise ValueError(f"patience must be between 1 and {last_phase - 1} with {epochs} epochs (inside the last "
                         f"{last_phase} epochs, at the final rate, after the first of them), got {patience}")
    return Plateau("val_loss", min_delta, patience, stop_early=False)


def conv_gradient_norms(model, x, y, batch_size: int) -> np.ndarray:
    """The norm of the mean cross-entropy's gradient with respect to each conv kernel of `model`, input side
    first, over the images `x` in batches of `batch_size` as training computes it (BN on the batch's own
    statistics), without changing the model's state; the batches' gradients are averaged."""
    convs = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    where = [next(i for i, v in enumerate(model.trainable_variables) if v is kernel) for kernel in convs]
    frozen = [v.value for v in model.non_trainable_variables]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    total, starts = None, range(0, len(x), batch_size)
    for start in starts:
        images, labels = x[start:start + batch_size], y[start:start + batch_size]

        def batch_loss(*kernels, images=images, labels=labels):
            values = [v.value for v in model.trainable_variables]
            for i, kernel in zip(where, kernels):
                values[i] = kernel
            logits, _ = model.stateless_call(values, frozen, images, training=True)
            return loss(labels, logits)

        _, grads = backend.gradients(batch_loss, *[backend.numpy(k.value) for k in convs])
        total = grads if total is None else [t + g for t, g in zip(total, grads)]
    return np.array([float(np.linalg.norm(g / len(starts))) for g in total])


def gradient_reach(norms: np.ndarray) -> float:
    """How much of the gradient reaches the input side: the first conv kernel's gradient norm over the last's."""
    return float(norms[0] / norms[-1])


def gradients_at_init(build_of: dict, seeds, x, y, batch_size: int) -> dict:
    """(net, depth) -> per seed the conv gradient norms of the net as built from that seed, before training."""
    found = {}
    for key, build in build_of.items():
        for seed in seeds:
            seed_everything(seed)
            found.setdefault(key, []).append(conv_gradient_norms(build(seed), x, y, batch_size))
    return found


def measure(train_probe, test, lesion_seed: int, lesion_images: int, max_k: int, draws: int, lesioned_nets,
            gradient_nets, gradient_images: int, batch_size: int):
    """`run_steps`' describe hook: the training cross-entropy and error on `train_probe` and the test error,
    in inference mode; for the nets `gradient_nets` (net, depth), the conv gradient norms on the first
    `gradient_images` training images (`grad_norms`, their `grad_reach`); for the nets `lesioned_nets` of seed
    `lesion_seed`, their lesion table (k random blocks up to `max_k` for a ResNet; single blocks only at half
    the run)."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def describe(model, run):
        logits = backend.numpy(model.predict(train_probe[0], batch_size=500, verbose=0))
        found = dict(train_ce=float(loss(train_probe[1], logits)),
                     train_error=float(np.mean(np.argmax(logits, -1) != train_probe[1])),
                     test_error=lesions.error(model, *test))
        if (run["net"], run["depth"]) in gradient_nets:
            norms = conv_gradient_norms(model, train_probe[0][:gradient_images], train_probe[1][:gradient_images],
                                        batch_size)
            found.update(grad_norms=norms, grad_reach=gradient_reach(norms))
        if run["seed"] == lesion_seed and (run["net"], run["depth"]) in lesioned_nets:
            k = max_k if run["net"] == "resnet" and not run["at_half"] else 0  # random sets only of residual blocks
            found["lesions"] = lesions.lesion_table(model, test[0][:lesion_images], test[1][:lesion_images], k,
                                                    draws, lesion_seed)
        return found

    return describe


def degradation_claims(rec, runs: list[dict], shallow: int, deep: int, margin: float, margin_pp: float) -> None:
    """He et al. Fig. 6: the deep plain net trains worse than the shallow one; the deep ResNet does not, and
    beats the deep plain net. Per-seed differences of the training cross-entropy (inference mode), each
    decided on trained nets: every run at its plateau, the same verdict at half the schedule."""

    def difference(a, b, column="train_ce", scale=1.0):
        return paired_difference(per_seed(runs, column, net=a[0], depth=a[1]),
                                 per_seed(runs, column, net=b[0], depth=b[1]), scale=scale)

    def trained(a, b, column="train_ce", scale=1.0):
        picked = [r for r in runs if (r["net"], r["depth"]) in (a, b)]
        return evidence(picked, half=difference(a, b, f"half_{column}", scale))

    effect = dict(why=f"the minimum effect is {margin} in cross-entropy")
    source = f"{SOURCE_HE}, Fig. 6"
    rec.claim("resnet.degradation.train", f"Degradation: plain-{deep} ends with a higher training loss than "
              f"plain-{shallow} (training cross-entropy, {deep} minus {shallow})", "> 0",
              difference(("plain", deep), ("plain", shallow)), "nats", above(margin, **effect), source=source,
              note="an optimisation problem, not overfitting: measured on training images",
              evidence=trained(("plain", deep), ("plain", shallow)))
    rec.claim("resnet.degradation.test", f"plain-{deep}'s test error is higher than plain-{shallow}'s too ({deep} "
              f"minus {shallow})", "> 0", difference(("plain", deep), ("plain", shallow), "test_error", 100), "pp",
              above(margin_pp, why=f"the minimum effect is {margin_pp} pp"), source=source,
              evidence=trained(("plain", deep), ("plain", shallow), "test_error", 100))
    rec.claim("resnet.residual.deeper_trains", f"ResNet-{deep} trains at least as well as ResNet-{shallow} "
              f"(training cross-entropy, {deep} minus {shallow})", "<= 0",
              difference(("resnet", deep), ("resnet", shallow)), "nats",
              not_above(margin, why=f"a loss up to {margin} higher is within noise"), source=source,
              evidence=trained(("resnet", deep), ("resnet", shallow)))
    rec.claim("resnet.residual.fixes_degradation", f"ResNet-{deep} trains clearly better than plain-{deep} "
              "(training cross-entropy, ResNet minus plain)", "< 0", difference(("resnet", deep), ("plain", deep)),
              "nats", below(-margin, **effect), source=source, evidence=trained(("resnet", deep), ("plain", deep)))
    rec.metric("diverged_runs", [dict(net=r["net"], depth=r["depth"], seed=r["seed"], step=r["diverged_at_step"])
                                 for r in runs if r["diverged_at_step"]])


def gradient_claims(rec, runs: list[dict], at_init: dict, deep: int, minimum: float) -> None:
    """Skip connections carry the gradient back: ResNet's gradient reach (first conv kernel's gradient norm
    over the last's) against the plain net's of the same depth, per seed, at initialisation and trained."""
    effect = above(minimum, why=f"the minimum effect is {minimum:g}x")
    statement = (f"the gradient reaches the input side of ResNet-{deep} better than of plain-{deep} (first conv "
                 "kernel's gradient norm over the last's, ResNet over plain)")
    reach_init = {key: [gradient_reach(n) for n in norms] for key, norms in at_init.items()}
    rec.claim("resnet.gradient.at_init", f"At initialisation, {statement}", "> 1",
              paired_ratio(reach_init[("resnet", deep)], reach_init[("plain", deep)]), "x", effect,
              source=SOURCE_SLIDES, note="gradients of the mean training cross-entropy, BN on batch statistics")

    def ratio(column):
        return paired_ratio(per_seed(runs, column, net="resnet", depth=deep), per_seed(runs, column, net="plain",
                                                                                       depth=deep))

    picked = [r for r in runs if r["depth"] == deep]
    rec.claim("resnet.gradient.trained", f"Trained, {statement}", "> 1", ratio("grad_reach"), "x", effect,
              source=SOURCE_SLIDES, evidence=evidence(picked, half=ratio("half_grad_reach")))


def plot_gradients(runs: list[dict], at_init: dict, deep: int, seed: int):
    """The conv gradient norms layer by layer of the deep plain and residual nets of `seed`, at initialisation
    and trained: where the gradient fades on its way back to the input."""
    fig, axes = plots.new_figure(2)
    for ax, title in zip(axes, ("at initialisation", "trained")):
        for net, style in (("plain", "--"), ("resnet", "-")):
            if title == "trained":
                norms = next(r["grad_norms"] for r in runs if (r["net"], r["depth"], r["seed"]) == (net, deep, seed))
            else:
                norms = at_init[(net, deep)][0]
            ax.semilogy(range(1, len(norms) + 1), norms, style, label=f"{net}-{deep}")
        ax.set(title=f"{title} (seed {seed})", xlabel="conv layer (1 = input side)", ylabel="gradient norm")
        ax.legend()
    fig.tight_layout()
    return fig


def lesion_frame(runs: list[dict], column: str = "lesions") -> pd.DataFrame:
    """Every lesion table of the runs (`half_lesions`: those at half the run), with the net's name."""
    return pd.concat([r[column].assign(net=f"{r['net']}{r['depth']}") for r in runs if column in r],
                     ignore_index=True)


def lesion_claims(rec, runs: list[dict], resnet: str, plain: str, small_pp: float) -> pd.DataFrame:
    """Veit et al.: deleting one residual block costs little; deleting a layer of a plain net drops it to about
    chance (each on the trained net, and at half its run for the half-budget check); the error grows with
    the number of deleted blocks (reported). Returns the lesion table."""
    table, half = lesion_frame(runs), lesion_frame(runs, "half_lesions")
    lesioned = [r for r in runs if "lesions" in r]

    def single(frame, net):
        return frame[(frame.net == net) & (frame.kind == "single")]

    def trained(net, value):
        return evidence([r for r in lesioned if f"{r['net']}{r['depth']}" == net], half=value)

    res = single(table, resnet)
    rec.claim("resnet.lesion.single_block_small", f"Deleting one residual block of a trained {resnet} costs little "
              "(median test-error increase over its blocks)", "small", 100 * res.increase.median(), "pp",
              at_most(small_pp, why=f"'little': {small_pp} pp or less"), source=f"{SOURCE_VEIT}, Fig. 3",
              evidence=trained(resnet, 100 * single(half, resnet).increase.median()),
              note=f"{len(res)} blocks; mean {100 * res.increase.mean():.1f} pp, largest "
              f"{100 * res.increase.max():.1f} pp ({res.deleted.iloc[int(res.increase.argmax())]}); intact error "
              f"{table[table.net == resnet].error.iloc[0]:.3f}")
    flat = single(table, plain)
    rec.claim("resnet.lesion.plain_layer_to_chance", f"Deleting one block of a trained {plain} drops it towards "
              "chance (mean test error over its deletable blocks; chance 0.9)", "about 0.9", flat.error.mean(),
              "error", at_least(0.8, partial=0.6, why="near chance; partial: most of the way"),
              source=f"{SOURCE_VEIT}, Fig. 3", note=f"intact error {table[table.net == plain].error.iloc[0]:.3f}; "
              f"{len(flat)} blocks", evidence=trained(plain, single(half, plain).error.mean()))
    grows = table[(table.net == resnet) & (table.kind == "random")].groupby("k").error.mean()
    rec.claim("resnet.lesion.random_k", f"{resnet}: test error as k random blocks are deleted (k = "
              f"{grows.index.max()}; the others in the note)", "grows smoothly", float(grows.iloc[-1]), "error", None,
              source=f"{SOURCE_VEIT}, Fig. 5", note=", ".join(f"k={k}: {e:.3f}" for k, e in grows.items()))
    return table


def plot(runs: list[dict], lesion_table: pd.DataFrame, resnet: str):
    """He et al.'s Fig. 6 analogue (the error on held-out training images per step of plain and residual nets)
    and the single-block lesions of the ResNet."""
    fig, axes = plots.new_figure(3)
    curves = curves_table(runs, ("net", "depth"))
    curves["model"] = curves.net + "-" + curves.depth.astype(str)
    for ax, net in zip(axes, ("plain", "resnet")):
        plots.plot_runs(ax, curves[curves.net == net], "step", "model", "error")
        ax.set(title=f"{net} nets", xlabel="step", ylabel="error on held-out training images")
        ax.legend(fontsize=8)
    single = lesion_table[(lesion_table.net == resnet) & (lesion_table.kind == "single")]
    axes[2].bar(range(len(single)), 100 * single.increase, color=["C3" if d else "C0" for d in single.downsampling])
    axes[2].set(title=f"{resnet}: delete one block", xlabel="block (red: downsampling)",
                ylabel="test error increase (pp)")
    fig.tight_layout()
    return fig
