"""Experiment 10: what a trained CNN learned, in pictures and in numbers: smooth first-layer filters, class-
selective units deeper up (Zeiler & Fergus 2014), occlusion and saliency on the object (Zeiler & Fergus Fig. 7;
Simonyan et al. 2014), and class-model images that the net assigns to their class."""

from __future__ import annotations

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cnnlab import equivariance, visual
from cnnlab.data import FASHION_MNIST_CLASSES
from cnnlab.models.convnet import conv_stack, stages_layout
from cnnlab.models.heads import with_head
from cnnlab.rules import at_least, at_most
from cnnlab.segmentation import make_canvases
from cnnlab.train import compile_adam
from cnnlab.transfer import trained_net

SOURCE_ZF = "Zeiler & Fergus 2014"
SOURCE_SIMONYAN = "Simonyan, Vedaldi & Zisserman 2014"
SOURCE_EQUIVARIANCE = "lecture seed 002 ('Parameter sharing causes the layer to have equivariance to translation')"
SOURCE_POOLING = "lecture seed 002 (pooling: 'provide a form of translation invariance')"
ITEM = 28  # the side of a pasted item on a canvas


def item_classifier(items, widths, dense: int, kernel_size: int, steps: int, seed: int, learning_rate: float):
    """The conv stack (`widths`, a 2x2 pool after each, `dense` hidden units) trained on 28x28 items by Adam
    and stored; returns (trained net, the same net at initialisation)."""
    layout = stages_layout(widths)

    def build(s):
        return compile_adam(conv_stack(layout, dense=(dense,), kernel_size=kernel_size, seed=s), learning_rate)

    recipe = dict(net="item_classifier", layout=layout, dense=dense, kernel_size=kernel_size, data=items.name,
                  images=len(items.x_train), learning_rate=learning_rate)
    model, _ = trained_net("visual_items", recipe, build, items, steps, seed)
    return model, build(seed)


def filter_claim(rec, initial: np.ndarray, trained: np.ndarray) -> None:
    before, after = visual.neighbour_correlation(initial), visual.neighbour_correlation(trained)
    rec.claim("vis.filters.structured", "Trained first-layer filters are structured: the correlation of adjacent "
              "weights, trained minus the same filters at initialisation", "> 0", after - before, "correlation",
              at_least(0.1, why="i.i.d. weights give about -1/(k^2 - 1); smooth filters well above 0"),
              source=f"{SOURCE_ZF}; lecture seed 003", note=f"at initialisation {before:.3f}, trained {after:.3f}")


def plot_filters(kernels: dict):
    """First-layer filters (name -> kernels k x k x 1 x F) as rows of image grids."""
    count = max(k.shape[-1] for k in kernels.values())
    fig, axes = plt.subplots(len(kernels), count, figsize=(0.55 * count, 0.7 * len(kernels) + 0.3), squeeze=False)
    for row, (name, k) in zip(axes, kernels.items()):
        for f, ax in enumerate(row):
            ax.imshow(k[:, :, 0, f], cmap="gray")
            ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=8)
    fig.suptitle("first-layer filters", fontsize=9)
    return fig


def plot_activation_maps(maps: dict, image: np.ndarray, channels: int = 8):
    """The image, then per layer its first `channels` maps."""
    fig, axes = plt.subplots(len(maps), channels + 1, figsize=(1.1 * (channels + 1), 1.2 * len(maps)), squeeze=False)
    for row, (name, out) in zip(axes, maps.items()):
        row[0].imshow(image[..., 0], cmap="gray")
        row[0].set_ylabel(name, fontsize=8)
        for c, ax in enumerate(row[1:]):
            ax.imshow(out[..., c], cmap="viridis")
        for ax in row:
            ax.set_xticks([]), ax.set_yticks([])
    return fig


