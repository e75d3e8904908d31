"""A segmentation set built from Fashion-MNIST, Long et al.'s metrics, and a plot of predictions.

Canvases (default 64x64) hold 1 to `max_items` Fashion-MNIST items pasted at random places. An item's
object pixels are those brighter than `threshold`; items may share their 28x28 boxes but never object
pixels (a place that would overlap is redrawn, up to `PLACEMENT_TRIES` times, else the item is left out),
and the canvas is the pixelwise maximum of the items. So a pixel is an object pixel exactly when the
canvas exceeds the threshold there, and its label is the class of the item it came from. Labels 0-9 are
Fashion-MNIST's classes, `BACKGROUND` = 10 (so an item keeps its Fashion-MNIST label).

Metrics (Long et al. 2015, Sec. 4), from the confusion matrix n[i, j] = pixels of class i predicted as j,
t_i = sum_j n[i, j]: pixel accuracy sum_i n_ii / sum_i t_i, mean accuracy mean_i n_ii / t_i, IU per class
n_ii / (t_i + sum_j n_ji - n_ii), mean IU over the classes present (in the labels or the predictions:
0/0 is left out, as in the paper's code and keras.metrics.MeanIoU), frequency-weighted IU.
"""

from __future__ import annotations

import numpy as np

from cnnlab import backend
from cnnlab.data import FASHION_MNIST_CLASSES, Dataset, load

BACKGROUND = 10
NUM_CLASSES = 11
CLASS_NAMES = (*FASHION_MNIST_CLASSES, "background")
# tab10 for the ten items, black for the background
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#000000")
PLACEMENT_TRIES = 50


def _as_unit_float(x: np.ndarray) -> np.ndarray:
    """Items as float32 in [0, 1], shape (N, h, w): uint8 is divided by 255, a trailing channel dropped."""
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 1)):
        raise ValueError(f"items of shape {x.shape}; allowed: (N, h, w) or (N, h, w, 1)")
    x = x[..., 0] if x.ndim == 4 else x
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def make_canvases(x: np.ndarray, y: np.ndarray, n: int, size: int = 64, seed=0, max_items: int = 3,
                  threshold: float = 0.1, with_items: bool = False):
    """`n` canvases of size x size with 1 to `max_items` items drawn from (x, y), the same for the same seed.

    Returns images float32 (n, size, size, 1) in [0, 1] and masks uint8 (n, size, size) (labels 0-9, and
    BACKGROUND); with `with_items` also, per canvas, the placed items as (index into x, label, top, left)."""
    items = _as_unit_float(x)
    h, w = items.shape[1:]
    if size < max(h, w) or max_items < 1 or n < 1:
        raise ValueError(f"canvas size {size}, max_items {max_items}, n {n}; allowed: size >= {max(h, w)}, "
                         "max_items >= 1, n >= 1")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.float32)
    masks = np.full((n, size, size), BACKGROUND, np.uint8)
    placed = []
    for k in range(n):
        canvas, mask, here = images[k], masks[k], []
        for _ in range(rng.integers(1, max_items + 1)):
            index = int(rng.integers(len(items)))
            ink = items[index] > threshold
            for _ in range(PLACEMENT_TRIES):
                top, left = (int(v) for v in rng.integers(0, (size - h + 1, size - w + 1)))
                box = np.s_[top:top + h, left:left + w]
                if not (mask[box][ink] != BACKGROUND).any():
                    canvas[box] = np.maximum(canvas[box], items[index])
                    mask[box][ink] = y[index]
                    here.append((index, int(y[index]), top, left))
                    break
        placed.append(here)
    images = images[..., None]
    return (images, masks, placed) if with_items else (images, masks)


def segmentation_data(n_train: int = 2000, n_test: int = 500, size: int = 64, max_items: int = 3, seed: int = 0,
                      threshold: float = 0.1, name: str = "fashion_mnist", n_val: int = 0) -> Dataset:
    """Canvases from the training split (stream (seed, 0)) and from the test split (stream (seed, 1)) as a
    `cnnlab.data.Dataset` of images and masks, with CLASS_NAMES. With `n_val`, the `n_val` canvases that
    follow the `n_train` training ones in the training stream are held out (`x_val`, `y_val`: training
    items, for a plateau; the training canvases stay those of `n_val=0`)."""
    if n_val < 0:
        raise ValueError(f"n_val {n_val}; allowed: n_val >= 0")
    ds = load(name)
    x, y = make_canvases(ds.x_train, ds.y_train, n_train + n_val, size, (seed, 0), max_items, threshold)
    x_test, y_test = make_canvases(ds.x_test, ds.y_test, n_test, size, (seed, 1), max_items, threshold)
    held_out = (x[n_train:], y[n_train:]) if n_val else (None, None)
    return Dataset(f"{name}_canvases", x[:n_train], y[:n_train], x_test, y_test, CLASS_NAMES, *held_out)


