"""Lesions (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow networks"): delete
blocks of a trained `cnnlab.models.cifar_resnet` net at test time and measure the test error.

Deleting block i of a residual net removes its residual branch f_i (conv1 ... bn2) and keeps its shortcut and
its final ReLU: the block computes ReLU(shortcut(x)), exactly the block with f_i = 0. Its input x is a ReLU
output, so with an identity shortcut this is y = x, Veit et al.'s deletion; a downsampling block keeps its
shortcut too (option A: x subsampled and zero-padded, still y = shortcut(x); option B: ReLU of the projection),
as Veit et al. keep the downsampling blocks' projections. Deleting a block of a plain net removes its two convs:
y = ReLU(x) = x, which needs equal input and output shapes, so a plain net's downsampling blocks cannot be
deleted. The other layers keep their trained weights, BN statistics included.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import backend

BRANCH = ("conv1", "bn1", "relu1", "conv2", "bn2")


def blocks(model) -> list[str]:
    """The blocks of a cifar_resnet net in depth order: ['stage1_block1', ...]."""
    return [layer.name.removesuffix("_conv1") for layer in model.layers if layer.name.endswith("_conv1")]


def is_residual(model) -> bool:
    """Whether the net's blocks add a shortcut."""
    return any(layer.name.endswith("_add") for layer in model.layers)


def is_downsampling(model, block: str) -> bool:
    """Whether `block` changes the shape of its input (the first block of stages 2 and 3)."""
    return model.get_layer(f"{block}_conv1").input.shape != model.get_layer(f"{block}_out").output.shape


def deletable(model, include_downsampling: bool = True) -> list[str]:
    """The blocks a lesion may delete: all of a residual net's (without its downsampling blocks unless
    `include_downsampling`), a plain net's whose input and output shapes match."""
    downsampling_ok = include_downsampling and is_residual(model)
    return [b for b in blocks(model) if downsampling_ok or not is_downsampling(model, b)]


def lesioned(model, deleted=()) -> keras.Model:
    """`model` with the blocks `deleted` removed (see the module's docstring): a new graph through its other
    layers, shared (the same weights, nothing copied or built). No block deleted gives the same net."""
    deleted = set(deleted)
    unknown, allowed = deleted - set(blocks(model)), deletable(model)
    if unknown:
        raise ValueError(f"no block {sorted(unknown)} in {model.name} (blocks: {', '.join(blocks(model))})")
    if deleted - set(allowed):
        raise ValueError(f"plain net {model.name} cannot delete {sorted(deleted - set(allowed))}: the block changes "
                         f"the shape, so no identity replaces it (deletable: {', '.join(allowed)})")
    skipped = {f"{b}_{part}" for b in deleted for part in BRANCH}
    inputs = keras.Input(model.input_shape[1:], name=model.layers[0].name)
    new = {id(model.input): inputs}
    for layer in model.layers[1:]:
        sources = layer.input
        if layer.name in skipped:
            continue
        block = layer.name.rsplit("_", 1)[0]
        if block in deleted and layer.name.endswith("_add"):
            new[id(layer.output)] = new[id(sources[0])]  # the shortcut alone
            continue
        if block in deleted and layer.name.endswith("_out") and not is_residual(model):
            sources = model.get_layer(f"{block}_conv1").input  # the block's input, past its removed convs
        mapped = [new[id(t)] for t in sources] if isinstance(sources, list) else new[id(sources)]
        new[id(layer.output)] = layer(mapped)
    return keras.Model(inputs, new[id(model.output)], name=f"{model.name}_lesioned")


def error(model, x, y, batch_size: int = 500) -> float:
    """Top-1 error of `model` on (x, y) in inference mode, called eagerly in batches (no tracing per model)."""
    predicted = np.concatenate([np.argmax(backend.numpy(model(x[i:i + batch_size], training=False)), -1)
                                for i in range(0, len(x), batch_size)])
    return float(np.mean(predicted != np.asarray(y)))


def lesion_table(model, x_test, y_test, max_k: int = 0, draws: int = 5, seed: int = 0,
                 include_downsampling: bool = True) -> pd.DataFrame:
    """Test errors of `model` with blocks deleted: the intact net (kind "none", k 0), each deletable block alone
    (kind "single"), and `draws` random sets of k deletable blocks for k = 1..`max_k` (kind "random", drawn from
    `seed`). Columns: kind, k, draw, deleted (blocks joined by "+"), downsampling (a deleted block changes the
    shape), error, increase (over the intact net's error)."""
    candidates = deletable(model, include_downsampling)
    if not 0 <= max_k <= len(candidates):
        raise ValueError(f"max_k must be between 0 and the {len(candidates)} deletable blocks, got {max_k}")
    rng = np.random.default_rng(seed)
    sets = [("none", 0, ())] + [("single", 0, (b,)) for b in candidates]
    sets += [("random", draw, tuple(candidates[i] for i in sorted(rng.choice(len(candidates), k, replace=False))))
             for k in range(1, max_k + 1) for draw in range(draws)]
    rows = [dict(kind=kind, k=len(chosen), draw=draw, deleted="+".join(chosen),
                 downsampling=any(is_downsampling(model, b) for b in chosen),
                 error=error(lesioned(model, chosen) if chosen else model, x_test, y_test))
            for kind, draw, chosen in sets]
    table = pd.DataFrame(rows)
    table["increase"] = table.error - table.error.iloc[0]
    return table