def purity_table(model, layer_names, x: np.ndarray, y: np.ndarray, top: int) -> tuple[pd.DataFrame, dict]:
    """Per layer: its receptive field and the class purity of every unit's `top` patches (mean, min, max, and
    what random labels give); and layer -> (patches, labels) for the figure."""
    rows, patches = [], {}
    for name in layer_names:
        crops, images, _ = visual.top_patches(model, name, x, top)
        purity = visual.class_purity(y[images])
        patches[name] = (crops, y[images])
        rows.append(dict(layer=name, receptive_field=visual.receptive_field_box(model, name)[0], units=len(purity),
                         purity=purity.mean(), purity_min=purity.min(), purity_max=purity.max(),
                         chance=visual.chance_purity(top, int(y.max()) + 1)))
    return pd.DataFrame(rows), patches


def purity_claim(rec, table: pd.DataFrame, images: int, top: int) -> None:
    first, last = table.iloc[0], table.iloc[-1]
    rec.claim("vis.units.deeper_more_selective", f"Units of deeper layers are more class-selective: class purity "
              f"of each unit's top {top} patches, {last.layer} minus {first.layer} (random labels give "
              f"{first.chance:.2f})", "> 0",
              last.purity - first.purity, "purity", at_least(0.1, why="a tenth of the patches: one more of nine"),
              source=f"{SOURCE_ZF}, Fig. 2", note="mean purity per layer " + ", ".join(
                  f"{r.layer} {r.purity:.2f}" for r in table.itertuples()) + f"; over {images} test images")


def plot_top_patches(patches: dict, units: int = 6):
    """Per layer, `units` units: a row of their top patches each, the class of each patch in its corner."""
    top = next(iter(patches.values()))[0].shape[1]
    fig, axes = plt.subplots(len(patches) * units, top, figsize=(0.75 * top, 0.75 * units * len(patches)),
                             squeeze=False)
    for block, (name, (crops, labels)) in enumerate(patches.items()):
        for u in range(units):
            row = axes[block * units + u]
            for r, ax in enumerate(row):
                ax.imshow(crops[u, r, ..., 0], cmap="gray")
                ax.text(0, 0, str(labels[u, r]), color="yellow", fontsize=6, va="top")
                ax.set_xticks([]), ax.set_yticks([])
            row[0].set_ylabel(f"{name}\nunit {u}", fontsize=6)
    fig.tight_layout(pad=0.2)
    return fig


def canvases(full, n_train: int, n_test: int, size: int, seed: int):
    """One item per canvas: the canvases as a dataset labelled with the item's class, and the test items'
    boxes (top, left)."""
    x_train, _, placed_train = make_canvases(full.x_train, full.y_train, n_train, size, (seed, 0), 1, with_items=True)
    x_test, _, placed_test = make_canvases(full.x_test, full.y_test, n_test, size, (seed, 1), 1, with_items=True)
    labels = [np.array([p[0][1] for p in placed]) for placed in (placed_train, placed_test)]
    boxes = np.array([p[0][2:] for p in placed_test])
    return replace(full, name=f"{full.name}_single_item_canvases", x_train=x_train, y_train=labels[0],
                   x_test=x_test, y_test=labels[1], x_val=None, y_val=None), boxes


def canvas_classifier(data, widths, kernel_size: int, steps: int, seed: int, learning_rate: float, batch_size: int):
    """A conv stack with global average pooling (it may find the item anywhere), trained on the canvases and
    stored."""
    layout = stages_layout(widths, pool_after_last=False)

    def build(s):
        backbone = conv_stack(layout, include_top=False, input_shape=data.x_train.shape[1:], kernel_size=kernel_size,
                              seed=s)
        return compile_adam(with_head(backbone, "gap", gap_dropout=0.0), learning_rate)

    recipe = dict(net="canvas_classifier", layout=layout, kernel_size=kernel_size, data=data.name,
                  images=len(data.x_train), size=data.x_train.shape[1], learning_rate=learning_rate)
    model, _ = trained_net("visual_canvases", recipe, build, data, steps, seed, batch_size)
    return model