# --- metrics ----------------------------------------------------------------------------------------


def confusion(y_true, y_pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """n[i, j]: the number of pixels of class i predicted as class j (int64, num_classes x num_classes)."""
    t, p = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"labels hold {t.size} pixels, predictions {p.size}; allowed: the same number")
    for what, v in (("labels", t), ("predictions", p)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"{what} range {v.min()}..{v.max()}; allowed: 0..{num_classes - 1}")
    return np.bincount(num_classes * t + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_iu(conf: np.ndarray) -> np.ndarray:
    """IU per class from a confusion matrix: n_ii / (t_i + sum_j n_ji - n_ii); NaN where the class is in
    neither the labels nor the predictions."""
    conf = np.asarray(conf, dtype=np.float64)
    union = conf.sum(1) + conf.sum(0) - np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, np.diag(conf) / union, np.nan)


def scores(conf: np.ndarray) -> dict:
    """Long et al.'s four metrics from a confusion matrix: pixel_accuracy, mean_accuracy, mean_iu, fw_iu."""
    conf = np.asarray(conf, dtype=np.float64)
    t, diag = conf.sum(1), np.diag(conf)
    iu = class_iu(conf)
    present = t > 0
    return dict(pixel_accuracy=float(diag.sum() / t.sum()), mean_accuracy=float(np.mean(diag[present] / t[present])),
                mean_iu=float(np.nanmean(iu)), fw_iu=float(np.nansum(t * iu) / t.sum()))


def pixel_accuracy(y_true, y_pred) -> float:
    """The fraction of pixels whose predicted class is the true one."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_iu(y_true, y_pred, num_classes: int = NUM_CLASSES) -> float:
    """Mean IU over the classes present in the labels or the predictions."""
    return scores(confusion(y_true, y_pred, num_classes))["mean_iu"]


def predict_masks(model, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """Per-pixel classes (uint8, N x H x W): the argmax of the model's per-pixel logits."""
    return np.argmax(backend.numpy(model.predict(images, batch_size=batch_size, verbose=0)), axis=-1).astype(np.uint8)


def evaluate(model, images: np.ndarray, masks: np.ndarray, num_classes: int = NUM_CLASSES,
             batch_size: int = 100) -> dict:
    """The model's four metrics (`scores`) on (images, masks)."""
    return scores(confusion(masks, predict_masks(model, images, batch_size), num_classes))


# --- plotting ---------------------------------------------------------------------------------------


def plot_segmentations(images, masks, predictions: dict, axes=None, class_names=CLASS_NAMES):
    """One row per image: the input, the ground truth and each model's prediction (name -> per-pixel classes
    N x H x W, or logits N x H x W x K), coloured with PALETTE, with a legend of the classes. `axes` (rows x
    (2 + models)) defaults to a new figure; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    predictions = {name: np.argmax(p, -1) if np.ndim(p) == 4 else np.asarray(p) for name, p in predictions.items()}
    columns = ["input", "ground truth", *predictions]
    rows = len(images)
    if axes is None:
        _, axes = plt.subplots(rows, len(columns), figsize=(1.8 * len(columns), 1.8 * rows + 0.6), squeeze=False)
    axes = np.asarray(axes).reshape(rows, len(columns))
    cmap = ListedColormap(PALETTE[:len(class_names)])
    for r in range(rows):
        shown = [(np.asarray(images[r])[..., 0], "gray"), (masks[r], cmap)]
        shown += [(p[r], cmap) for p in predictions.values()]
        for c, (picture, colours) in enumerate(shown):
            ax = axes[r, c]
            vmax = 1.0 if c == 0 else len(class_names) - 1
            ax.imshow(picture, cmap=colours, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
    fig = axes[0, 0].figure
    fig.legend(handles=[Patch(color=PALETTE[i], label=name) for i, name in enumerate(class_names)],
               loc="lower center", ncol=min(6, len(class_names)), fontsize=7, frameon=False)
    return fig
