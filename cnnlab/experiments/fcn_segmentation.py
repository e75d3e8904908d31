"""Experiment 09: fully convolutional networks. A classifier's FC layers as convolutions (Long et al. 2015),
d-regularly sparse kernels for a prediction at every pixel (Li, Zhao & Wang 2014), and FCN-32s/16s/8s and an
encoder-decoder segmenting canvases of Fashion-MNIST items, each net (and the item classifier it starts from)
trained to its plateau on held-out training images."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import arith, backend, plots
from cnnlab.compare import above, paired_difference, per_seed, summarise
from cnnlab.convergence import Plateau, evidence
from cnnlab.models.fcn import (backbone_classifier, convolutionalize, dense_sparse, encoder_decoder, fcn,
                               patch_classifier, total_stride)
from cnnlab.patches import centre_pad, patch_by_patch
from cnnlab.rules import at_least, at_most
from cnnlab.segmentation import CLASS_NAMES, NUM_CLASSES, class_iu, confusion, plot_segmentations, predict_masks, scores
from cnnlab.train import compile_adam, fit_steps, histories_table, seed_everything
from cnnlab.transfer import trained_net

EXACT = 1e-5  # max |difference| over max |output| that counts as the same output in float32
SOURCE_LONG = "Long, Shelhamer & Darrell 2015"
SOURCE_LI = "Li, Zhao & Wang 2014"
PAPER_SPEEDUP = 1500  # Li et al.: over 1500x on a GPU, large images
# Long et al. Table 2 / Sec. 4.2: mean IU on a PASCAL VOC 2011 validation subset
PAPER_MEAN_IU = {"fcn32s_fixed": 45.4, "fcn32s": 59.4, "fcn16s": 62.4, "fcn8s": 62.7}
SEGMENTERS = ("fcn32s_fixed", "fcn32s", "fcn16s", "fcn8s", "encoder_decoder")


def _stored(name: str, build, items, steps: int, seed: int, learning_rate: float, recipe: dict):
    """`build(seed)` trained as an item classifier by Adam for `steps` on `items` and stored (see
    `cnnlab.transfer.trained_net`): later runs with the same recipe load it."""
    recipe = dict(recipe, data=items.name, images=len(items.x_train), learning_rate=learning_rate)
    model, _ = trained_net(name, recipe, lambda s: compile_adam(build(s), learning_rate), items, steps, seed)
    return model


def patch_classifier_trained(items, steps: int, seed: int, learning_rate: float):
    """The LeNet-like valid-padding classifier of the exact claims, trained on the items."""
    return _stored("patch_classifier", lambda s: patch_classifier(seed=s), items, steps, seed, learning_rate,
                   dict(net="patch_classifier"))


def backbone_trained(items, widths, fc, steps: int, every: int, seed: int, learning_rate: float, plateau: Plateau,
                     batch_size: int = 128):
    """The FCNs' backbone as a 28x28 item classifier (their pretraining): trained by Adam from `seed` on
    `items.x_train` until its loss on the held-out items (`items.x_val`, measured every `every` steps) has
    reached its `plateau`, at most `steps` steps. Returns (model, its convergence record with `val_error`, the
    held-out error at the end)."""
    if items.x_val is None:
        raise ValueError("the backbone's plateau is detected on held-out items: prepare them with a val_fraction")
    seed_everything(seed)
    model = compile_adam(backbone_classifier(widths=widths, fc=fc, seed=seed), learning_rate)
    curve = fit_steps(model, items, steps, every, (items.x_val, items.y_val), batch_size, seed, verbose=0,
                      plateau=plateau)
    record = dict(curve["convergence"], val_error=curve["error"][-1], diverged_at_step=curve["diverged_at_step"])
    print(f"backbone: {record['trained']} steps ({record['stop']}; best at {record['best_at']}, last gain "
          f"{record['last_gain']:.3g}), held-out error {record['val_error']:.3f}")
    return model, record


def exactness(classifier, items: np.ndarray, canvas: np.ndarray) -> pd.DataFrame:
    """The three equalities, each as the largest absolute difference over every value compared and relative
    to the largest output (float32 rounding grows with the logits' scale): the convolutionalised net's logits
    on 28x28 items, its score map on a canvas against the classifier on each crop at the total stride, and
    the d-regularly sparse net at every pixel against patch-by-patch classification."""
    def predicted(model, x):
        return backend.numpy(model.predict(x, verbose=0))

    fully = convolutionalize(classifier)
    logits = predicted(classifier, items)
    stride = total_stride(classifier)
    crops = patch_by_patch(classifier, canvas, stride=stride)
    padded = centre_pad(canvas, classifier.inputs[0].shape[1])
    every = patch_by_patch(classifier, padded)
    checks = {"convolutionalised, training size": (logits, predicted(fully, items)[:, 0, 0]),
              f"score map vs crops at stride {stride}": (crops, predicted(fully, canvas[None])[0]),
              "sparse kernels vs every patch": (every, predicted(dense_sparse(classifier), padded[None])[0])}
    rows = []
    for check, (expected, got) in checks.items():
        diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
        rows.append(dict(check=check, compared=expected.size, max_abs_diff=diff, max_abs_output=scale,
                         relative_diff=diff / scale))
    return pd.DataFrame(rows)


def exactness_claims(rec, table: pd.DataFrame, canvas_size: int) -> None:
    """Each equality holds to float32 rounding: the largest difference below 1e-5 of the largest output."""
    rows = list(table.itertuples())
    rule = at_most(EXACT, why="float32 rounding, relative to the largest output")
    statements = {
        "fcn.convolutionalised.same_logits": ("An FC layer on a C x M x M map is a conv with M x M kernels: the "
                                              "convolutionalised classifier gives the same logits on the training "
                                              "size", f"{SOURCE_LONG}, Sec. 3.1; lecture seed 002"),
        "fcn.convolutionalised.crops": (f"On a {canvas_size}x{canvas_size} canvas each score-map entry is the "
                                        "classifier on the crop at the net's total stride", f"{SOURCE_LONG}, Sec. 3.1"),
        "fcn.sparse_kernels.every_pixel": ("With every stride 1 and later kernels dilated by the earlier strides, "
                                           "the dense output equals patch-by-patch classification at every pixel",
                                           f"{SOURCE_LI}; lecture seed 002"),
    }
    for r, (claim, (statement, source)) in zip(rows, statements.items()):
        rec.claim(claim, f"{statement} (max |difference| over max |output|)", 0, r.relative_diff, "relative", rule,
                  source=source, note=f"{r.compared:,} values; max |difference| {r.max_abs_diff:.2g}, max |output| "
                  f"{r.max_abs_output:.3g}")


def with_mac_ratio(table: pd.DataFrame, classifier) -> pd.DataFrame:
    """The speed-up table with `mac_ratio`: the multiply-adds of patch-by-patch classification (S^2 times the
    classifier's) over the sparse-kernel net's on the padded image, the work the dense pass saves."""
    patch = classifier.inputs[0].shape[1]
    per_patch = arith.totals(arith.layer_table(classifier))["macs"]
    dense = dense_sparse(classifier)
    ratios = []
    for size in table["size"]:
        inputs = keras.Input((size + patch - 1, size + patch - 1, classifier.inputs[0].shape[-1]))
        whole = arith.totals(arith.layer_table(keras.models.clone_model(dense, input_tensors=inputs)))["macs"]
        ratios.append(size**2 * per_patch / whole)
    return table.assign(mac_ratio=ratios)


def speed_claims(rec, table: pd.DataFrame) -> None:
    """The speed-up grows with the image size; the largest one is reported beside the paper's GPU figure."""
    first, last = table.iloc[0], table.iloc[-1]
    speedups = ", ".join(f"{r.size}^2: {r.speedup:.1f}x (multiply-adds {r.mac_ratio:.1f}x)"
                         for r in table.itertuples())
    rec.claim("fcn.sparse_kernels.speedup_grows", f"The speed-up over batched patch-by-patch classification grows "
              f"with the image size ({last['size']}^2's over {first['size']}^2's)",
              f"> 1 (grows with the image size: over {PAPER_SPEEDUP}x on large images, GPU)",
              last.speedup / first.speedup, "x",
              at_least(1.25, partial=1.0, why="grows beyond timing noise: 1.25x or more; partial: grows less"),
              source=SOURCE_LI, note=f"speed-ups {speedups}: past the patch size the ratio of the work saved "
              "levels off, so what still grows is the share of fixed costs per call")
    rec.claim("fcn.sparse_kernels.speedup", f"Speed-up at {last['size']}x{last['size']} on this CPU",
              f"> {PAPER_SPEEDUP} (GPU, large images)", last.speedup, "x", None, source=SOURCE_LI,
              note=f"reported beside the paper's GPU figure, not judged: another device and image size; the "
              f"multiply-adds saved are {last.mac_ratio:.1f}x")


def segmenters(classifier, models, widths, fc, learning_rate: float, canvas_size: int = 64) -> dict:
    """name -> build(seed): the FCNs and the encoder-decoder for canvas_size x canvas_size canvases, each
    starting from the classifier's (convolutionalised) weights ("fcn32s_fixed" trains only its class scorer),
    compiled with Adam on per-pixel logits."""
    unknown = [m for m in models if m not in SEGMENTERS]
    if unknown:
        raise ValueError(f"unknown segmentation models {unknown}; choose from {list(SEGMENTERS)}")
    shape = (canvas_size, canvas_size, 1)

    def build(name, seed):
        if name == "encoder_decoder":
            model = encoder_decoder(classes=NUM_CLASSES, input_shape=shape, widths=widths, classifier=classifier,
                                    seed=seed)
        else:
            model = fcn(name[3:6], classes=NUM_CLASSES, input_shape=shape, classifier=classifier,
                        fixed=name.endswith("fixed"), widths=widths, fc=fc, seed=seed, name=name)
        return compile_adam(model, learning_rate)

    return {m: lambda seed, m=m: build(m, seed) for m in models}


def measure_segmentation(canvases, shown_x):
    """`run_seeds`' describe hook: Long et al.'s four metrics and the IU per class on the test canvases, and
    (but at half the run) the predicted classes of the `shown_x` canvases (for the figure)."""

    def describe(model, row):
        conf = confusion(canvases.y_test, predict_masks(model, canvases.x_test), NUM_CLASSES)
        found = dict(trainable_params=arith.trainable_params(model), **scores(conf), class_iu=class_iu(conf))
        return found if row.get("at_half") else dict(found, predicted=predict_masks(model, shown_x))

    return describe


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model: parameters (all, and trained: the fixed bilinear upsampling and a fixed net's frozen layers are
    not), mean and sd over seeds of pixel accuracy and mean IU, the same at half of each run
    (`half_mean_iu`), the paper's mean IU, seconds per epoch, the epochs run (mean), the runs at plateau
    (`at_plateau` of `runs`)."""
    table = summarise(runs, "model", ["pixel_accuracy", "mean_iu"], first=["params", "trainable_params"])
    by = runs.groupby("model", sort=False)
    if "half_mean_iu" in runs:
        table["half_mean_iu"] = by.half_mean_iu.mean().to_numpy()
    table["paper_mean_iu_voc"] = table.model.map(PAPER_MEAN_IU)
    table["s_per_epoch"] = by.s_per_epoch.mean().to_numpy()
    if "at_plateau" in runs:
        table["epochs"] = by.trained.mean().to_numpy()
        table["at_plateau"] = [f"{int(v.sum())} of {len(v)}" for _, v in by.at_plateau]
    return table


def segmentation_claims(rec, runs: pd.DataFrame, margin_pp: float, fixed_margin_pp: float) -> None:
    """Finer fusion helps (8s and 16s over 32s), fine-tuning beats the fixed net by far; the encoder-decoder
    is reported beside FCN-8s. Per-seed differences of mean IU in percentage points. Each is a claim about
    trained nets: with runs trained to a plateau (`at_plateau` in `runs`) it passes their evidence, the
    same difference measured at half of each run (`half_mean_iu`) its half-budget estimate."""
    trained = set(runs.model)

    def difference(a, b, column="mean_iu"):
        return paired_difference(per_seed(runs, column, model=a), per_seed(runs, column, model=b), scale=100)

    def trained_evidence(a, b):
        if "at_plateau" not in runs:
            return None
        return evidence(runs, about="trained", half=difference(a, b, "half_mean_iu"), model=[a, b])

    def paper(a, b):
        return f"+{PAPER_MEAN_IU[a] - PAPER_MEAN_IU[b]:.1f} pp (VOC 2011)"

    effect = above(margin_pp, why=f"the minimum effect is {margin_pp} pp")
    for finer in ("fcn16s", "fcn8s"):
        if {finer, "fcn32s"} <= trained:
            rec.claim(f"fcn.seg.{finer}_over_32s", f"Finer skip fusion segments better: {finer[3:]} minus 32s "
                      "(mean IU)", paper(finer, "fcn32s"), difference(finer, "fcn32s"), "pp", effect,
                      source=f"{SOURCE_LONG}, Table 2", evidence=trained_evidence(finer, "fcn32s"))
    if {"fcn32s", "fcn32s_fixed"} <= trained:
        rec.claim("fcn.seg.finetuned_over_fixed", "Fine-tuning every layer beats training only the last one by far: "
                  "FCN-32s minus FCN-32s-fixed (mean IU)", paper("fcn32s", "fcn32s_fixed"),
                  difference("fcn32s", "fcn32s_fixed"), "pp",
                  above(fixed_margin_pp, why=f"'by far': {fixed_margin_pp} pp or more"),
                  source=f"{SOURCE_LONG}, Sec. 4.2", evidence=trained_evidence("fcn32s", "fcn32s_fixed"))
    if {"encoder_decoder", "fcn8s"} <= trained:
        rec.claim("fcn.seg.encoder_decoder_vs_8s", "The encoder-decoder with skips beside FCN-8s: its mean IU minus "
                  "FCN-8s's", None, difference("encoder_decoder", "fcn8s"), "pp", None,
                  source="lecture seed 003; Ronneberger et al. 2015", note="reported, not judged",
                  evidence=trained_evidence("encoder_decoder", "fcn8s"))
    rec.metric("diverged_runs", runs[runs.diverged_at_step.notna()][["model", "seed"]].to_dict("records"))


def class_iu_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model, the IU of each class (mean over seeds), from the runs' `class_iu` arrays."""
    rows = [dict(model=r.model, seed=r.seed, **dict(zip(CLASS_NAMES, r.class_iu))) for r in runs.itertuples()]
    return pd.DataFrame(rows).groupby("model", sort=False)[list(CLASS_NAMES)].mean().reset_index()


def plot_speedup(table: pd.DataFrame):
    """Seconds of dense and patch-by-patch prediction, and the speed-up, against the image side."""
    fig, axes = plots.new_figure(2)
    axes[0].plot(table["size"], table.patch_s, "o-", label="patch by patch (batched)")
    axes[0].plot(table["size"], table.dense_s, "s-", label="sparse kernels, one pass")
    axes[0].set(xscale="log", yscale="log", xlabel="image side (pixels)", ylabel="seconds", title="time per image")
    axes[0].legend(fontsize=8)
    axes[1].plot(table["size"], table.speedup, "o-", color="C2")
    axes[1].set(xscale="log", xlabel="image side (pixels)", ylabel="speed-up (x)", title="speed-up")
    for ax in axes:
        ax.set_xticks(table["size"], [str(s) for s in table["size"]])
    fig.tight_layout()
    return fig


def plot_curves(histories: dict):
    """Each segmentation net's per-pixel loss on the held-out training canvases and its pixel accuracy there,
    per epoch (a marker per run, a line through the means over seeds): where the runs level off."""
    fig, axes = plots.new_figure(2)
    for ax, column, label in ((axes[0], "val_loss", "held-out per-pixel loss"),
                              (axes[1], "val_accuracy", "held-out pixel accuracy")):
        plots.plot_runs(ax, histories_table(histories, ("model",), column), "epoch", "model", column)
        ax.set(xlabel="epoch", ylabel=label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_predictions(runs: pd.DataFrame, images, masks, seed: int):
    """The shown canvases, their labels and each model's prediction from seed `seed`."""
    chosen = runs[runs.seed == seed]
    return plot_segmentations(images, masks, dict(zip(chosen.model, chosen.predicted)))