def on_object(model, data, boxes: np.ndarray, n: int, size: int, stride: int) -> tuple[pd.DataFrame, dict]:
    """For the first `n` test canvases: whether the most sensitive place of the occlusion map (its square's
    centre) lies on the item's 28x28 box, and the share of the saliency map inside the box; and the maps of
    the first canvases for the figure."""
    maps = visual.saliency(model, data.x_test[:n], data.y_test[:n])
    rows, shown = [], {}
    for i in range(n):
        drop = visual.occlusion_map(model, data.x_test[i], int(data.y_test[i]), size, stride)
        r, c = np.unravel_index(drop.argmax(), drop.shape)
        centre = (r * stride + size // 2, c * stride + size // 2)
        top, left = boxes[i]
        rows.append(dict(image=i, label=int(data.y_test[i]), top=top, left=left, peak_row=centre[0],
                         peak_col=centre[1], peak_drop=drop.max(),
                         on_object=bool(top <= centre[0] < top + ITEM and left <= centre[1] < left + ITEM),
                         saliency_in_box=maps[i, top:top + ITEM, left:left + ITEM].sum() / maps[i].sum()))
        if i < 4:
            shown[i] = (drop, maps[i])
    return pd.DataFrame(rows), shown


def object_claims(rec, table: pd.DataFrame, canvas_size: int, square: int, accuracy: float) -> None:
    area = ITEM**2 / canvas_size**2
    rec.claim("vis.occlusion.on_object", f"Covering the object hurts most: the most sensitive place of the occlusion "
              f"map ({square}x{square} square) lies on the item, share of canvases", "most", table.on_object.mean(),
              "share", at_least(0.8, why=f"chance is about the item's share of the canvas, {area:.2f}"),
              source=f"{SOURCE_ZF}, Fig. 7", note=f"{len(table)} test canvases of {canvas_size}x{canvas_size}; "
              f"the canvas classifier's test accuracy {accuracy:.3f}")
    rec.claim("vis.saliency.on_object", "The saliency map concentrates on the object: its share inside the item's "
              "box over the box's share of the canvas", "> 1", table.saliency_in_box.mean() / area, "x",
              at_least(1.5, why="well above an even spread (1)"), source=f"{SOURCE_SIMONYAN}, Sec. 3",
              note=f"mean share in the box {table.saliency_in_box.mean():.2f}, the box covers {area:.2f}")


def plot_on_object(data, boxes: np.ndarray, shown: dict):
    """Per shown canvas: the canvas with the item's box, the occlusion map and the saliency map."""
    fig, axes = plt.subplots(3, len(shown), figsize=(2.1 * len(shown), 6.3), squeeze=False)
    for col, (i, (drop, saliency)) in enumerate(shown.items()):
        top, left = boxes[i]
        axes[0, col].imshow(data.x_test[i][..., 0], cmap="gray")
        axes[0, col].add_patch(plt.Rectangle((left - 0.5, top - 0.5), ITEM, ITEM, fill=False, color="yellow"))
        axes[0, col].set_title(FASHION_MNIST_CLASSES[int(data.y_test[i])], fontsize=8)
        axes[1, col].imshow(drop, cmap="magma")
        axes[2, col].imshow(saliency, cmap="magma")
        for ax in axes[:, col]:
            ax.set_xticks([]), ax.set_yticks([])
    for row, label in zip(axes[:, 0], ("canvas", "occlusion: drop in p(class)", "saliency |d score / d x|")):
        row.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def class_model_claim(rec, probs: np.ndarray, steps: int) -> None:
    rec.claim("vis.class_models.classified", "Every class-model image (gradient ascent on the class score from "
              "noise, L2-regularised) is assigned to its class: the smallest probability over the ten", ">= 0.9",
              float(probs.min()), "probability", at_least(0.9), source=f"{SOURCE_SIMONYAN}, Sec. 2",
              note=f"{steps} Adam steps; per class " + ", ".join(f"{p:.3f}" for p in probs))


def plot_class_models(images: np.ndarray, probs: np.ndarray):
    fig, axes = plt.subplots(1, len(images), figsize=(1.4 * len(images), 1.9), squeeze=False)
    for c, ax in enumerate(axes[0]):
        ax.imshow(images[c, ..., 0], cmap="gray")
        ax.set_title(f"{FASHION_MNIST_CLASSES[c]}\np = {probs[c]:.2f}", fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def equivariance_table(model, layer_name: str, images: np.ndarray, kernel_size: int) -> pd.DataFrame:
    """Per image transform (`equivariance.TRANSFORMS`): the layer's maps of the transformed images against the
    transformed maps, relative error inside a margin of the shift plus half the kernel."""
    margin = 3 + kernel_size // 2
    return pd.DataFrame([dict(transform=name, layer=layer_name, margin=margin, relative_error=equivariance.
                              transform_error(model, layer_name, images, transform, margin))
                         for name, transform in equivariance.TRANSFORMS.items()])


def invariance_table(model, layer_names, images: np.ndarray) -> pd.DataFrame:
    """Per layer: how much its maps change in place when the images move by one pixel."""
    return pd.DataFrame([dict(layer=name, relative_change=equivariance.shift_change(model, name, images))
                         for name in layer_names])


def equivariance_claims(rec, equivariant: pd.DataFrame, invariant: pd.DataFrame, images: int) -> None:
    """Convolution is equivariant to translation, not to rotation or scale; pooling, and higher stages, give
    a form of translation invariance."""
    error = equivariant.set_index("transform").relative_error
    layer = equivariant.layer.iloc[0]
    note = f"{images} test images, the trained item classifier's {layer} (conv and ReLU)"
    rec.claim("vis.equivariance.translation", "A conv layer is equivariant to translation: the maps of a shifted "
              "image are the shifted maps (relative error away from the border)", "0 (up to rounding)",
              error["shift by (3, 2) pixels"], "relative", at_most(1e-5, why="float32 rounding"),
              source=SOURCE_EQUIVARIANCE, note=note)
    for key, name in (("rotation", "rotation by 90 degrees"), ("scale", "scale by 1/2")):
        rec.claim(f"vis.equivariance.not_{key}", f"A conv layer is not equivariant to {key}: the maps of the "
                  f"image after a {name} are not the transformed maps (relative error)", "far from 0",
                  error[name], "relative", at_least(0.1, why="10% of the maps' size: not a rounding effect"),
                  source="lecture seed 002 ('Is convolution equivariant to changes in the scale or rotation?')",
                  note=note)
    change = invariant.set_index("layer").relative_change
    convs, pools = [n for n in change.index if n.startswith("hidden")], [n for n in change.index if n.startswith("pool")]
    rule = at_most(0.75, partial=1.0, why="partial: less change, but by under a quarter")
    rec.claim("vis.pooling.shift_invariance", f"A 2x2 max pool gives a form of translation invariance: a 1-pixel "
              f"shift changes the maps after it less than before it ({pools[0]} over {convs[0]})", "< 1",
              change[pools[0]] / change[convs[0]], "ratio", rule, source=SOURCE_POOLING,
              note=", ".join(f"{n} {v:.3f}" for n, v in change.items()))
    rec.claim("vis.pooling.higher_more_invariant", f"Higher stages compute more invariant features: a 1-pixel shift "
              f"changes the last stage's pooled maps less than the first's ({pools[-1]} over {pools[0]})", "< 1",
              change[pools[-1]] / change[pools[0]], "ratio", rule,
              source="lecture seed 000 ('Higher stages compute more global, more invariant features')")


def plot_invariance(invariant: pd.DataFrame):
    """The in-place change of each layer's maps under a 1-pixel shift, input side first."""
    fig, axes = plt.subplots(1, 1, figsize=(6, 3.2), squeeze=False)
    ax = axes[0, 0]
    ax.bar(invariant.layer, invariant.relative_change,
           color=["C1" if name.startswith("pool") else "C0" for name in invariant.layer])
    ax.set(ylabel="relative change of the maps", title="a 1-pixel shift: conv (blue) and max-pool (orange) layers")
    fig.tight_layout()
    return fig
