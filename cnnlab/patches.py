"""Classifying an image patch by patch, the way a classifier without convolutionalisation must, and how much
faster the dense net of `cnnlab.models.fcn.dense_sparse` computes the same map (Li, Zhao & Wang 2014)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from cnnlab.models.fcn import dense_sparse


def centre_pad(image: np.ndarray, patch_size: int) -> np.ndarray:
    """Zero-pad an HxWxC image so that every one of its pixels anchors a patch centred on it: P//2 rows and
    columns before, P-1-P//2 after (a 28-pixel patch has its centre at offset 14)."""
    before, after = patch_size // 2, patch_size - 1 - patch_size // 2
    return np.pad(image, ((before, after), (before, after), (0, 0)))


def _windows(image: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """A view of every PxP patch of an HxWxC image anchored on a `stride` grid: (rows, cols, P, P, C)."""
    if image.ndim != 3 or min(image.shape[:2]) < patch_size:
        raise ValueError(f"image of shape {image.shape}: allowed HxWxC with H, W >= the patch size {patch_size}")
    view = np.lib.stride_tricks.sliding_window_view(image, (patch_size, patch_size), axis=(0, 1))
    return np.moveaxis(view[::stride, ::stride], 2, -1)


def _classify(classifier, windows: np.ndarray, anchors: np.ndarray, batch_size: int) -> np.ndarray:
    """The classifier's outputs for the windows at flat `anchors`, one batch at a time."""
    cols = windows.shape[1]
    outputs = []
    for start in range(0, len(anchors), batch_size):
        rows, columns = np.divmod(anchors[start:start + batch_size], cols)
        outputs.append(np.asarray(classifier.predict_on_batch(np.ascontiguousarray(windows[rows, columns]))))
    return np.concatenate(outputs)


def patch_by_patch(classifier, image: np.ndarray, batch_size: int = 1024, stride: int = 1) -> np.ndarray:
    """The classifier on every PxP patch of an HxWxC image anchored on a `stride` grid, `batch_size` patches
    at a time: a (rows, cols, K) map, rows = (H-P)//stride + 1."""
    windows = _windows(image, classifier.inputs[0].shape[1], stride)
    rows, cols = windows.shape[:2]
    return _classify(classifier, windows, np.arange(rows * cols), batch_size).reshape(rows, cols, -1)


def _seconds(call, warm_up, repeats: int = 1):
    """(best wall-clock seconds of `repeats` calls, the last result), after the untimed `warm_up()`."""
    warm_up()
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def speedup(classifier, sizes=(64, 128, 256), batch_size=1024, max_patches=16384, repeats=3, seed=0) -> pd.DataFrame:
    """Dense (`dense_sparse`) vs batched patch-by-patch classification of a random SxS image, every pixel
    anchoring a centred patch (S^2 patches). Patch-by-patch runs on at most `max_patches` random patches
    (`patches_timed`) and its time is extrapolated linearly to all; `max_abs_diff` compares those patches'
    outputs with the dense map. Seconds are the best of `repeats` runs of each, after a warm-up that traces
    its shapes (the best, not the mean: other work on the machine only ever adds time)."""
    net, patch = dense_sparse(classifier), classifier.inputs[0].shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        image = centre_pad(rng.random((size, size, classifier.inputs[0].shape[-1]), dtype=np.float32), patch)
        n = size * size
        anchors = np.sort(rng.choice(n, min(n, max_patches), replace=False))
        windows = _windows(image, patch, 1)

        def dense():
            return np.asarray(net.predict_on_batch(image[None]))[0]

        def patches(chosen=anchors, batch=batch_size):
            return _classify(classifier, windows, chosen, batch)

        dense_s, scores = _seconds(dense, dense, repeats)
        last = len(anchors) % batch_size or batch_size  # the batch shapes of the timed pass, traced before it
        timed_s, outputs = _seconds(patches, lambda: [patches(anchors[:k], k) for k in {batch_size, last}], repeats)
        patch_s = timed_s * n / len(anchors)
        rows.append(dict(size=size, patches=n, patches_timed=len(anchors), dense_s=dense_s, patch_s=patch_s,
                         speedup=patch_s / dense_s,
                         max_abs_diff=float(np.abs(scores.reshape(n, -1)[anchors] - outputs).max())))
    return pd.DataFrame(rows)
